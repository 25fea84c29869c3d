// IP addresses and CIDR blocks as numbers, for the `|cidr` rule modifier and the playbooks'
// allowlists. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) match IPv4 blocks.
import { isIP } from 'node:net';

export interface Cidr {
  readonly family: 4 | 6;
  /** Network address with host bits cleared. */
  readonly base: bigint;
  readonly bits: number;
  readonly text: string;
}

function v4ToBig(ip: string): bigint {
  const parts = ip.split('.');
  let n = 0n;
  for (const p of parts) n = (n << 8n) | BigInt(Number(p));
  return n;
}

function v6ToBig(ip: string): bigint {
  let text = ip;
  let tail: bigint | null = null;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    // Embedded IPv4 in the last 32 bits.
    tail = v4ToBig(text.slice(lastColon + 1));
    text = text.slice(0, lastColon) + ':0:0';
  }
  const [head = '', rest] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  const r = rest === undefined || rest === '' ? [] : rest.split(':');
  const fill = rest === undefined ? 0 : 8 - h.length - r.length;
  const groups = [...h, ...new Array<string>(fill).fill('0'), ...r];
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(parseInt(g, 16));
  if (tail !== null) n = (n & ~0xffffffffn) | tail;
  return n;
}

/** Parses an address to (family, number); IPv4-mapped IPv6 becomes IPv4. Null if not an IP. */
export function parseIp(ip: string): { family: 4 | 6; n: bigint } | null {
  const fam = isIP(ip);
  if (fam === 4) return { family: 4, n: v4ToBig(ip) };
  if (fam === 6) {
    const n = v6ToBig(ip.toLowerCase());
    if (n >> 32n === 0xffffn) return { family: 4, n: n & 0xffffffffn };
    return { family: 6, n };
  }
  return null;
}

/** Parses `a.b.c.d/n` or `v6/n`; a bare address is a host block. Null if invalid. */
export function parseCidr(text: string): Cidr | null {
  if (typeof text !== 'string' || text.length > 64) return null;
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const fam = isIP(addr);
  if (fam === 0) return null;
  const maxBits = fam === 4 ? 32 : 128;
  let bits = maxBits;
  if (slash >= 0) {
    const b = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b)) return null;
    bits = Number(b);
    if (bits > maxBits) return null;
  }
  const n = fam === 4 ? v4ToBig(addr) : v6ToBig(addr.toLowerCase());
  const mask = bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(maxBits - bits);
  return { family: fam === 4 ? 4 : 6, base: n & mask, bits, text };
}

function maskOf(c: Cidr): bigint {
  const maxBits = c.family === 4 ? 32 : 128;
  return c.bits === 0 ? 0n : ((1n << BigInt(c.bits)) - 1n) << BigInt(maxBits - c.bits);
}

export function cidrContains(c: Cidr, ip: string): boolean {
  const p = parseIp(ip);
  if (p === null || p.family !== c.family) return false;
  return (p.n & maskOf(c)) === c.base;
}

/** True if the two blocks share at least one address. */
export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const narrow = a.bits <= b.bits ? a : b;
  const other = narrow === a ? b : a;
  return (other.base & maskOf(narrow)) === narrow.base;
}

/** A fast matcher over many blocks (IPv4 as 32-bit numbers without bigint on the hot path). */
export function compileCidrMatcher(blocks: readonly Cidr[]): (ip: string) => boolean {
  const v4 = blocks
    .filter((b) => b.family === 4)
    .map((b) => ({ base: Number(b.base), mask: b.bits === 0 ? 0 : (0xffffffff << (32 - b.bits)) >>> 0 }));
  const v6 = blocks.filter((b) => b.family === 6);
  return (ip: string) => {
    if (isIP(ip) === 4) {
      const p = ip.split('.');
      const n = ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
      for (const b of v4) if ((n & b.mask) >>> 0 === b.base) return true;
      return false;
    }
    const parsed = parseIp(ip);
    if (parsed === null) return false;
    if (parsed.family === 4) {
      const n = Number(parsed.n);
      for (const b of v4) if ((n & b.mask) >>> 0 === b.base) return true;
      return false;
    }
    for (const b of v6) if ((parsed.n & maskOf(b)) === b.base) return true;
    return false;
  };
}
