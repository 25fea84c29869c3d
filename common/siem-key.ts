// The SIEM's decision-signing key is its identity key. This turns the SIEM's certificate chain
// (GET /v1/decisions/key) into that public key for verifiers (agents, the CA): the chain must
// lead to a root of the trust bundle and the leaf must carry exactly spiffe://TD/svc/siem.
import { X509Certificate, type KeyObject } from 'node:crypto';
import { EdgewardError } from './errors.js';
import { serviceId } from './identity.js';
import { fromPemAll } from './pem.js';
import { spkiSha256Hex, uriSans } from './x509.js';

const MAX_CHAIN = 4;

export interface SiemDecisionKey {
  readonly publicKey: KeyObject;
  /** The kid the SIEM puts in its JWS headers: hex SHA-256 of the leaf's SubjectPublicKeyInfo. */
  readonly kid: string;
  readonly notAfter: number;
}

function refuse(msg: string, cause?: unknown): never {
  throw new EdgewardError('ERR_SIEM_DECISION_KEY', msg, cause === undefined ? undefined : { cause });
}

function certs(pem: string, what: string): X509Certificate[] {
  let ders: Buffer[];
  try {
    ders = fromPemAll(pem, 'CERTIFICATE');
  } catch (err) {
    refuse(`${what} is not PEM`, err);
  }
  if (ders.length === 0 || ders.length > 16) refuse(`${what} holds no or too many certificates`);
  try {
    return ders.map((d) => new X509Certificate(d));
  } catch (err) {
    refuse(`${what} holds a malformed certificate`, err);
  }
}

function valid(c: X509Certificate, now: number): boolean {
  return Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
}

/** Verifies the SIEM's chain (leaf first, as GET /v1/decisions/key serves it) against the bundle. */
export function verifySiemChain(
  chainPem: string,
  bundlePem: string,
  trustDomain: string,
  now: number,
): SiemDecisionKey {
  const chain = certs(chainPem, 'chain');
  const roots = certs(bundlePem, 'bundle');
  const leaf = chain[0] as X509Certificate;
  const sans = uriSans(leaf.subjectAltName);
  if (sans.length !== 1 || sans[0] !== serviceId(trustDomain, 'siem'))
    refuse('leaf is not the SIEM of this trust domain');
  if (leaf.ca) refuse('leaf is a CA certificate');
  const pub = leaf.publicKey;
  if (pub.asymmetricKeyType !== 'ec' || pub.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    refuse('leaf key is not P-256');
  let cur = leaf;
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    if (!valid(cur, now)) refuse('a certificate of the chain is expired or not yet valid');
    const root = roots.find((r) => cur.checkIssued(r) && cur.verify(r.publicKey));
    if (root !== undefined) {
      if (!valid(root, now)) refuse('the trust root is expired');
      return {
        publicKey: pub,
        kid: spkiSha256Hex(pub.export({ type: 'spki', format: 'der' })),
        notAfter: Date.parse(leaf.validTo),
      };
    }
    const next = chain.find((c) => c !== cur && c.ca && cur.checkIssued(c) && cur.verify(c.publicKey));
    if (next === undefined) refuse('chain does not lead to the trust bundle');
    cur = next;
  }
  return refuse('chain too long');
}
