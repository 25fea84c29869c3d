// A small DER writer and a strict DER reader. The writer builds certificates and CRLs without an
// ASN.1 object model (issuance is a hot path); the reader refuses indefinite or non-minimal
// lengths, lengths past the buffer and trailing bytes, because everything it reads is hostile.
import type { ErrorCode } from './codes.js';
import { EdgewardError, isCode } from './errors.js';

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

function base128(n: number): number[] {
  const out: number[] = [n % 128];
  for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) out.unshift((v % 128) | 0x80);
  return out;
}

/** An OBJECT IDENTIFIER; the first subidentifier (40·a + b) is base-128 like the others, so 2.999 works. */
export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split('.').map(Number);
  const [a = 0, b = 0, ...rest] = arcs;
  if (arcs.length < 2 || !arcs.every((n) => Number.isSafeInteger(n) && n >= 0) || a > 2 || (a < 2 && b > 39))
    throw new TypeError(`not an OBJECT IDENTIFIER: ${dotted}`);
  const out: number[] = [...base128(a * 40 + b)];
  for (const arc of rest) out.push(...base128(arc));
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
    if (acc > (Number.MAX_SAFE_INTEGER - 127) / 128) throw malformed('OID arc too large');
    acc = acc * 128 + (byte & 0x7f);
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

/** A BIT STRING's bytes and its count of unused trailing bits (which must be zero bits). */
export function readBitString(t: Tlv | undefined): { bytes: Buffer; unusedBits: number } {
  const v = expectTag(t, 0x03, 'a BIT STRING').value;
  const unusedBits = v[0];
  if (unusedBits === undefined || unusedBits > 7) throw malformed('bad BIT STRING');
  const bytes = v.subarray(1);
  if (unusedBits > 0 && bytes.length === 0) throw malformed('bad BIT STRING');
  const last = bytes[bytes.length - 1] ?? 0;
  if (last & ((1 << unusedBits) - 1)) throw malformed('BIT STRING unused bits are not zero');
  return { bytes, unusedBits };
}

export function readOctetString(t: Tlv | undefined): Buffer {
  return expectTag(t, 0x04, 'an OCTET STRING').value;
}

/** An INTEGER's two's-complement content octets, refused when not minimal. */
export function readIntegerBytes(t: Tlv | undefined): Buffer {
  const v = expectTag(t, 0x02, 'an INTEGER').value;
  if (v.length === 0) throw malformed('empty INTEGER');
  if (v.length > 1) {
    const b0 = v[0] as number;
    const b1 = v[1] as number;
    if ((b0 === 0x00 && (b1 & 0x80) === 0) || (b0 === 0xff && (b1 & 0x80) !== 0))
      throw malformed('non-minimal INTEGER');
  }
  return v;
}

/** An INTEGER of any size, signed. */
export function readInteger(t: Tlv | undefined): bigint {
  const v = readIntegerBytes(t);
  let n = BigInt(`0x${v.toString('hex')}`);
  if ((v[0] as number) & 0x80) n -= 1n << BigInt(v.length * 8);
  return n;
}

/** The single value inside a [n] EXPLICIT tag. */
export function readExplicit(t: Tlv | undefined, n: number): Tlv {
  const outer = expectTag(t, 0xa0 | n, `[${n}] EXPLICIT`);
  const inner = children(outer);
  if (inner.length !== 1) throw malformed(`[${n}] EXPLICIT holds ${inner.length} values`);
  return inner[0] as Tlv;
}

const UTC_TIME = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
const GENERALIZED_TIME = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

/** UTCTime (years 1950–2049) or GeneralizedTime, in the RFC 5280 form (seconds, Z), as ms since epoch. */
export function readTime(t: Tlv | undefined): number {
  if (!t || (t.tag !== 0x17 && t.tag !== 0x18)) throw malformed('expected a UTCTime or GeneralizedTime');
  const text = t.value.toString('latin1');
  const m = (t.tag === 0x17 ? UTC_TIME : GENERALIZED_TIME).exec(text);
  if (!m) throw malformed('bad time');
  const [, y, mo, d, h, mi, se] = m.map(Number) as [number, number, number, number, number, number, number];
  const year = t.tag === 0x17 ? (y >= 50 ? 1900 + y : 2000 + y) : y;
  const ms = Date.UTC(year, mo - 1, d, h, mi, se);
  const back = new Date(ms);
  if (
    back.getUTCFullYear() !== year ||
    back.getUTCMonth() !== mo - 1 ||
    back.getUTCDate() !== d ||
    h > 23 ||
    mi > 59 ||
    se > 59
  )
    throw malformed('bad time');
  return ms;
}

/**
 * Runs a reader and turns a DER failure into the caller's own code (the cause kept), so a caller
 * reports "malformed EK certificate" or "malformed CRL" rather than the reader's generic code.
 */
export function derAs<T>(code: ErrorCode, what: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (isCode(err, 'ERR_DER_MALFORMED'))
      throw new EdgewardError(code, `${what}: ${(err as Error).message.replace(/^malformed DER: /, '')}`, {
        cause: err,
      });
    throw err;
  }
}
