// The dashboard's browser-facing certificate (`siem serve --dashboard-cert F --dashboard-key F`):
// read once at start and checked the way a browser will check it, so a wrong file stops the start
// with a coded error instead of every analyst's browser failing later.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { EdgewardError, type ErrorCode } from '../../common/errors.js';
import { fromPemAll, toPem } from '../../common/pem.js';

/** PEM files beyond this are not certificates or keys (and are not read into memory). */
const MAX_FILE_BYTES = 1024 * 1024;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const ANY_EKU = '2.5.29.37.0';

export interface DashboardCertificate {
  /** The chain as PEM, leaf first, re-encoded from what was read (no stray text). */
  readonly certPem: string;
  /** The private key as unencrypted PKCS#8 PEM. */
  readonly keyPem: string;
  /** The leaf's host names as node:crypto shows them: `DNS:dash.example`, `IP Address:10.0.0.5`. */
  readonly names: readonly string[];
  readonly notAfter: number;
}

function fail(code: ErrorCode, message: string, cause?: unknown): never {
  throw new EdgewardError(code, message, cause === undefined ? undefined : { cause });
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function readSmall(file: string, what: string): string {
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) fail('ERR_DASH_CERT_UNREADABLE', `${what} ${file} is not a regular file`);
    size = st.size;
  } catch (err) {
    if (err instanceof EdgewardError) throw err;
    return fail('ERR_DASH_CERT_UNREADABLE', `${what} ${file}: ${reason(err)}`, err);
  }
  if (size > MAX_FILE_BYTES)
    fail('ERR_DASH_CERT_UNREADABLE', `${what} ${file} is larger than ${MAX_FILE_BYTES} bytes`);
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    return fail('ERR_DASH_CERT_UNREADABLE', `${what} ${file}: ${reason(err)}`, err);
  }
}

/**
 * DNS and IP SANs from node's text form: `DNS:a, IP Address:1.2.3.4, URI:x`, where a name holding
 * `, ` or quotes is a JSON string (`URI:"spiffe://x, DNS:y"` is one URI, not a DNS name).
 */
export function hostNames(subjectAltName: string | undefined): string[] {
  const text = subjectAltName ?? '';
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon);
    let value: string;
    let end: number;
    if (text[colon + 1] === '"') {
      let j = colon + 2;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      end = j + 1;
      try {
        value = JSON.parse(text.slice(colon + 1, end)) as string;
      } catch {
        break;
      }
    } else {
      const sep = text.indexOf(', ', colon + 1);
      end = sep < 0 ? text.length : sep;
      value = text.slice(colon + 1, end);
    }
    if ((type === 'DNS' || type === 'IP Address') && value !== '') out.push(`${type}:${value}`);
    if (end >= text.length) break;
    if (!text.startsWith(', ', end)) break;
    i = end + 2;
  }
  return out;
}

function validity(c: X509Certificate): { from: number; to: number } {
  return { from: Date.parse(c.validFrom), to: Date.parse(c.validTo) };
}

/**
 * Reads and checks the operator's certificate (chain, leaf first) and key: readable, parseable,
 * the key matches the leaf, every certificate valid at `now`, each one issued by the next, the
 * leaf for TLS servers and carrying a DNS or IP SAN.
 */
export function loadDashboardCertificate(o: {
  certFile: string;
  keyFile: string;
  now: number;
}): DashboardCertificate {
  const certText = readSmall(o.certFile, 'certificate file');
  const keyText = readSmall(o.keyFile, 'key file');

  let ders: Buffer[];
  try {
    ders = fromPemAll(certText, 'CERTIFICATE');
  } catch (err) {
    return fail('ERR_DASH_CERT_MALFORMED', `${o.certFile}: ${reason(err)}`, err);
  }
  if (ders.length === 0) fail('ERR_DASH_CERT_MALFORMED', `${o.certFile} holds no CERTIFICATE block`);
  const chain = ders.map((der, i) => {
    try {
      return new X509Certificate(der);
    } catch (err) {
      return fail('ERR_DASH_CERT_MALFORMED', `${o.certFile}: certificate #${i + 1}: ${reason(err)}`, err);
    }
  });
  const leaf = chain[0] as X509Certificate;

  let key: KeyObject;
  try {
    key = createPrivateKey(keyText);
  } catch (err) {
    return fail('ERR_DASH_KEY_MALFORMED', `${o.keyFile}: ${reason(err)}`, err);
  }
  if (!leaf.checkPrivateKey(key))
    fail(
      'ERR_DASH_CERT_KEY_MISMATCH',
      `${o.keyFile} is not the key of the first certificate in ${o.certFile}`,
    );

  chain.forEach((c, i) => {
    const v = validity(c);
    if (!(o.now >= v.from && o.now <= v.to))
      fail(
        'ERR_DASH_CERT_EXPIRED',
        `${i === 0 ? 'certificate' : `chain certificate #${i + 1}`} in ${o.certFile} is valid from ` +
          `${c.validFrom} to ${c.validTo}, not now`,
      );
  });
  for (let i = 0; i + 1 < chain.length; i++) {
    const c = chain[i] as X509Certificate;
    const issuer = chain[i + 1] as X509Certificate;
    if (!c.checkIssued(issuer) || !c.verify(issuer.publicKey))
      fail(
        'ERR_DASH_CERT_CHAIN',
        `certificate #${i + 2} in ${o.certFile} did not issue certificate #${i + 1} (leaf first, then its issuers)`,
      );
  }

  const eku = leaf.keyUsage;
  if (eku !== undefined && !eku.includes(SERVER_AUTH) && !eku.includes(ANY_EKU))
    fail('ERR_DASH_CERT_USAGE', `the certificate's extended key usage (${eku.join(', ')}) lacks serverAuth`);
  const names = hostNames(leaf.subjectAltName);
  if (names.length === 0)
    fail(
      'ERR_DASH_CERT_NO_HOST_NAME',
      `the certificate in ${o.certFile} names ${leaf.subjectAltName ?? 'no subject alternative names'}; ` +
        'browsers need a DNS or IP subject alternative name',
    );

  const certPem = ders.map((d) => toPem('CERTIFICATE', d)).join('');
  const keyPem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  try {
    // What OpenSSL itself refuses (a key too small for its security level, say) fails here too.
    createSecureContext({ cert: certPem, key: keyPem, minVersion: 'TLSv1.3' });
  } catch (err) {
    fail('ERR_DASH_CERT_MALFORMED', `TLS refuses the certificate and key: ${reason(err)}`, err);
  }
  return { certPem, keyPem, names, notAfter: validity(leaf).to };
}
