// Parses the CA's CRL (DER) into revoked serials after checking its framing and its signature
// against the intermediate(s) the caller (an agent, the SIEM) trusts for its trust domain.
import { webcrypto } from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import { children, parseDer, readBitStringBytes, readOid } from '../common/der.js';
import { EdgewardError } from '../common/errors.js';
import { normalizeSerial } from '../common/x509.js';

// The X.509 library (and the reflect-metadata it needs first) loads at the first CRL read: the
// client's face is loaded by processes that never read a CRL (the CA, enroll), and it is the
// client's heaviest import.
let library: Promise<typeof X509> | undefined;
function x509Library(): Promise<typeof X509> {
  library ??= import('reflect-metadata')
    .then(() => import('@peculiar/x509'))
    .then((x509) => {
      x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
      return x509;
    });
  return library;
}

export const MAX_CRL_BYTES = 8 * 1024 * 1024;

export interface VerifiedCrl {
  readonly serials: ReadonlySet<string>;
  readonly thisUpdate: number;
  readonly nextUpdate: number | null;
  readonly issuer: string;
}

/** Length of a DER TLV starting at 0 (header + body), or -1 when the header is not sound. */
export function derTotalLength(b: Uint8Array): number {
  if (b.length < 2 || b[0] !== 0x30) return -1;
  const first = b[1]!;
  if (first < 0x80) return 2 + first;
  const n = first & 0x7f;
  if (n === 0 || n > 4 || b.length < 2 + n) return -1;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + b[2 + i]!;
  if (len < 0x80 || (n > 1 && b[2] === 0)) return -1; // non-minimal length encodings are not DER
  return 2 + n + len;
}

export async function parseVerifiedCrl(der: Uint8Array, issuerPems: readonly string[]): Promise<VerifiedCrl> {
  if (der.length === 0 || der.length > MAX_CRL_BYTES)
    throw new EdgewardError('ERR_AGENT_CRL_MALFORMED', 'CRL empty or too large');
  const total = derTotalLength(der);
  if (total !== der.length)
    throw new EdgewardError(
      'ERR_AGENT_CRL_MALFORMED',
      total < 0
        ? 'CRL is not a DER SEQUENCE'
        : 'CRL length does not match its DER header (trailing or missing bytes)',
    );
  // Outside tbsCertList nothing may vary, because the X.509 library reads BER leniently (it ignores
  // a BIT STRING's unused bits and the tag of an ECDSA signature's SEQUENCE): signatureAlgorithm
  // is the signed one byte for byte, and an ECDSA signature is DER with minimal INTEGERs.
  try {
    const top = children(parseDer(Buffer.from(der.buffer, der.byteOffset, der.length), 0x30));
    const [tbs, alg, sigT] = top;
    if (top.length !== 3 || tbs?.tag !== 0x30 || alg?.tag !== 0x30) throw new Error('shape');
    const fields = children(tbs);
    const signed = fields[0]?.tag === 0x02 ? fields[1] : fields[0];
    if (!signed || !signed.raw.equals(alg.raw))
      throw new Error('signatureAlgorithm differs from the signed one');
    const sig = readBitStringBytes(sigT);
    if (readOid(children(alg)[0]).startsWith('1.2.840.10045.4.')) {
      const rs = children(parseDer(sig, 0x30));
      const minimal = (v: Buffer): boolean =>
        v.length > 0 &&
        !((v[0] as number) & 0x80) &&
        !(v[0] === 0 && v.length > 1 && !((v[1] as number) & 0x80));
      if (rs.length !== 2 || rs.some((i) => i.tag !== 0x02 || !minimal(i.value)))
        throw new Error('ECDSA signature is not two minimal positive INTEGERs');
    }
  } catch (cause) {
    throw new EdgewardError('ERR_AGENT_CRL_MALFORMED', 'CRL is not a CertificateList', { cause });
  }
  const x509 = await x509Library();
  let crl: X509.X509Crl;
  let serials: Set<string>;
  try {
    crl = new x509.X509Crl(der.slice());
    serials = new Set(crl.entries.map((e) => normalizeSerial(e.serialNumber)));
  } catch (cause) {
    throw new EdgewardError('ERR_AGENT_CRL_MALFORMED', 'CRL could not be parsed', { cause });
  }
  let verified = false;
  for (const pem of issuerPems) {
    let issuer: X509.X509Certificate;
    try {
      issuer = new x509.X509Certificate(pem);
    } catch {
      continue;
    }
    if (issuer.subject !== crl.issuer) continue;
    try {
      if (await crl.verify({ publicKey: issuer })) {
        verified = true;
        break;
      }
    } catch {
      // a key type mismatch is just "not this issuer"
    }
  }
  if (!verified)
    throw new EdgewardError('ERR_AGENT_CRL_SIGNATURE', undefined, { detail: { issuer: crl.issuer } });
  return {
    serials,
    thisUpdate: crl.thisUpdate.getTime(),
    nextUpdate: crl.nextUpdate?.getTime() ?? null,
    issuer: crl.issuer,
  };
}
