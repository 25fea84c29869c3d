// A small DER writer and a strict DER reader. The writer builds certificates and CRLs without an
// ASN.1 object model (issuance is a hot path); the reader refuses indefinite or non-minimal
// lengths, lengths past the buffer and trailing bytes, because everything it reads is hostile.
import { EdgewardError } from './errors.js';

// ---------- writer ----------

function encodeLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(value.length), value]);
}

export const seq = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts));
export const set = (...parts: Buffer[]): Buffer => tlv(0x31, Buffer.concat(parts));
export const octet = (b: Buffer): Buffer => tlv(0x04, b);
export const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
export const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
export const ia5 = (s: string): Buffer => tlv(0x16, Buffer.from(s, 'ascii'));
export const nullDer = (): Buffer => Buffer.from([0x05, 0x00]);
export const bitString = (b: Buffer, unused = 0): Buffer =>
  tlv(0x03, Buffer.concat([Buffer.from([unused]), b]));
/** [n] EXPLICIT (constructed context tag). */
export const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);
/** [n] IMPLICIT primitive. */
export const implicit = (n: number, value: Buffer): Buffer => tlv(0x80 | n, value);

/** A non-negative INTEGER from big-endian magnitude bytes. */
export function uint(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  let v = bytes.subarray(i);
  if (v.length === 0) v = Buffer.from([0]);
  if ((v[0] ?? 0) & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return tlv(0x02, v);
}

export function smallInt(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0) throw new TypeError('smallInt takes a non-negative integer');
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return uint(Buffer.from(bytes));
}

const oidCache = new Map<string, Buffer>();
export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split('.').map(Number);
  const [a = 0, b = 0, ...rest] = arcs;
  // The first two arcs share one subidentifier, base 128 like the others (2.48 and up take two bytes).
  const out: number[] = [];
  for (const arc of [a * 40 + b, ...rest]) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  const enc = tlv(0x06, Buffer.from(out));
  oidCache.set(dotted, enc);
  return enc;
}

/** UTCTime through 2049, GeneralizedTime after, as RFC 5280 requires. Second precision. */
export function time(ms: number): Buffer {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const compact = iso.slice(0, 19).replace(/[-T:]/g, '') + 'Z';
  const year = d.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(0x17, Buffer.from(compact.slice(2), 'ascii'));
  return tlv(0x18, Buffer.from(compact, 'ascii'));
}

// ---------- reader ----------

export interface Tlv {
  readonly tag: number;
  /** The whole encoding, header included. */
  readonly raw: Buffer;
  readonly value: Buffer;
}

const MAX_DEPTH = 32;

function malformed(why: string): EdgewardError {
  return new EdgewardError('ERR_DER_MALFORMED', `malformed DER: ${why}`);
}

/** Reads one TLV at `offset`; returns it and the offset after it. */
export function readTlv(buf: Buffer, offset = 0): { tlv: Tlv; next: number } {
  if (offset + 2 > buf.length) throw malformed('truncated header');
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw malformed('high tag numbers are not used here');
  let len = buf[offset + 1] as number;
  let pos = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw malformed('indefinite length');
    if (n > 4) throw malformed('length too large');
    if (pos + n > buf.length) throw malformed('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[pos + i] as number);
    if (buf[pos] === 0 || len < 0x80) throw malformed('non-minimal length');
    pos += n;
  }
  if (pos + len > buf.length) throw malformed('length past the end');
  return {
    tlv: { tag, raw: buf.subarray(offset, pos + len), value: buf.subarray(pos, pos + len) },
    next: pos + len,
  };
}

/** Parses exactly one TLV filling the whole buffer. */
export function parseDer(buf: Buffer, expectTag?: number): Tlv {
  const { tlv: t, next } = readTlv(buf, 0);
  if (next !== buf.length) throw malformed('trailing bytes');
  if (expectTag !== undefined && t.tag !== expectTag)
    throw malformed(`expected tag 0x${expectTag.toString(16)}`);
  return t;
}

/** The children of a constructed TLV. */
export function children(t: Tlv, depth = 0): Tlv[] {
  if (depth > MAX_DEPTH) throw malformed('too deep');
  if ((t.tag & 0x20) === 0) throw malformed('expected a constructed value');
  const out: Tlv[] = [];
  let pos = 0;
  while (pos < t.value.length) {
    const { tlv: c, next } = readTlv(t.value, pos);
    out.push(c);
    pos = next;
  }
  return out;
}

export function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw malformed(`expected ${what}`);
  return t;
}

export function readOid(t: Tlv | undefined): string {
  const v = expectTag(t, 0x06, 'an OBJECT IDENTIFIER').value;
  if (v.length === 0 || v.length > 64) throw malformed('bad OID length');
  const arcs: number[] = [];
  let acc = 0;
  for (let i = 0; i < v.length; i++) {
    const byte = v[i] as number;
    if (acc === 0 && byte === 0x80) throw malformed('non-minimal OID arc');
    acc = acc * 128 + (byte & 0x7f);
    if (acc > Number.MAX_SAFE_INTEGER / 256) throw malformed('OID arc too large');
    if ((byte & 0x80) === 0) {
      arcs.push(acc);
      acc = 0;
    } else if (i === v.length - 1) throw malformed('truncated OID');
  }
  const first = arcs.shift() ?? 0;
  const a = first < 40 ? 0 : first < 80 ? 1 : 2;
  return [a, first - a * 40, ...arcs].join('.');
}

export function readBool(t: Tlv | undefined): boolean {
  const v = expectTag(t, 0x01, 'a BOOLEAN').value;
  if (v.length !== 1 || (v[0] !== 0 && v[0] !== 0xff)) throw malformed('bad BOOLEAN');
  return v[0] === 0xff;
}

/** A BIT STRING with no unused bits (keys, signatures). */
export function readBitStringBytes(t: Tlv | undefined): Buffer {
  const v = expectTag(t, 0x03, 'a BIT STRING').value;
  if (v.length < 1 || v[0] !== 0) throw malformed('BIT STRING with unused bits');
  return v.subarray(1);
}

export function readSmallInt(t: Tlv | undefined): number {
  const v = expectTag(t, 0x02, 'an INTEGER').value;
  if (v.length === 0 || v.length > 6) throw malformed('bad INTEGER');
  if ((v[0] as number) & 0x80) throw malformed('negative INTEGER');
  return v.readUIntBE(0, v.length);
}
