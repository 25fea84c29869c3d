// Bit and encoding helpers shared by the PUF code: packed bit strings (LSB-first within each
// byte), Hamming distances, and strict base64url decoding for values that arrive from outside.
import { EdgewardError, type ErrorCode } from '../../common/errors.js';

/** Bit i of a packed bit string: bit (i % 8) of byte floor(i / 8), least significant first. */
export function getBit(packed: Uint8Array, i: number): number {
  return ((packed[i >>> 3] ?? 0) >>> (i & 7)) & 1;
}

export function setBit(packed: Uint8Array, i: number, v: number): void {
  const j = i >>> 3;
  const cur = packed[j] ?? 0;
  packed[j] = v ? cur | (1 << (i & 7)) : cur & ~(1 << (i & 7));
}

/** Packs an array of 0/1 values (LSB-first); padding bits of the last byte are zero. */
export function packBits(bits: Uint8Array): Uint8Array {
  const out = new Uint8Array((bits.length + 7) >>> 3);
  for (let i = 0; i < bits.length; i++) if (bits[i]) out[i >>> 3]! |= 1 << (i & 7);
  return out;
}

export function unpackBits(packed: Uint8Array, nBits: number): Uint8Array {
  const out = new Uint8Array(nBits);
  for (let i = 0; i < nBits; i++) out[i] = ((packed[i >>> 3] ?? 0) >>> (i & 7)) & 1;
  return out;
}

const POP8 = new Uint8Array(256);
for (let i = 1; i < 256; i++) POP8[i] = (i & 1) + POP8[i >>> 1]!;

export function popcount8(bytes: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < bytes.length; i++) n += POP8[bytes[i]!]!;
  return n;
}

export function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

/** Hamming distance between two packed strings of equal length. */
export function hamming(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new TypeError('hamming: lengths differ');
  let n = 0;
  for (let i = 0; i < a.length; i++) n += POP8[a[i]! ^ b[i]!]!;
  return n;
}

/** Whether the padding bits above nBits in the last byte are all zero. */
export function paddingIsZero(packed: Uint8Array, nBits: number): boolean {
  if (packed.length !== (nBits + 7) >>> 3) return false;
  const rem = nBits & 7;
  if (rem === 0) return true;
  return (packed[packed.length - 1] ?? 0) >>> rem === 0;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Strict base64url (no padding): Buffer.from is lenient about stray characters and non-canonical
 * trailing bits, so we check the alphabet, the exact length and the round trip.
 */
export function decodeB64url(
  value: unknown,
  code: ErrorCode,
  what: string,
  limits: { exact?: number; max?: number; min?: number },
): Buffer {
  if (typeof value !== 'string') throw new EdgewardError(code, `${what} must be a base64url string`);
  const max = limits.exact ?? limits.max ?? 0;
  if (value.length > Math.ceil((max * 4) / 3) || !B64URL.test(value)) {
    throw new EdgewardError(code, `${what} is not base64url of the expected size`);
  }
  const buf = Buffer.from(value, 'base64url');
  if (buf.toString('base64url') !== value)
    throw new EdgewardError(code, `${what} is not canonical base64url`);
  if (limits.exact !== undefined && buf.length !== limits.exact) {
    throw new EdgewardError(code, `${what} must be ${limits.exact} bytes`);
  }
  if (limits.min !== undefined && buf.length < limits.min)
    throw new EdgewardError(code, `${what} is too short`);
  return buf;
}

export function toB64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}
