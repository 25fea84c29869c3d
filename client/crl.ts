// Parses the CA's CRL (DER) into revoked serials after checking its framing and its signature
// against the intermediate(s) the caller (an agent, the SIEM) trusts for its trust domain.
import { X509Certificate } from 'node:crypto';
import {
  children,
  derAs,
  expectTag,
  readIntegerBytes,
  readSmallInt,
  readTime,
  type Tlv,
} from '../common/der.js';
import { EdgewardError } from '../common/errors.js';
import { nameText, normalizeSerial, readCertificate, readSigned, verifySigned } from '../common/x509.js';

export const MAX_CRL_BYTES = 8 * 1024 * 1024;

export interface VerifiedCrl {
  readonly serials: ReadonlySet<string>;
  readonly thisUpdate: number;
  readonly nextUpdate: number | null;
  readonly issuer: string;
}

interface CrlFields {
  readonly issuer: Tlv;
  readonly thisUpdate: number;
  readonly nextUpdate: number | null;
  readonly serials: Set<string>;
}

function canonicalSerial(bytes: Buffer): string {
  try {
    return normalizeSerial(bytes.toString('hex'));
  } catch (cause) {
    throw new EdgewardError('ERR_DER_MALFORMED', 'malformed DER: serial too long', { cause });
  }
}

const isTime = (t: Tlv | undefined): boolean => t?.tag === 0x17 || t?.tag === 0x18;

/** TBSCertList: version (v2) OPTIONAL, signature, issuer, thisUpdate, nextUpdate OPTIONAL, revoked OPTIONAL, [0] extensions. */
function readTbsCertList(tbs: Tlv): CrlFields {
  const f = children(tbs);
  let i = 0;
  if (f[i]?.tag === 0x02) {
    if (readSmallInt(f[i]) !== 1)
      throw new EdgewardError('ERR_DER_MALFORMED', 'malformed DER: CRL version is not v2');
    i++;
  }
  expectTag(f[i++], 0x30, 'a signature AlgorithmIdentifier');
  const issuer = expectTag(f[i++], 0x30, 'an issuer Name');
  const thisUpdate = readTime(f[i++]);
  const nextUpdate = isTime(f[i]) ? readTime(f[i++]) : null;
  const serials = new Set<string>();
  if (f[i]?.tag === 0x30) {
    for (const entry of children(f[i++] as Tlv)) {
      const [serial, revokedAt] = children(expectTag(entry, 0x30, 'a revoked certificate'));
      readTime(revokedAt);
      serials.add(canonicalSerial(readIntegerBytes(serial)));
    }
  }
  if (f[i]?.tag === 0xa0) i++;
  if (i !== f.length) throw new EdgewardError('ERR_DER_MALFORMED', 'malformed DER: unexpected CRL field');
  return { issuer, thisUpdate, nextUpdate, serials };
}

export async function parseVerifiedCrl(der: Uint8Array, issuerPems: readonly string[]): Promise<VerifiedCrl> {
  if (der.length === 0 || der.length > MAX_CRL_BYTES)
    throw new EdgewardError('ERR_AGENT_CRL_MALFORMED', 'CRL empty or too large');
  const buf = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const signed = derAs('ERR_AGENT_CRL_MALFORMED', 'CRL', () => readSigned(buf));
  const crl = derAs('ERR_AGENT_CRL_MALFORMED', 'CRL', () => readTbsCertList(signed.tbs));
  const issuer = derAs('ERR_AGENT_CRL_MALFORMED', 'CRL issuer', () => nameText(crl.issuer));
  let verified = false;
  for (const pem of issuerPems) {
    let cert: X509Certificate;
    let subject: Buffer;
    try {
      cert = new X509Certificate(pem);
      subject = readCertificate(cert.raw).subject.raw;
    } catch {
      continue;
    }
    if (!subject.equals(crl.issuer.raw)) continue;
    if (verifySigned(signed, cert.publicKey)) {
      verified = true;
      break;
    }
  }
  if (!verified) throw new EdgewardError('ERR_AGENT_CRL_SIGNATURE', undefined, { detail: { issuer } });
  return { serials: crl.serials, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate, issuer };
}
