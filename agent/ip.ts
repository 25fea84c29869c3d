// IP addresses and CIDR blocks as bytes, for matching live connections against IP and CIDR
// decisions. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, what dual-stack sockets report) are
// treated as the IPv4 address.
import { EdgewardError } from '../common/errors.js';

export interface ParsedIp {
  readonly v: 4 | 6;
  readonly bytes: Uint8Array;
  /** Canonical text: dotted quad, or the 8 groups in lower-case hex with no compression. */
  readonly text: string;
}

export interface Cidr {
  readonly v: 4 | 6;
  readonly bytes: Uint8Array;
  readonly bits: number;
}

function parseV4(s: string): Uint8Array | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseV6(s: string): Uint8Array | null {
  if (s.length > 45 || !/^[0-9a-fA-F:.]+$/.test(s)) return null;
  let tail4: Uint8Array | null = null;
  let str = s;
  const lastColon = str.lastIndexOf(':');
  if (str.includes('.')) {
    tail4 = parseV4(str.slice(lastColon + 1));
    if (!tail4) return null;
    str = str.slice(0, lastColon + 1) + '0:0';
  }
  const dbl = str.indexOf('::');
  if (dbl !== str.lastIndexOf('::')) return null;
  const groups: string[] = [];
  if (dbl >= 0) {
    const head = str.slice(0, dbl) === '' ? [] : str.slice(0, dbl).split(':');
    const tail = str.slice(dbl + 2) === '' ? [] : str.slice(dbl + 2).split(':');
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return null;
    groups.push(...head, ...Array<string>(fill).fill('0'), ...tail);
  } else {
    groups.push(...str.split(':'));
  }
  if (groups.length !== 8) return null;
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = groups[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  }
  if (tail4) out.set(tail4, 12);
  return out;
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

function fromBytes(v: 4 | 6, bytes: Uint8Array): ParsedIp {
  if (v === 4) return { v, bytes, text: Array.from(bytes).join('.') };
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return { v, bytes, text: groups.join(':') };
}

/** Returns null for anything that is not an address (callers decide the error). */
export function tryParseIp(text: string): ParsedIp | null {
  if (typeof text !== 'string' || text.length === 0 || text.length > 64) return null;
  let s = text;
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct); // zone id: not part of matching
  const v4 = parseV4(s);
  if (v4) return fromBytes(4, v4);
  const v6 = parseV6(s);
  if (!v6) return null;
  if (isV4Mapped(v6)) return fromBytes(4, v6.slice(12));
  return fromBytes(6, v6);
}

export function parseIp(text: string): ParsedIp {
  const ip = tryParseIp(text);
  if (!ip)
    throw new EdgewardError('ERR_AGENT_CIDR', 'not an IPv4 or IPv6 address', {
      detail: { value: String(text).slice(0, 64) },
    });
  return ip;
}

export function parseCidr(text: string): Cidr {
  const slash = typeof text === 'string' ? text.indexOf('/') : -1;
  if (slash < 0)
    throw new EdgewardError('ERR_AGENT_CIDR', 'CIDR needs a /prefix', {
      detail: { value: String(text).slice(0, 64) },
    });
  const ip = parseIp(text.slice(0, slash));
  const bitsText = text.slice(slash + 1);
  const max = ip.v === 4 ? 32 : 128;
  // An IPv4-mapped CIDR such as ::ffff:10.0.0.0/104 is re-based onto IPv4.
  let bits = /^(0|[1-9]\d{0,2})$/.test(bitsText) ? Number(bitsText) : NaN;
  if (ip.v === 4 && text.slice(0, slash).includes(':')) bits -= 96;
  if (!Number.isInteger(bits) || bits < 0 || bits > max) {
    throw new EdgewardError('ERR_AGENT_CIDR', 'CIDR prefix out of range', {
      detail: { value: text.slice(0, 64) },
    });
  }
  return { v: ip.v, bytes: ip.bytes, bits };
}

export function cidrContains(cidr: Cidr, ip: ParsedIp): boolean {
  if (cidr.v !== ip.v) return false;
  const full = cidr.bits >> 3;
  for (let i = 0; i < full; i++) if (cidr.bytes[i] !== ip.bytes[i]) return false;
  const rem = cidr.bits & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return ((cidr.bytes[full]! ^ ip.bytes[full]!) & mask) === 0;
}
