// The one IP/CIDR module: parsing, canonical text, containment and overlap of addresses and blocks
// for every part that decides about addresses (event schema, rules, playbooks, decision signer and
// verifiers, agent enforcement), so that none of them can read an address differently.
//
// Canonical forms (docs/quarantine-stream.md):
// - IPv4: dotted quad, decimal octets without leading zeros (`010.0.0.1` is refused: inet_aton
//   reads it as octal). IPv4-mapped IPv6 (`::ffff:a.b.c.d`, any spelling) IS the IPv4 address.
// - IPv6: RFC 5952 text: lower-case, no leading zeros in a group, the longest run of two or more
//   zero groups (the first of equals) written `::`, never a dotted tail. Zones (`%eth0`) are refused.
// - CIDR: canonical address, `/`, prefix in decimal without leading zeros. Host bits must be zero
//   (`10.0.0.1/8` is refused, never widened). A prefix of the mapped range (`::ffff:10.0.0.0/104`)
//   is the IPv4 block (`10.0.0.0/8`); so `::ffff:0.0.0.0/96` is `0.0.0.0/0`, all of IPv4.
// - An IPv6 block never contains an IPv4 address, even `::/0`: mapped addresses are IPv4.
import { EdgewardError } from './errors.js';

export type IpFamily = 4 | 6;

export interface Ip {
  readonly family: IpFamily;
  /** The address as an unsigned 32- or 128-bit integer. */
  readonly n: bigint;
  /** Canonical text. */
  readonly text: string;
}

export interface Cidr {
  readonly family: IpFamily;
  /** The network address (host bits are zero). */
  readonly base: bigint;
  readonly bits: number;
  /** Canonical text, always with the prefix: `10.0.0.0/8`, `2001:db8::/32`, `10.0.0.1/32`. */
  readonly text: string;
}

/** Longest address text we read: `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255` (45). */
export const MAX_IP_TEXT = 45;
export const MAX_CIDR_TEXT = MAX_IP_TEXT + 4;

const V4_MASK = 0xffffffffn;

function invalid(text: unknown, why: string): EdgewardError {
  return new EdgewardError('ERR_IP_INVALID', `not an IP address: ${why}`, {
    detail: { value: String(text).slice(0, MAX_CIDR_TEXT) },
  });
}

const C0 = 48; // '0'
const C9 = 57;
const DOT = 46;
const COLON = 58;

/** The IPv4 dotted quad in s[from, to) as a number, or -1 (also for leading zeros). */
function v4At(s: string, from: number, to: number): number {
  let n = 0;
  let parts = 0;
  let i = from;
  while (parts < 4) {
    const start = i;
    let octet = 0;
    while (i < to) {
      const c = s.charCodeAt(i);
      if (c < C0 || c > C9) break;
      octet = octet * 10 + (c - C0);
      i++;
    }
    const len = i - start;
    if (len === 0 || len > 3 || octet > 255 || (len > 1 && s.charCodeAt(start) === C0)) return -1;
    n = n * 256 + octet;
    parts++;
    if (parts < 4) {
      if (i >= to || s.charCodeAt(i) !== DOT) return -1;
      i++;
    }
  }
  return i === to ? n : -1;
}

function hexDigit(c: number): number {
  if (c >= C0 && c <= C9) return c - C0;
  const l = c | 0x20; // ASCII lower case
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

/** Parses IPv6 text (no zone) into eight 16-bit groups, or a reason it is not one. */
function v6Groups(s: string): number[] | string {
  const head: number[] = [];
  const tail: number[] = [];
  let cur = head;
  let i = 0;
  let compressed = false;
  if (s.startsWith('::')) {
    compressed = true;
    cur = tail;
    i = 2;
  } else if (s.charCodeAt(0) === COLON) return 'starts with a single colon';
  while (i < s.length) {
    // A dotted IPv4 tail fills the last 32 bits.
    const nextColon = s.indexOf(':', i);
    const nextDot = s.indexOf('.', i);
    if (nextDot >= 0 && (nextColon < 0 || nextDot < nextColon)) {
      const v4 = v4At(s, i, s.length);
      if (v4 < 0) return 'malformed IPv4 tail';
      cur.push(Math.floor(v4 / 65536), v4 % 65536);
      i = s.length;
      break;
    }
    let g = 0;
    const start = i;
    while (i < s.length && s.charCodeAt(i) !== COLON) {
      const d = hexDigit(s.charCodeAt(i));
      if (d < 0) return 'not a hex group';
      g = g * 16 + d;
      i++;
    }
    if (i - start === 0 || i - start > 4) return 'a group must have 1..4 hex digits';
    cur.push(g);
    if (i === s.length) break;
    i++; // the colon
    if (s.charCodeAt(i) === COLON) {
      if (compressed) return 'more than one ::';
      compressed = true;
      cur = tail;
      i++;
    } else if (i === s.length) return 'ends with a single colon';
  }
  const count = head.length + tail.length;
  if (compressed ? count > 7 : count !== 8) return 'wrong number of groups';
  return [...head, ...new Array<number>(8 - count).fill(0), ...tail];
}

/** RFC 5952 text of eight groups. */
function v6Text(g: readonly number[]): string {
  let bestAt = -1;
  let bestLen = 1; // a single zero group is never compressed
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: readonly number[]): string => a.map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(g);
  return `${hex(g.slice(0, bestAt))}::${hex(g.slice(bestAt + bestLen))}`;
}

function v4Text(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function groupsToBig(g: readonly number[]): bigint {
  let n = 0n;
  for (const x of g) n = (n << 16n) | BigInt(x);
  return n;
}

function bigToGroups(n: bigint): number[] {
  const out = new Array<number>(8);
  for (let i = 7; i >= 0; i--) {
    out[i] = Number(n & 0xffffn);
    n >>= 16n;
  }
  return out;
}

function textOf(family: IpFamily, n: bigint): string {
  return family === 4 ? v4Text(Number(n)) : v6Text(bigToGroups(n));
}

/** Parses an address in any accepted spelling into its canonical form; throws ERR_IP_INVALID or ERR_IP_ZONE. */
export function parseIp(text: unknown): Ip {
  if (typeof text !== 'string' || text.length === 0) throw invalid(text, 'empty or not text');
  if (text.length > MAX_IP_TEXT) throw invalid(text, 'too long');
  if (text.includes('%'))
    throw new EdgewardError('ERR_IP_ZONE', undefined, { detail: { value: text.slice(0, MAX_IP_TEXT) } });
  if (!text.includes(':')) {
    const v4 = v4At(text, 0, text.length);
    if (v4 < 0) throw invalid(text, 'IPv4 needs four decimal octets 0..255 without leading zeros');
    return { family: 4, n: BigInt(v4), text: v4Text(v4) };
  }
  const g = v6Groups(text);
  if (typeof g === 'string') throw invalid(text, g);
  const n = groupsToBig(g);
  if (n >> 32n === 0xffffn) {
    const v4 = Number(n & V4_MASK);
    return { family: 4, n: BigInt(v4), text: v4Text(v4) };
  }
  return { family: 6, n, text: v6Text(g) };
}

/** parseIp, or null for anything that is not an accepted address. */
export function tryParseIp(text: unknown): Ip | null {
  try {
    return parseIp(text);
  } catch {
    return null;
  }
}

/**
 * The canonical text of an address (throws like parseIp). The hot path of event validation: a
 * canonical dotted quad is returned as it is, without building an Ip.
 */
export function canonicalIp(text: unknown): string {
  if (typeof text === 'string' && text.length <= 15 && v4At(text, 0, text.length) >= 0) return text;
  return parseIp(text).text;
}

export function isCanonicalIp(text: unknown): boolean {
  const ip = tryParseIp(text);
  return ip !== null && ip.text === text;
}

/**
 * An address as a socket reports it (`net.Socket#remoteAddress`). Unlike input, a kernel-reported
 * link-local address may carry a zone; it is dropped, since no decision can name one, so a
 * quarantine of fe80::1 covers fe80::1 on every link (the cautious reading for enforcement).
 */
export function socketIp(address: string | undefined): Ip | null {
  if (address === undefined) return null;
  const pct = address.indexOf('%');
  return tryParseIp(pct < 0 ? address : address.slice(0, pct));
}

function maskOf(family: IpFamily, bits: number): bigint {
  const max = family === 4 ? 32 : 128;
  return bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(max - bits);
}

function cidrInvalid(text: unknown, why: string): EdgewardError {
  return new EdgewardError('ERR_IP_CIDR_INVALID', `not a CIDR block: ${why}`, {
    detail: { value: String(text).slice(0, MAX_CIDR_TEXT) },
  });
}

function block(family: IpFamily, base: bigint, bits: number): Cidr {
  return { family, base, bits, text: `${textOf(family, base)}/${bits}` };
}

/**
 * Parses `address/prefix` into its canonical block. Throws ERR_IP_CIDR_INVALID (no or bad prefix),
 * ERR_IP_CIDR_HOST_BITS (bits set after the prefix), or the address's ERR_IP_INVALID / ERR_IP_ZONE.
 */
export function parseCidr(text: unknown): Cidr {
  if (typeof text !== 'string' || text.length > MAX_CIDR_TEXT)
    throw cidrInvalid(text, 'not text or too long');
  if (text.includes('%')) throw new EdgewardError('ERR_IP_ZONE', undefined, { detail: { value: text } });
  const slash = text.indexOf('/');
  if (slash < 0) throw cidrInvalid(text, 'needs a /prefix');
  const addrText = text.slice(0, slash);
  const bitsText = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bitsText)) throw cidrInvalid(text, 'prefix must be a decimal number');
  let bits = Number(bitsText);
  // Parsed as written (before mapping), so the prefix applies to the bits the text meant.
  let family: IpFamily;
  let n: bigint;
  if (addrText.includes(':')) {
    const g = v6Groups(addrText);
    if (typeof g === 'string') throw invalid(addrText, g);
    family = 6;
    n = groupsToBig(g);
  } else {
    const v4 = v4At(addrText, 0, addrText.length);
    if (v4 < 0) throw invalid(addrText, 'IPv4 needs four decimal octets 0..255 without leading zeros');
    family = 4;
    n = BigInt(v4);
  }
  if (bits > (family === 4 ? 32 : 128)) throw cidrInvalid(text, 'prefix longer than the address');
  if ((n & ~maskOf(family, bits)) !== 0n)
    throw new EdgewardError('ERR_IP_CIDR_HOST_BITS', undefined, { detail: { value: text } });
  if (family === 6 && bits >= 96 && n >> 32n === 0xffffn) {
    family = 4;
    n &= V4_MASK;
    bits -= 96;
  }
  return block(family, n, bits);
}

/** The block of one address (`/32` or `/128`). */
export function hostCidr(ip: Ip): Cidr {
  return block(ip.family, ip.n, ip.family === 4 ? 32 : 128);
}

/** A CIDR block, or a bare address read as its host block (rule values, allowlists). */
export function parseIpOrCidr(text: unknown): Cidr {
  return typeof text === 'string' && !text.includes('/') ? hostCidr(parseIp(text)) : parseCidr(text);
}

export function canonicalCidr(text: unknown): string {
  return parseCidr(text).text;
}

export function isCanonicalCidr(text: unknown): boolean {
  try {
    return parseCidr(text).text === text;
  } catch {
    return false;
  }
}

/** Is the block a single address (`/32`, `/128`)? */
export function isHostCidr(c: Cidr): boolean {
  return c.bits === (c.family === 4 ? 32 : 128);
}

export function cidrContains(c: Cidr, ip: Ip): boolean {
  return c.family === ip.family && (ip.n & maskOf(c.family, c.bits)) === c.base;
}

/** True if the two blocks share at least one address. */
export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const wide = a.bits <= b.bits ? a : b;
  const narrow = wide === a ? b : a;
  return (narrow.base & maskOf(wide.family, wide.bits)) === wide.base;
}

/**
 * A matcher over many blocks for address text (a rule's `|cidr` list): IPv4 as 32-bit numbers,
 * without bigint, on the hot path. Text that is not an accepted address matches nothing.
 */
export function compileCidrMatcher(blocks: readonly Cidr[]): (ip: string) => boolean {
  const v4 = blocks
    .filter((b) => b.family === 4)
    .map((b) => ({ base: Number(b.base), mask: b.bits === 0 ? 0 : (0xffffffff << (32 - b.bits)) >>> 0 }));
  const v6 = blocks.filter((b) => b.family === 6);
  const any4 = (n: number): boolean => {
    for (const b of v4) if ((n & b.mask) >>> 0 === b.base) return true;
    return false;
  };
  return (text: string) => {
    const fast = typeof text === 'string' && text.length <= 15 ? v4At(text, 0, text.length) : -1;
    if (fast >= 0) return any4(fast);
    const ip = tryParseIp(text);
    if (ip === null) return false;
    if (ip.family === 4) return any4(Number(ip.n));
    for (const b of v6) if (cidrContains(b, ip)) return true;
    return false;
  };
}

/** The address in network byte order: 4 or 16 bytes (PROXY protocol headers). */
export function ipBytes(ip: Ip): Buffer {
  const len = ip.family === 4 ? 4 : 16;
  const out = Buffer.alloc(len);
  let n = ip.n;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/** The address held in 4 or 16 bytes (an iPAddress SAN), canonical (a mapped address is IPv4). */
export function ipFromBytes(bytes: Uint8Array): Ip {
  if (bytes.length !== 4 && bytes.length !== 16)
    throw new EdgewardError('ERR_IP_INVALID', 'an IP address has 4 or 16 bytes');
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  if (bytes.length === 4) return { family: 4, n, text: v4Text(Number(n)) };
  if (n >> 32n === 0xffffn) return { family: 4, n: n & V4_MASK, text: v4Text(Number(n & V4_MASK)) };
  return { family: 6, n, text: textOf(6, n) };
}

/** 127.0.0.0/8 or ::1. */
export function isLoopbackIp(ip: Ip): boolean {
  return ip.family === 4 ? ip.n >> 24n === 127n : ip.n === 1n;
}
