// What the agent learns from a verified peer certificate: its one URI SAN (the SPIFFE ID), its
// serial, its SPKI hash and expiry, in the canonical forms the enforcement index uses.
import { createHash, X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { EdgewardError } from '../common/errors.js';
import { parseIdentity } from '../common/identity.js';
import { normalizeSerial } from '../common/x509.js';

// DER prefix of a P-256 SubjectPublicKeyInfo; Node hands out the raw point for EC keys.
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

export interface CertFacts {
  readonly identity: string;
  readonly serial: string;
  readonly spki: string;
  readonly notAfter: number;
}

/**
 * The single URI SAN of a certificate's subjectaltname string, or null if it is not exactly one.
 * A service certificate may carry DNS names and IP addresses besides it (where it listens): they
 * are host names, not identities.
 */
export function singleUriSan(subjectaltname: string | undefined): string | null {
  if (!subjectaltname) return null;
  // Node quotes entries holding separators; a quoted SAN is never one of ours.
  if (subjectaltname.includes('"')) return null;
  const [first = '', ...rest] = subjectaltname.split(', ');
  if (!first.startsWith('URI:')) return null;
  if (!rest.every((e) => e.startsWith('DNS:') || e.startsWith('IP Address:'))) return null;
  return first.slice(4);
}

export function spkiSha256(cert: PeerCertificate): string {
  const c = cert as PeerCertificate & { asn1Curve?: string };
  if (c.asn1Curve === 'prime256v1' && c.pubkey?.length === 65) {
    return createHash('sha256').update(P256_SPKI_PREFIX).update(c.pubkey).digest('hex');
  }
  const spki = new X509Certificate(cert.raw).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('hex');
}

/** Facts of a chain-verified peer certificate; throws ERR_AGENT_CERT_IDENTITY when it has no usable SPIFFE ID. */
export function certFacts(cert: PeerCertificate, trustDomain?: string): CertFacts {
  const uri = singleUriSan(cert.subjectaltname);
  if (uri === null)
    throw new EdgewardError('ERR_AGENT_CERT_IDENTITY', 'certificate must carry exactly one URI SAN');
  let td: string;
  try {
    td = parseIdentity(uri).trustDomain;
  } catch (cause) {
    throw new EdgewardError('ERR_AGENT_CERT_IDENTITY', 'URI SAN is not a valid SPIFFE ID', { cause });
  }
  if (trustDomain !== undefined && td !== trustDomain) {
    throw new EdgewardError('ERR_AGENT_CERT_IDENTITY', 'peer identity is in another trust domain');
  }
  const notAfter = Date.parse(cert.valid_to);
  return {
    identity: uri,
    serial: normalizeSerial(cert.serialNumber),
    spki: spkiSha256(cert),
    notAfter: Number.isNaN(notAfter) ? 0 : notAfter,
  };
}

/**
 * The facts of chain-verified peer certificates, keyed by the SHA-256 fingerprint of the whole
 * certificate (DER), so a peer that reconnects skips the identity parse and the SPKI hash. Only
 * what the certificate itself says is kept: chain verification, expiry, revocation, quarantine
 * and authorization are still decided afresh for every connection. A certificate that differs in
 * any byte has another key; failures are not cached; the table is bounded (oldest out first).
 */
export class PeerFactsCache {
  private readonly map = new Map<string, CertFacts>();
  hits = 0;
  misses = 0;

  constructor(
    private readonly trustDomain: string | undefined,
    readonly max = 1024,
  ) {
    if (!Number.isInteger(max) || max < 1)
      throw new TypeError('PeerFactsCache: max must be a positive integer');
  }

  get size(): number {
    return this.map.size;
  }

  /** certFacts(cert, trustDomain), remembered; throws ERR_AGENT_CERT_IDENTITY like certFacts. */
  get(cert: PeerCertificate): CertFacts {
    const key = cert.fingerprint256;
    // Node always sets it for a real peer certificate; without it there is nothing safe to key on.
    if (typeof key !== 'string' || key.length !== 95) return certFacts(cert, this.trustDomain);
    const hit = this.map.get(key);
    if (hit) {
      this.hits += 1;
      return hit;
    }
    this.misses += 1;
    const facts = Object.freeze(certFacts(cert, this.trustDomain));
    if (this.map.size >= this.max) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    this.map.set(key, facts);
    return facts;
  }

  clear(): void {
    this.map.clear();
  }
}

/** For checkServerIdentity: the server must present exactly `expect` as its one URI SAN. */
export function verifyPeerIdentity(cert: PeerCertificate, expect: string): Error | undefined {
  const uri = singleUriSan(cert.subjectaltname);
  if (uri !== expect) {
    return new EdgewardError(
      'ERR_AGENT_PEER_MISMATCH',
      `peer is ${uri ?? 'not a single-URI identity'}, expected ${expect}`,
    );
  }
  return undefined;
}
