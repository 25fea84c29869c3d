// Just enough DER to read an EK certificate's extensions (OID, critical flag, value), which
// node:crypto's X509Certificate does not expose. Bounded: lengths checked, no indefinite lengths,
// nesting limited by the fixed path we walk. Unlike common/der.ts (the strict reader) it accepts
// non-minimal length encodings, hence names of its own (EkTlv, readEkTlv).
import { EdgewardError } from '../../common/errors.js';

export interface EkTlv {
  readonly tag: number;
  readonly value: Buffer;
  readonly end: number;
}

function bad(what: string): EdgewardError {
  return new EdgewardError('ERR_ATT_TPM_EK_CERT_MALFORMED', `EK certificate: ${what}`);
}

export function readEkTlv(buf: Buffer, pos: number): EkTlv {
  if (pos + 2 > buf.length) throw bad('truncated');
  const tag = buf[pos] as number;
  if ((tag & 0x1f) === 0x1f) throw bad('multi-byte tags are not used in certificates');
  let len = buf[pos + 1] as number;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || p + n > buf.length) throw bad('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[p + i] as number);
    p += n;
  }
  if (p + len > buf.length) throw bad('length past the end');
  return { tag, value: buf.subarray(p, p + len), end: p + len };
}

export function ekChildren(buf: Buffer): EkTlv[] {
  const out: EkTlv[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const t = readEkTlv(buf, pos);
    out.push(t);
    pos = t.end;
  }
  return out;
}

export function oidToString(b: Buffer): string {
  if (b.length === 0) throw bad('empty OID');
  const first = b[0] as number;
  const parts = [Math.min(2, Math.floor(first / 40)), first - Math.min(2, Math.floor(first / 40)) * 40];
  let v = 0;
  for (let i = 1; i < b.length; i++) {
    const c = b[i] as number;
    v = v * 128 + (c & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 128) throw bad('OID arc too large');
    if (!(c & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

export interface Extension {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Buffer;
}

/** The extensions of a DER certificate (empty when it has none). */
export function certificateExtensions(der: Buffer): Extension[] {
  const cert = readEkTlv(der, 0);
  if (cert.tag !== 0x30 || cert.end !== der.length) throw bad('not a single SEQUENCE');
  const tbs = ekChildren(cert.value)[0];
  if (!tbs || tbs.tag !== 0x30) throw bad('no tbsCertificate');
  const extsWrapper = ekChildren(tbs.value).find((t) => t.tag === 0xa3);
  if (!extsWrapper) return [];
  const seq = readEkTlv(extsWrapper.value, 0);
  if (seq.tag !== 0x30 || seq.end !== extsWrapper.value.length) throw bad('bad extensions');
  return ekChildren(seq.value).map((e) => {
    if (e.tag !== 0x30) throw bad('bad extension');
    const parts = ekChildren(e.value);
    const oid = parts[0];
    if (!oid || oid.tag !== 0x06) throw bad('extension without OID');
    let critical = false;
    let i = 1;
    if (parts[i]?.tag === 0x01) {
      critical = parts[i]?.value.length === 1 && parts[i]?.value[0] !== 0;
      i++;
    }
    const val = parts[i];
    if (!val || val.tag !== 0x04 || i + 1 !== parts.length) throw bad('bad extension value');
    return { oid: oidToString(oid.value), critical, value: val.value };
  });
}

/** The SubjectPublicKeyInfo of a DER certificate, as its exact bytes (tag and length included). */
export function certificateSpki(der: Buffer): Buffer {
  const cert = readEkTlv(der, 0);
  const tbs = ekChildren(cert.value)[0];
  if (!tbs || tbs.tag !== 0x30) throw bad('no tbsCertificate');
  const fields = ekChildren(tbs.value);
  // version [0] is optional; then serial, signature, issuer, validity, subject, subjectPublicKeyInfo
  const at = fields[0]?.tag === 0xa0 ? 6 : 5;
  const spki = fields[at];
  if (!spki || spki.tag !== 0x30) throw bad('no subjectPublicKeyInfo');
  const start = tbs.value.byteOffset - der.byteOffset;
  let pos = start;
  for (let i = 0; i < at; i++) pos = readEkTlv(der, pos).end;
  return der.subarray(pos, spki.end + start);
}
