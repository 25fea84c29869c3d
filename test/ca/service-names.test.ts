// The service names declared at `ca init`: parsing, matching (as RFC 5280 subtrees match), and the
// intermediate's name constraints checked by openssl on leaves our own intermediate key signs.
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createAuthority } from '../../ca/authority.js';
import {
  dnsWithin,
  ipWithin,
  listenHostNames,
  parseServiceNames,
  permittedHostNames,
} from '../../ca/service-names.js';
import { toPem } from '../../common/pem.js';
import { openssl } from '../helpers/openssl.js';
import { tempDir } from '../helpers/tmp.js';

describe('parseServiceNames', () => {
  it('makes the lists canonical: lower case, IPv6 compressed, no repeats', () => {
    expect(parseServiceNames('Svc.Example, svc.example,ca.example', '10.1.0.0/16,::0001,127.0.0.1')).toEqual({
      dns: ['svc.example', 'ca.example'],
      ips: ['10.1.0.0/16', '::1/128', '127.0.0.1/32'],
    });
    expect(parseServiceNames(undefined, undefined)).toEqual({ dns: [], ips: [] });
  });

  it.each([
    ['a wildcard', '*.example.com', undefined],
    ['a trailing dot', 'example.com.', undefined],
    ['a label with an underscore', 'a_b.example', undefined],
    ['an address as a DNS name', '10.0.0.1', undefined],
    ['the reserved name invalid', 'x.invalid', undefined],
    ['an IPv4-mapped IPv6 address', undefined, '::ffff:127.0.0.1'],
    ['an address with a zone', undefined, 'fe80::1%eth0'],
    ['a range with host bits set', undefined, '10.1.2.3/16'],
    ['a prefix too long', undefined, '10.0.0.0/33'],
    ['not an address', undefined, 'localhost'],
  ])('refuses %s (ERR_CA_SERVICE_NAME)', (_what, dns, ip) => {
    expect(() => parseServiceNames(dns, ip)).toThrow(
      expect.objectContaining({ code: 'ERR_CA_SERVICE_NAME' }),
    );
  });

  it('matches a declared DNS name and its subdomains only, addresses by range and family', () => {
    const n = parseServiceNames('svc.example', '127.0.0.0/8,2001:db8::/32');
    expect(['svc.example', 'a.svc.example', 'A.SVC.example'].map((d) => dnsWithin(n, d))).toEqual([
      true,
      true,
      true,
    ]);
    expect(
      ['xsvc.example', 'example', 'svc.example.evil', '*.svc.example'].map((d) => dnsWithin(n, d)),
    ).toEqual([false, false, false, false]);
    expect(['127.9.9.9', '2001:db8::5'].map((ip) => ipWithin(n, ip))).toEqual([true, true]);
    expect(
      ['128.0.0.1', '::ffff:127.0.0.1', '2001:db9::1', 'fe80::1%lo'].map((ip) => ipWithin(n, ip)),
    ).toEqual([false, false, false, false]);
  });

  it('gives a listener the names of where it listens, as far as they are declared', () => {
    expect(listenHostNames('127.0.0.1')).toEqual({ dns: ['localhost'], ips: ['127.0.0.1'] });
    expect(listenHostNames('ca.example')).toEqual({ dns: ['ca.example'], ips: [] });
    expect(listenHostNames('0.0.0.0').ips).toContain('127.0.0.1');
    const n = parseServiceNames(undefined, '127.0.0.0/8');
    expect(permittedHostNames(n, listenHostNames('127.0.0.1'))).toEqual({ dns: [], ips: ['127.0.0.1'] });
  });
});

describe('the intermediate name constraint (openssl verify)', () => {
  const dir = tempDir();
  const leafKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
    type: 'spki',
    format: 'der',
  });
  const make = (name: string, dns?: string, ip?: string) => {
    const { authority } = createAuthority(
      join(dir, name),
      'factory.example',
      Date.now(),
      undefined,
      parseServiceNames(dns, ip),
    );
    writeFileSync(join(dir, `${name}-root.pem`), authority.bundlePem);
    writeFileSync(join(dir, `${name}-int.pem`), authority.intPem);
    /** Whether openssl verifies a leaf for these names, signed with the intermediate's key. */
    return (names: { dns?: string[]; ips?: string[]; uri?: string }): boolean => {
      const leaf = authority.issue({
        identity: names.uri ?? 'spiffe://factory.example/svc/x',
        spkiDer: leafKey,
        lifetimeMs: 3_600_000,
        now: Date.now(),
        dnsNames: names.dns ?? [],
        ipAddresses: names.ips ?? [],
      });
      writeFileSync(join(dir, 'leaf.pem'), toPem('CERTIFICATE', leaf.der));
      try {
        openssl(['verify', '-CAfile', join(dir, `${name}-root.pem`), '-untrusted', join(dir, `${name}-int.pem`),
          join(dir, 'leaf.pem')]); // prettier-ignore
        return true;
      } catch (err) {
        expect(String(err)).toMatch(/subtree violation/);
        return false;
      }
    };
  };

  it('with nothing declared, vouches for no DNS name and no address at all', () => {
    const verifies = make('none');
    expect(verifies({})).toBe(true);
    expect(verifies({ dns: ['www.bank.example'] })).toBe(false);
    expect(verifies({ dns: ['localhost'] })).toBe(false);
    expect(verifies({ ips: ['127.0.0.1'] })).toBe(false);
    expect(verifies({ ips: ['::1'] })).toBe(false);
    expect(verifies({ uri: 'spiffe://other.example/svc/x' })).toBe(false);
  });

  it('with names declared, vouches for exactly those', () => {
    const verifies = make('some', 'svc.example', '127.0.0.0/8');
    expect(verifies({ dns: ['svc.example', 'siem.svc.example'], ips: ['127.0.0.1'] })).toBe(true);
    expect(verifies({ dns: ['www.bank.example'] })).toBe(false);
    expect(verifies({ dns: ['xsvc.example'] })).toBe(false);
    expect(verifies({ ips: ['8.8.8.8'] })).toBe(false);
    // Only IPv4 was declared: every IPv6 address is outside.
    expect(verifies({ ips: ['::1'] })).toBe(false);
  });
});
