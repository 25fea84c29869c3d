// The client side of the CA's API: pinning the root by fingerprint on first contact, then
// requests that verify the CA's certificate against that root and its spiffe://TD/svc/ca name.
import { X509Certificate } from 'node:crypto';
import { request, type RequestOptions } from 'node:https';
import { EdgewardError } from '../common/errors.js';
import { serviceId } from '../common/identity.js';
import { fromPemAll, toPem } from '../common/pem.js';
import { fingerprintSha256, normalizeFingerprint, uriSans } from '../common/x509.js';
import { replicasFor, type Replicas, type ServiceUrls } from './replicas.js';

export interface CaEndpoint {
  /** The first of the CA's URLs. */
  readonly url: URL;
  /** Every replica's URL, tried in turn when one is down. */
  readonly replicas: Replicas;
  /** Trusted root(s), PEM. */
  readonly bundlePem: string;
  readonly trustDomain: string;
}

export interface ClientCredentials {
  readonly keyPem: string;
  readonly certPem: string;
}

const MAX_RESPONSE = 1024 * 1024;

interface RawResponse {
  status: number;
  body: Buffer;
}

function send(url: URL, opts: RequestOptions, body?: Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...opts, timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE) req.destroy(new EdgewardError('ERR_ENROLL_RESPONSE', 'response too large'));
        else chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () =>
      req.destroy(
        new EdgewardError('ERR_ENROLL_TRANSPORT', `${url.origin}: CA request timed out`, {
          detail: { timeout: true },
        }),
      ),
    );
    req.on('error', (err) =>
      reject(
        err instanceof EdgewardError
          ? err
          : new EdgewardError('ERR_ENROLL_TRANSPORT', `${url.origin}: ${err.message}`, { cause: err }),
      ),
    );
    req.end(body);
  });
}

function parseUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new EdgewardError('ERR_CONFIG_INVALID', `not a URL: ${url}`);
  }
  if (u.protocol !== 'https:') throw new EdgewardError('ERR_CONFIG_INVALID', 'the CA URL must be https://');
  return u;
}

/**
 * First contact: fetch the bundle without trusting the connection, then keep only the root whose
 * SHA-256 fingerprint is the pinned one. Everything after verifies against that root.
 */
export async function pinCa(url: ServiceUrls, fingerprint: string, trustDomain: string): Promise<CaEndpoint> {
  const replicas = checkedReplicas(url);
  const want = normalizeFingerprint(fingerprint);
  if (!/^[0-9a-f]{64}$/.test(want))
    throw new EdgewardError('ERR_CONFIG_INVALID', 'fingerprint must be 64 hex digits (SHA-256)');
  const res = await replicas.call(async (u) => {
    const r = await send(new URL('/v1/bundle', u), { method: 'GET', rejectUnauthorized: false });
    if (r.status !== 200)
      throw new EdgewardError('ERR_ENROLL_RESPONSE', `bundle request answered ${r.status}`, {
        detail: { status: r.status },
      });
    return r;
  });
  const roots = fromPemAll(res.body.toString('utf8'), 'CERTIFICATE');
  const root = roots.find((der) => fingerprintSha256(der) === want);
  if (!root) throw new EdgewardError('ERR_ENROLL_FINGERPRINT');
  return {
    url: new URL(replicas.urls[0] as string),
    replicas,
    bundlePem: toPem('CERTIFICATE', root),
    trustDomain,
  };
}

function checkedReplicas(urls: ServiceUrls): Replicas {
  const list = typeof urls === 'string' ? [urls] : urls;
  return replicasFor(list.map((x) => parseUrl(x).href));
}

export function endpointFromBundle(url: ServiceUrls, bundlePem: string, trustDomain: string): CaEndpoint {
  const replicas = checkedReplicas(url);
  return { url: new URL(replicas.urls[0] as string), replicas, bundlePem, trustDomain };
}

/**
 * Why a server is not the one expected; when it is the same service of another trust domain,
 * the message names both (a CA of another deployment, or an identity of the wrong one).
 */
export function serverMismatch(uris: readonly string[], expected: string): string {
  const want = /^spiffe:\/\/([^/]+)(\/.*)$/.exec(expected);
  const got = uris.length === 1 ? /^spiffe:\/\/([^/]+)(\/.*)$/.exec(uris[0] as string) : null;
  if (want && got && got[2] === want[2] && got[1] !== want[1])
    return `the server is ${uris[0] as string}, of trust domain ${got[1] as string}; the identity is in trust domain ${want[1] as string} (expected ${expected})`;
  return `server is ${uris.length === 1 ? (uris[0] as string) : 'not a single-URI identity'}, expected ${expected}`;
}

export async function caRequest<T>(
  ep: CaEndpoint,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  creds?: ClientCredentials,
): Promise<{ status: number; json: T; raw: Buffer }> {
  const expected = serviceId(ep.trustDomain, 'ca');
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return ep.replicas.call(async (base) => {
    const r = await send(
      new URL(path, base),
      {
        method,
        ca: ep.bundlePem,
        minVersion: 'TLSv1.3',
        ...(creds ? { key: creds.keyPem, cert: creds.certPem } : {}),
        headers: payload
          ? { 'content-type': 'application/json', 'content-length': String(payload.length) }
          : {},
        // The CA is known by its SPIFFE ID, not by a host name.
        checkServerIdentity: (_host, cert) => {
          const uris = uriSans(cert.subjectaltname);
          return uris.includes(expected)
            ? undefined
            : new EdgewardError('ERR_ENROLL_SERVER_IDENTITY', serverMismatch(uris, expected));
        },
      },
      payload,
    );
    // A refusal carries its status: a replica answering 502/503/504 is down for this call, and
    // the next one is tried (replicas.ts); any other refusal is the answer.
    return answer<T>(r);
  });
}

function answer<T>(res: RawResponse): { status: number; json: T; raw: Buffer } {
  const isJson = res.body.length > 0 && (res.body[0] === 0x7b || res.body[0] === 0x5b);
  let json: unknown = undefined;
  if (isJson) {
    try {
      json = JSON.parse(res.body.toString('utf8'));
    } catch {
      throw new EdgewardError('ERR_ENROLL_RESPONSE', 'CA answered with malformed JSON');
    }
  }
  if (res.status >= 400) {
    const e = (json ?? {}) as { code?: unknown; message?: unknown };
    const code = typeof e.code === 'string' ? e.code : `HTTP ${res.status}`;
    throw new EdgewardError(
      'ERR_ENROLL_REFUSED',
      `the CA refused: ${code} (${typeof e.message === 'string' ? e.message : ''})`,
      {
        detail: { status: res.status, remoteCode: code },
      },
    );
  }
  return { status: res.status, json: json as T, raw: res.body };
}

/** The error code the CA answered with, when err is a refusal. */
export function remoteCode(err: unknown): string | undefined {
  if (err instanceof EdgewardError && err.code === 'ERR_ENROLL_REFUSED')
    return err.detail?.['remoteCode'] as string | undefined;
  return undefined;
}

export interface IssuedResponse {
  identity: string;
  serial: string;
  notAfter: string;
  certificate: string;
  bundle: string;
}

/** Checks an issuance answer: the chain's leaf is for our key and identity. */
export function checkIssued(r: unknown, identity: string, spkiDer: Buffer): IssuedResponse {
  const v = r as Partial<IssuedResponse> | undefined;
  if (
    !v ||
    typeof v.certificate !== 'string' ||
    typeof v.bundle !== 'string' ||
    typeof v.serial !== 'string'
  ) {
    throw new EdgewardError('ERR_ENROLL_RESPONSE', 'issuance answer lacks certificate, bundle or serial');
  }
  const leaf = new X509Certificate(v.certificate);
  if (!leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(spkiDer)) {
    throw new EdgewardError('ERR_ENROLL_RESPONSE', 'issued certificate is not for our key');
  }
  if (!uriSans(leaf.subjectAltName).includes(identity)) {
    throw new EdgewardError('ERR_ENROLL_RESPONSE', 'issued certificate is not for our identity');
  }
  return v as IssuedResponse;
}
