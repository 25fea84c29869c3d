// The one IP/CIDR module: accepted spellings and their canonical text, refusals with their codes,
// containment and overlap; property tests against numbers and WHATWG's IPv6 serializer.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canonicalCidr,
  canonicalIp,
  cidrContains,
  cidrOverlaps,
  compileCidrMatcher,
  hostCidr,
  ipBytes,
  isCanonicalCidr,
  isCanonicalIp,
  parseCidr,
  parseIp,
  parseIpOrCidr,
  socketIp,
  tryParseIp,
} from '../../common/ip.js';
import { addressOf, arbAddress, holds, spellings } from '../helpers/ip-spellings.js';

describe('parseIp', () => {
  it('reads every accepted spelling into one canonical text', () => {
    const cases: [string, string][] = [
      ['10.1.2.3', '10.1.2.3'],
      ['0.0.0.0', '0.0.0.0'],
      ['::ffff:10.1.2.3', '10.1.2.3'],
      ['::FFFF:a01:203', '10.1.2.3'],
      ['0:0:0:0:0:ffff:0a01:0203', '10.1.2.3'],
      ['0000:0000:0000:0000:0000:FFFF:10.1.2.3', '10.1.2.3'],
      ['2001:DB8::1', '2001:db8::1'],
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // the first of two equal runs
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // one zero group is not compressed
      ['::', '::'],
      ['::1', '::1'],
      ['1::', '1::'],
      ['::1.2.3.4', '::102:304'], // IPv4-compatible is IPv6, written in hex
      ['64:ff9b::192.0.2.1', '64:ff9b::c000:201'],
      ['fe80::1', 'fe80::1'],
    ];
    for (const [text, canonical] of cases) {
      expect(parseIp(text).text, text).toBe(canonical);
      expect(canonicalIp(text), text).toBe(canonical);
      expect(isCanonicalIp(text), text).toBe(text === canonical);
    }
    expect(parseIp('::ffff:10.1.2.3')).toEqual({ family: 4, n: 0x0a010203n, text: '10.1.2.3' });
  });

  it('refuses zones with ERR_IP_ZONE and everything else not an address with ERR_IP_INVALID', () => {
    for (const z of ['fe80::1%eth0', 'fe80::1%1', '::ffff:127.0.0.1%lo'])
      expect(() => parseIp(z), z).toThrow(expect.objectContaining({ code: 'ERR_IP_ZONE' }));
    for (const bad of [
      '',
      '1.2.3',
      '1.2.3.256',
      '01.2.3.4', // leading zeros: inet_aton would read octal
      '127.0.0.01',
      '1.2.3.4.5',
      ' 1.2.3.4',
      '1.2.3.4 ',
      '+1.2.3.4',
      '0x7f.0.0.1',
      '1::2::3',
      '12345::',
      ':::',
      ':1::',
      '1::2:',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7:8::',
      '::ffff:1.2.3',
      '::1.2.3.4:5',
      '[::1]',
      'g::1',
      'a'.repeat(46),
      'localhost',
    ]) {
      expect(tryParseIp(bad), bad).toBeNull();
      expect(() => parseIp(bad), bad).toThrow(expect.objectContaining({ code: 'ERR_IP_INVALID' }));
    }
    expect(() => parseIp(42)).toThrow(expect.objectContaining({ code: 'ERR_IP_INVALID' }));
  });

  it('socketIp reads kernel addresses: mapped is IPv4, a link-local zone is dropped', () => {
    expect(socketIp('::ffff:127.0.0.1')?.text).toBe('127.0.0.1');
    expect(socketIp('fe80::1%eth0')?.text).toBe('fe80::1');
    expect(socketIp(undefined)).toBeNull();
    expect(socketIp('junk')).toBeNull();
  });

  it('ipBytes gives network byte order', () => {
    expect([...ipBytes(parseIp('10.1.2.3'))]).toEqual([10, 1, 2, 3]);
    expect(ipBytes(parseIp('2001:db8::1')).toString('hex')).toBe('20010db8000000000000000000000001');
  });
});

describe('parseCidr', () => {
  it('canonicalises blocks; a mapped prefix is the IPv4 block', () => {
    const cases: [string, string][] = [
      ['10.0.0.0/8', '10.0.0.0/8'],
      ['0.0.0.0/0', '0.0.0.0/0'],
      ['2001:DB8::/32', '2001:db8::/32'],
      ['2001:0db8:0:0::/32', '2001:db8::/32'],
      ['::ffff:10.0.0.0/104', '10.0.0.0/8'],
      ['::ffff:0.0.0.0/96', '0.0.0.0/0'], // all of IPv4: the allowlist sees it as such
      ['::ffff:0:0/96', '0.0.0.0/0'],
      ['::ffff:127.0.0.1/128', '127.0.0.1/32'],
      ['::/0', '::/0'],
      ['10.0.0.1/32', '10.0.0.1/32'],
    ];
    for (const [text, canonical] of cases) {
      expect(canonicalCidr(text), text).toBe(canonical);
      expect(isCanonicalCidr(text), text).toBe(text === canonical);
    }
  });

  it('refuses host bits, bad prefixes and zones, each with its code', () => {
    for (const t of ['10.0.0.1/8', '::ffff:10.0.0.1/104', '2001:db8::1/32', '0.0.0.1/0'])
      expect(() => parseCidr(t), t).toThrow(expect.objectContaining({ code: 'ERR_IP_CIDR_HOST_BITS' }));
    for (const t of [
      '10.0.0.0',
      '10.0.0.0/33',
      '10.0.0.0/-1',
      '10.0.0.0/08',
      '::/129',
      '10.0.0.0/8/1',
      '10.0.0.0/',
    ])
      expect(() => parseCidr(t), t).toThrow(expect.objectContaining({ code: 'ERR_IP_CIDR_INVALID' }));
    expect(() => parseCidr('/8')).toThrow(expect.objectContaining({ code: 'ERR_IP_INVALID' }));
    expect(() => parseCidr('fe80::%eth0/64')).toThrow(expect.objectContaining({ code: 'ERR_IP_ZONE' }));
    expect(() => parseCidr('010.0.0.0/8')).toThrow(expect.objectContaining({ code: 'ERR_IP_INVALID' }));
  });

  it('contains and overlaps never across families (mapped addresses are IPv4)', () => {
    const c = (t: string) => parseIpOrCidr(t);
    expect(cidrContains(c('10.0.0.0/8'), parseIp('10.200.1.1'))).toBe(true);
    expect(cidrContains(c('10.0.0.0/9'), parseIp('10.200.1.1'))).toBe(false);
    expect(cidrContains(c('192.168.1.128/25'), parseIp('192.168.1.129'))).toBe(true);
    expect(cidrContains(c('192.168.1.128/25'), parseIp('192.168.1.127'))).toBe(false);
    expect(cidrContains(c('0.0.0.0/0'), parseIp('::1'))).toBe(false);
    expect(cidrContains(c('::/0'), parseIp('::ffff:1.2.3.4'))).toBe(false);
    expect(cidrContains(c('2001:db8::/32'), parseIp('2001:db8:ffff::1'))).toBe(true);
    expect(cidrOverlaps(c('10.0.0.0/8'), c('10.1.2.3'))).toBe(true);
    expect(cidrOverlaps(c('10.1.2.3'), c('10.0.0.0/8'))).toBe(true);
    expect(cidrOverlaps(c('10.0.0.0/8'), c('11.0.0.0/8'))).toBe(false);
    expect(cidrOverlaps(c('::ffff:0.0.0.0/96'), c('127.0.0.1'))).toBe(true);
    expect(cidrOverlaps(c('10.0.0.0/8'), c('::/0'))).toBe(false);
    expect(hostCidr(parseIp('::1')).text).toBe('::1/128');
  });
});

describe('properties', () => {
  it('every spelling of an address parses to the same canonical address', () => {
    fc.assert(
      fc.property(arbAddress, fc.context(), (a, ctx) => {
        const canonical = parseIp(a.text);
        expect(canonical.n).toBe(a.n);
        expect(canonical.family).toBe(a.family);
        if (a.family === 6) {
          // WHATWG's URL serializer compresses as RFC 5952 does.
          expect(canonical.text).toBe(new URL(`http://[${a.text}]/`).hostname.slice(1, -1));
        }
        for (const s of spellings(a)) {
          ctx.log(s);
          expect(parseIp(s).text).toBe(canonical.text);
          expect(canonicalIp(s)).toBe(canonical.text);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('contains, overlaps and the rules matcher agree with the numbers in every spelling', () => {
    fc.assert(
      fc.property(arbAddress, arbAddress, fc.nat(128), (net, a, rawBits) => {
        const bits = rawBits % ((net.family === 4 ? 32 : 128) + 1);
        const shift = BigInt((net.family === 4 ? 32 : 128) - bits);
        const base = addressOf(net.family, (net.n >> shift) << shift);
        const text = `${parseIp(base.text).text}/${bits}`;
        const block = parseCidr(text);
        const matcher = compileCidrMatcher([block]);
        const want = holds(base, bits, a);
        for (const s of spellings(a)) {
          expect(cidrContains(block, parseIp(s))).toBe(want);
          expect(matcher(s)).toBe(want);
        }
        expect(cidrOverlaps(block, hostCidr(parseIp(a.text)))).toBe(want);
        // The block written over the mapped range parses to the same IPv4 block.
        if (net.family === 4) expect(parseCidr(`::ffff:${base.text}/${bits + 96}`).text).toBe(text);
      }),
      { numRuns: 300 },
    );
  });

  it('IPv4 with a leading zero in any octet is refused in every form', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(255), { minLength: 4, maxLength: 4 }), fc.nat(3), (octets, at) => {
        const parts = octets.map(String);
        parts[at] = `0${parts[at]}`;
        const v4 = parts.join('.');
        for (const t of [v4, `::ffff:${v4}`]) {
          expect(tryParseIp(t), t).toBeNull();
          expect(() => parseCidr(`${t}/32`), t).toThrow();
        }
      }),
    );
  });
});
