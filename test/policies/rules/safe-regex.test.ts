// The catastrophic-backtracking guard and the CIDR helpers the rule language relies on.
import { describe, expect, it } from 'vitest';
import {
  cidrContains,
  cidrOverlaps,
  compileSafeRegex,
  parseCidr,
  parseIp,
  unsafeReason,
} from '../../../policies/rules/index.js';

describe('unsafeReason', () => {
  it('accepts ordinary patterns', () => {
    for (const p of [
      '^spiffe://[^/]+/device/',
      'a+b*c?',
      '(ab)+',
      '(?:x|y)',
      '[a-z]{1,16}',
      '\\d+\\.\\d+',
      '(a+)?',
      '(?<name>ab)c',
      '[(]+',
    ]) {
      expect(unsafeReason(p), p).toBeNull();
    }
  });

  it('refuses nested unbounded quantifiers, alternation under them and backreferences', () => {
    for (const p of [
      '(a+)+',
      '(a*)*',
      '((ab)*)+',
      '(a|b)*',
      '(x+x+)+y',
      '(a{1,})+',
      '(a{2,100})*',
      '(a)\\1',
      '(?<n>a)\\k<n>',
    ]) {
      expect(unsafeReason(p), p).not.toBeNull();
    }
  });

  it('compileSafeRegex codes: invalid, too long, unsafe', () => {
    expect(() => compileSafeRegex('(', '', 'w')).toThrow(
      expect.objectContaining({ code: 'ERR_POLICY_RULE_REGEX' }),
    );
    expect(() => compileSafeRegex('a'.repeat(257), '', 'w')).toThrow(
      expect.objectContaining({ code: 'ERR_POLICY_RULE_REGEX' }),
    );
    expect(() => compileSafeRegex('(a+)+$', '', 'w')).toThrow(
      expect.objectContaining({ code: 'ERR_POLICY_RULE_REGEX_UNSAFE' }),
    );
    expect(compileSafeRegex('^a', 'i', 'w').test('A')).toBe(true);
  });
});

describe('CIDR', () => {
  it('parses and matches IPv4, IPv6 and mapped addresses', () => {
    const v4 = parseCidr('192.168.0.0/16');
    expect(v4).not.toBeNull();
    expect(cidrContains(v4!, '192.168.10.1')).toBe(true);
    expect(cidrContains(v4!, '192.169.0.1')).toBe(false);
    expect(cidrContains(v4!, '::ffff:192.168.1.1')).toBe(true);
    const v6 = parseCidr('fe80::/10');
    expect(cidrContains(v6!, 'fe80::1')).toBe(true);
    expect(cidrContains(v6!, 'fec0::1')).toBe(false);
    expect(parseCidr('10.0.0.1')?.bits).toBe(32);
    expect(parseIp('::1')).toEqual({ family: 6, n: 1n });
  });

  it('refuses malformed blocks', () => {
    for (const c of ['10.0.0.0/33', '10.0.0/8', 'x/8', '10.0.0.0/', '::/129', '10.0.0.0/8/8', ''])
      expect(parseCidr(c), c).toBeNull();
  });

  it('knows when two blocks overlap', () => {
    expect(cidrOverlaps(parseCidr('10.0.0.0/8')!, parseCidr('10.1.2.3/32')!)).toBe(true);
    expect(cidrOverlaps(parseCidr('10.1.2.3')!, parseCidr('10.0.0.0/8')!)).toBe(true);
    expect(cidrOverlaps(parseCidr('10.0.0.0/8')!, parseCidr('11.0.0.0/8')!)).toBe(false);
    expect(cidrOverlaps(parseCidr('10.0.0.0/8')!, parseCidr('::/0')!)).toBe(false);
  });
});
