// The mTLS HTTPS client of the control plane (CA, SIEM): TLS 1.3 with the caller's identity, the
// server's SPIFFE ID pinned, keep-alive pools, and one bounded request (CRL fetch, decision acks,
// keys) whose body is capped so a hostile or broken server cannot make the caller buffer without bound.
import * as https from 'node:https';
import type * as tls from 'node:tls';
import type { PeerCertificate, SecureContext } from 'node:tls';
import { EdgewardError, type ErrorCode } from '../common/errors.js';
import { uriSans } from '../common/x509.js';
import { serverMismatch } from './ca-client.js';

/**
 * For checkServerIdentity on control-plane calls (CA, SIEM): exactly one URI SAN, equal to
 * `expect`. Service certificates also name where they listen (DNS, IP), which proves nothing
 * here and is allowed beside it.
 */
export function verifyServiceIdentity(cert: PeerCertificate, expect: string): Error | undefined {
  const uris = uriSans(cert.subjectaltname);
  if (uris.length === 1 && uris[0] === expect) return undefined;
  return new EdgewardError('ERR_AGENT_PEER_MISMATCH', serverMismatch(uris, expect));
}

// One keep-alive pool per TLS context: SIEM and CA calls reuse connections instead of paying a
// handshake per batch or acknowledgement; a rotated context gets a fresh pool, the old one idles out.
const pools = new WeakMap<SecureContext, https.Agent>();

export function poolFor(context: SecureContext): https.Agent {
  let a = pools.get(context);
  if (!a) {
    a = new https.Agent({ keepAlive: true, maxSockets: 4, maxFreeSockets: 2, timeout: 30_000 });
    pools.set(context, a);
  }
  return a;
}

/** mTLS client options for calls to the SIEM or the CA: the caller's identity, TLS 1.3, the peer's SPIFFE ID pinned. */
export function tlsOptions(context: SecureContext, expect: string | null): https.RequestOptions {
  const o: tls.ConnectionOptions = {
    secureContext: context,
    minVersion: 'TLSv1.3',
    checkServerIdentity: (_host, cert) => (expect === null ? undefined : verifyServiceIdentity(cert, expect)),
  };
  return o;
}

export interface HttpsCall {
  readonly url: string;
  readonly method?: 'GET' | 'POST';
  readonly body?: Buffer;
  readonly headers?: Record<string, string>;
  readonly context: SecureContext;
  /** Server's SPIFFE ID to pin, or null to rely on the chain alone. */
  readonly expect: string | null;
  readonly maxBytes: number;
  readonly timeout?: number;
  readonly code: ErrorCode;
}

export function httpsCall(o: HttpsCall): Promise<{ status: number; body: Buffer; type: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      o.url,
      {
        method: o.method ?? 'GET',
        headers: { ...(o.body ? { 'content-length': String(o.body.length) } : {}), ...o.headers },
        ...tlsOptions(o.context, o.expect),
        agent: poolFor(o.context),
        timeout: o.timeout ?? 10_000,
      },
      (res) => {
        const declared = Number(res.headers['content-length'] ?? 0);
        if (declared > o.maxBytes) {
          req.destroy(new EdgewardError(o.code, 'response too large'));
          return;
        }
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n > o.maxBytes) req.destroy(new EdgewardError(o.code, 'response too large'));
          else chunks.push(c);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks),
            type: String(res.headers['content-type'] ?? ''),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () =>
      req.destroy(new EdgewardError(o.code, 'timed out', { detail: { timeout: true } })),
    );
    req.on('error', (cause) =>
      reject(cause instanceof EdgewardError ? cause : new EdgewardError(o.code, undefined, { cause })),
    );
    req.end(o.body);
  });
}
