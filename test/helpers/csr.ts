// Hand-made CSRs for negative tests: extra SANs, CA flags, broken signatures, other keys.
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { bitString, bool, explicit, oid, seq, set, smallInt, tlv, octet } from '../../common/der.js';
import { toPem } from '../../common/pem.js';
import { OID, encodeName, extension } from '../../common/x509.js';

export interface CsrSpec {
  key?: { privateKey: KeyObject; publicKey: KeyObject };
  uris?: string[];
  dns?: string[];
  /** IP SANs as raw bytes (4 or 16, or anything for negative tests). */
  ips?: Buffer[];
  caFlag?: boolean;
  criticalUnknown?: boolean;
  corruptSignature?: boolean;
}

export function p256(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

export function customCsr(spec: CsrSpec): { pem: string; key: KeyObject; spkiDer: Buffer } {
  const key = spec.key ?? p256();
  const spki = key.publicKey.export({ type: 'spki', format: 'der' });
  const names = [
    ...(spec.uris ?? []).map((u) => tlv(0x86, Buffer.from(u, 'ascii'))),
    ...(spec.dns ?? []).map((d) => tlv(0x82, Buffer.from(d, 'ascii'))),
    ...(spec.ips ?? []).map((ip) => tlv(0x87, ip)),
  ];
  const exts = [
    ...(names.length > 0 ? [extension(OID.subjectAltName, false, seq(...names))] : []),
    ...(spec.caFlag ? [extension(OID.basicConstraints, true, seq(bool(true)))] : []),
    ...(spec.criticalUnknown ? [extension('1.2.3.4.5', true, octet(Buffer.from('x')))] : []),
  ];
  const attrs = explicit(
    0,
    exts.length ? seq(oid(OID.extensionRequest), set(seq(...exts))) : Buffer.alloc(0),
  );
  const info = seq(smallInt(0), encodeName([]), spki, attrs);
  const isEc = key.publicKey.asymmetricKeyType === 'ec';
  const alg = isEc ? seq(oid(OID.ecdsaWithSha256)) : seq(oid(OID.sha256WithRsa), tlv(0x05, Buffer.alloc(0)));
  const sig = sign('sha256', info, key.privateKey);
  if (spec.corruptSignature) sig.writeUInt8((sig.at(-3) ?? 0) ^ 0x01, sig.length - 3);
  return {
    pem: toPem('CERTIFICATE REQUEST', seq(info, alg, bitString(sig))),
    key: key.privateKey,
    spkiDer: spki,
  };
}
