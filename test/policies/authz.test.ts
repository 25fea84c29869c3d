// The pure authorization decision: allow and deny patterns, deny wins, default deny.
import { describe, expect, it } from 'vitest';
import { authorize, compileAuthz } from '../../policies/authz.js';

describe('authorize', () => {
  const p = compileAuthz(
    ['spiffe://factory.example/node/*', 'spiffe://factory.example/svc/siem'],
    ['spiffe://factory.example/node/bad'],
  );

  it('allows a matching identity and names the rule', () => {
    expect(authorize(p, 'spiffe://factory.example/node/n1')).toEqual({
      allowed: true,
      rule: 'spiffe://factory.example/node/*',
    });
  });
  it('deny wins over allow', () => {
    expect(authorize(p, 'spiffe://factory.example/node/bad')).toMatchObject({
      allowed: false,
      reason: 'denied',
    });
  });
  it('default deny', () => {
    expect(authorize(p, 'spiffe://factory.example/device/d1')).toMatchObject({
      allowed: false,
      reason: 'no-match',
    });
    expect(authorize(compileAuthz([]), 'spiffe://factory.example/node/n1')).toMatchObject({
      allowed: false,
      reason: 'no-match',
    });
  });
  it('one * is one segment only', () => {
    expect(authorize(p, 'spiffe://factory.example/node/a/b')).toMatchObject({ allowed: false });
    expect(authorize(p, 'spiffe://other.example/node/n1')).toMatchObject({ allowed: false });
  });
  it('refuses malformed identities', () => {
    expect(authorize(p, 'spiffe://factory.example/node/../x')).toMatchObject({
      allowed: false,
      reason: 'invalid-identity',
    });
    expect(authorize(p, '')).toMatchObject({ allowed: false, reason: 'invalid-identity' });
  });
  it('rejects bad patterns with ERR_POLICY_AUTHZ_PATTERN', () => {
    expect(() => compileAuthz(['http://x/y'])).toThrow(
      expect.objectContaining({ code: 'ERR_POLICY_AUTHZ_PATTERN' }),
    );
    expect(() => compileAuthz([42])).toThrow(expect.objectContaining({ code: 'ERR_POLICY_AUTHZ_PATTERN' }));
    expect(() => compileAuthz([], ['spiffe://'])).toThrow(
      expect.objectContaining({ code: 'ERR_POLICY_AUTHZ_PATTERN' }),
    );
  });
  it('policies are frozen', () => {
    expect(Object.isFrozen(p.allow)).toBe(true);
  });
});
