// The DNS names and IP ranges an operator declares at `ca init` for its own services: the only
// host names the intermediate may vouch for (its name constraints) and a service certificate may
// carry: parsing, matching, the constraint's subtrees, and the names of a listen address.
import { hostname, networkInterfaces } from 'node:os';
import type { HostNames } from '../common/csr.js';
import { EdgewardError } from '../common/errors.js';
import {
  cidrContains,
  ipBytes,
  isLoopbackIp,
  parseCidr,
  parseIpOrCidr,
  socketIp,
  tryParseIp,
  type Cidr,
} from '../common/ip.js';
import { generalName } from '../common/x509.js';

export interface ServiceNames {
  /** Lower-case DNS names; each covers itself and its subdomains (an RFC 5280 dNSName subtree). */
  readonly dns: readonly string[];
  /** CIDR blocks in canonical text (network address, prefix length): `127.0.0.0/8`, `::1/128`. */
  readonly ips: readonly string[];
}

export const NO_SERVICE_NAMES: ServiceNames = Object.freeze({ dns: [], ips: [] });
/** The CA store's meta key holding the declared names (as written into the intermediate). */
export const SERVICE_NAMES_META = 'service_names';

/** Reserved by RFC 6761: no real name lies under it, so permitting only it permits nothing. */
const NOWHERE = 'invalid';
const MAX_NAMES = 64;
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

function refuse(what: string): EdgewardError {
  return new EdgewardError('ERR_CA_SERVICE_NAME', what);
}

/** A DNS host name (LDH labels, no wildcard, no trailing dot), lower-cased; null if it is not one. */
export function dnsName(text: string): string | null {
  const name = text.toLowerCase();
  if (name.length === 0 || name.length > 253) return null;
  if (!name.split('.').every((l) => LABEL.test(l))) return null;
  // An all-numeric last label would read as an IPv4 address to some clients.
  if (/^[0-9]+$/.test(name.slice(name.lastIndexOf('.') + 1))) return null;
  return name;
}

/** `ADDR` or `ADDR/PREFIX` as a canonical block (common/ip.ts: host bits set are refused). */
function ipRange(text: string): string {
  // IPv4-mapped IPv6 is IPv4 to every client: declare the IPv4 address itself.
  if (text.includes(':') && tryParseIp(text.split('/')[0])?.family === 4)
    throw refuse(`${text}: give the IPv4 address, not its IPv4-mapped IPv6 form`);
  try {
    return parseIpOrCidr(text).text;
  } catch (err) {
    throw new EdgewardError(
      'ERR_CA_SERVICE_NAME',
      `${text} is not an IP address or range (ADDR or ADDR/PREFIX, no host bits after the prefix, no zone)`,
      { cause: err },
    );
  }
}

/** The `ca init --dns` and `--ip` lists (comma-separated), checked and made canonical. */
export function parseServiceNames(dns: string | undefined, ip: string | undefined): ServiceNames {
  const list = (s: string | undefined): string[] =>
    s === undefined
      ? []
      : s
          .split(',')
          .map((x) => x.trim())
          .filter((x) => x !== '');
  const names = list(dns).map((d) => {
    const n = dnsName(d);
    if (n === null) throw refuse(`${d} is not a DNS host name (letters, digits, hyphens; no wildcard)`);
    if (n === NOWHERE || n.endsWith(`.${NOWHERE}`)) throw refuse(`${d} is reserved (RFC 6761)`);
    return n;
  });
  const ips = list(ip).map(ipRange);
  if (names.length > MAX_NAMES || ips.length > MAX_NAMES)
    throw refuse(`at most ${MAX_NAMES} DNS names and ${MAX_NAMES} IP ranges`);
  return Object.freeze({ dns: [...new Set(names)], ips: [...new Set(ips)] });
}

/** The names as stored in the CA's meta table (JSON); absent means none declared. */
export function serviceNamesFromJson(text: string | undefined): ServiceNames {
  if (text === undefined) return NO_SERVICE_NAMES;
  const v = JSON.parse(text) as { dns?: unknown; ips?: unknown };
  const strings = (x: unknown): string[] =>
    Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : [];
  return parseServiceNames(strings(v.dns).join(','), strings(v.ips).join(','));
}

/** Whether a DNS name lies under a declared one (RFC 5280: equal, or a subdomain of it). */
export function dnsWithin(names: ServiceNames, name: string): boolean {
  const n = dnsName(name);
  return n !== null && names.dns.some((d) => n === d || n.endsWith(`.${d}`));
}

/** Whether an address lies in a declared range (IPv4-mapped IPv6 never does: clients see IPv6). */
export function ipWithin(names: ServiceNames, ip: string): boolean {
  const a = tryParseIp(ip);
  if (a === null || (ip.includes(':') && a.family === 4)) return false;
  return names.ips.some((r) => cidrContains(parseCidr(r), a));
}

/**
 * The intermediate's name constraints: the trust domain's URIs and the declared names are
 * permitted; for a type with nothing declared, what is permitted is nothing real (RFC 5280 leaves
 * a type without a permitted subtree unconstrained): DNS and email only under `invalid.`, every
 * IPv4 and IPv6 address excluded.
 */
export function nameConstraintSubtrees(
  trustDomain: string,
  names: ServiceNames,
): { permitted: Buffer[]; excluded: Buffer[] } {
  const permitted = [generalName.uri(trustDomain)];
  const excluded: Buffer[] = [];
  permitted.push(...(names.dns.length > 0 ? names.dns : [NOWHERE]).map(generalName.dns));
  permitted.push(generalName.email(NOWHERE));
  if (names.ips.length === 0) {
    excluded.push(generalName.ip(Buffer.alloc(8)), generalName.ip(Buffer.alloc(32)));
  } else {
    for (const r of names.ips) {
      const c: Cidr = parseCidr(r);
      const a = ipBytes({ family: c.family, n: c.base, text: '' });
      const mask = Buffer.alloc(a.length);
      for (let i = 0; i < c.bits; i++) mask[i >> 3] = (mask[i >> 3] ?? 0) | (0x80 >> (i & 7));
      permitted.push(generalName.ip(Buffer.concat([a, mask])));
    }
  }
  return { permitted, excluded };
}

/**
 * The names by which a service listening on `host` is reached: the host itself (and `localhost`
 * for a loopback address); for a wildcard listen, the machine's own addresses and host name.
 */
export function listenHostNames(host: string): HostNames {
  const wildcard = host === '0.0.0.0' || host === '::';
  const candidates = wildcard
    ? [
        'localhost',
        hostname(),
        ...Object.values(networkInterfaces())
          .flat()
          .map((i) => i?.address ?? ''),
      ]
    : [host, ...(isLoopback(host) ? ['localhost'] : [])];
  const dns = new Set<string>();
  const ips = new Set<string>();
  for (const c of candidates) {
    const ip = c.includes(':') || /^[0-9.]+$/.test(c) ? socketIp(c) : null;
    if (ip !== null) {
      if (!c.includes('%')) ips.add(ip.text);
    } else {
      const d = dnsName(c);
      if (d !== null) dns.add(d);
    }
  }
  return { dns: [...dns], ips: [...ips] };
}

function isLoopback(host: string): boolean {
  const ip = tryParseIp(host);
  return ip !== null && isLoopbackIp(ip);
}

/** The host names among `hosts` that the declared names permit. */
export function permittedHostNames(names: ServiceNames, hosts: HostNames): HostNames {
  return {
    dns: hosts.dns.filter((d) => dnsWithin(names, d)),
    ips: hosts.ips.filter((ip) => ipWithin(names, ip)),
  };
}
