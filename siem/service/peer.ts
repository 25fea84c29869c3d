// Who is on the other end of a request: the verified mTLS client certificate's one SPIFFE ID in
// our trust domain, and who may use the analyst API (a function a dashboard session can extend).
import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import { EdgewardError } from '../../common/errors.js';
import { reporterKind, type ReporterKind } from '../../common/events.js';
import { parseIdentity, serviceId } from '../../common/identity.js';
import { normalizeSerial, spkiSha256Hex, uriSans } from '../../common/x509.js';

export interface Peer {
  readonly identity: string;
  readonly serial: string;
}

/** A peer as a reporter: its identity, certificate serial and SPKI hash, and its kind. */
export interface ReporterPeer extends Peer {
  readonly spki: string;
  readonly kind: ReporterKind;
}

// A TLS 1.3 connection keeps the certificate it was opened with: the facts of a kept-alive
// connection are worked out once, not for each of its requests.
const reporters = new WeakMap<TLSSocket, ReporterPeer>();

/** peerOf, plus the SPKI hash and the reporter kind derived from the identity (never the body). */
export function reporterOf(req: FastifyRequest, trustDomain: string): ReporterPeer {
  const sock = req.raw.socket as TLSSocket;
  const known = reporters.get(sock);
  if (known !== undefined) return known;
  const peer = peerOf(req, trustDomain);
  const cert = sock.getPeerX509Certificate?.() as X509Certificate;
  const spki = spkiSha256Hex(cert.publicKey.export({ type: 'spki', format: 'der' }));
  const r: ReporterPeer = { ...peer, spki, kind: reporterKind(peer.identity, trustDomain) };
  reporters.set(sock, r);
  return r;
}

/** The verified client certificate's identity; never anything from the request body. */
export function peerOf(req: FastifyRequest, trustDomain: string): Peer {
  const sock = req.raw.socket as TLSSocket;
  const cert: X509Certificate | undefined = sock.getPeerX509Certificate?.();
  if (!cert) throw new EdgewardError('ERR_SIEM_UNAUTHENTICATED');
  if (!sock.authorized) {
    throw new EdgewardError('ERR_SIEM_CERT_UNTRUSTED', undefined, {
      detail: { why: String(sock.authorizationError ?? '') },
    });
  }
  const uris = uriSans(cert.subjectAltName);
  const uri = uris[0];
  if (uris.length !== 1 || uri === undefined)
    throw new EdgewardError('ERR_SIEM_CERT_UNTRUSTED', 'certificate must carry one URI SAN');
  let td: string;
  try {
    td = parseIdentity(uri).trustDomain;
  } catch (err) {
    throw new EdgewardError('ERR_SIEM_CERT_UNTRUSTED', 'certificate URI SAN is not a SPIFFE ID', {
      cause: err,
    });
  }
  if (td !== trustDomain) throw new EdgewardError('ERR_SIEM_FORBIDDEN', 'identity of another trust domain');
  return { identity: uri, serial: normalizeSerial(cert.serialNumber) };
}

/** Someone allowed to read and change decisions. `id` goes to the audit trail. */
export interface Principal {
  readonly id: string;
  /** How they proved it: `mtls` (the admin certificate) or what an extension says (`session`). */
  readonly via: string;
}

/**
 * An extension tried first (e.g. the dashboard's session cookie): a Principal, or undefined to
 * fall through to mTLS. It must throw a coded error itself to refuse outright.
 */
export type AnalystExtension = (req: FastifyRequest) => Principal | undefined;

export type AnalystAuthorizer = (req: FastifyRequest) => Principal;

/** Analysts: the extension's principal, else the mTLS identity spiffe://TD/svc/admin. */
export function createAnalystAuthorizer(
  trustDomain: string,
  extension?: AnalystExtension,
): AnalystAuthorizer {
  const admin = serviceId(trustDomain, 'admin');
  return (req) => {
    const p = extension?.(req);
    if (p !== undefined) return p;
    const peer = peerOf(req, trustDomain);
    if (peer.identity !== admin) throw new EdgewardError('ERR_SIEM_FORBIDDEN');
    return { id: peer.identity, via: 'mtls' };
  };
}

/**
 * Who a refused request's label values are charged to (metrics' per-source caps): its verified
 * client certificate's identity, else its address. Never throws.
 */
export function sourceOf(req: FastifyRequest): string {
  const sock = req.raw.socket as TLSSocket;
  const known = reporters.get(sock);
  if (known !== undefined) return known.identity;
  try {
    const cert = sock.authorized ? sock.getPeerX509Certificate?.() : undefined;
    const uri = cert === undefined ? undefined : uriSans(cert.subjectAltName)[0];
    if (uri !== undefined) return uri;
  } catch {
    // no usable certificate: the address stands for the client
  }
  return `address:${req.ip}`;
}
