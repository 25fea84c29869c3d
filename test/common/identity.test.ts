// SPIFFE identities and identity patterns: strict parsing of hostile URIs (ERR_ID_INVALID),
// kinds, and the one-segment `*` and trailing `**` of patterns.
import { describe, expect, it } from 'vitest';
import {
  isTrustDomain,
  isValidPattern,
  matchIdentity,
  parseIdentity,
  serviceId,
} from '../../common/identity.js';

describe('parseIdentity', () => {
  it('reads trust domain, path and kind', () => {
    expect(parseIdentity('spiffe://factory.example/node/n1')).toEqual({
      uri: 'spiffe://factory.example/node/n1',
      trustDomain: 'factory.example',
      path: ['node', 'n1'],
      kind: 'node',
    });
    expect(parseIdentity('spiffe://td/device/line-3/d_1.a').kind).toBe('device');
    expect(parseIdentity('spiffe://td/workload').kind).toBe('other');
    expect(parseIdentity(serviceId('td', 'siem'))).toMatchObject({ kind: 'svc', path: ['svc', 'siem'] });
  });
  it.each([
    [undefined, 'identity must be a spiffe:// URI of at most 2048 characters'],
    [42, 'identity must be a spiffe:// URI of at most 2048 characters'],
    ['', 'identity must be a spiffe:// URI of at most 2048 characters'],
    [`spiffe://td/node/${'a'.repeat(2048)}`, 'identity must be a spiffe:// URI of at most 2048 characters'],
    ['https://td/node/n1', 'identity must start with spiffe://'],
    ['SPIFFE://td/node/n1', 'identity must start with spiffe://'],
    ['spiffe://TD/node/n1', 'invalid trust domain'],
    ['spiffe://a..b/node/n1', 'invalid trust domain'],
    ['spiffe://-td/node/n1', 'invalid trust domain'],
    ['spiffe://td:8443/node/n1', 'invalid trust domain'],
    ['spiffe://user@td/node/n1', 'invalid trust domain'],
    ['spiffe:///node/n1', 'invalid trust domain'],
    ['spiffe://td', 'identity needs a path'],
    ['spiffe://td/', 'invalid identity path segment'],
    ['spiffe://td/node//n1', 'invalid identity path segment'],
    ['spiffe://td/node/n1/', 'invalid identity path segment'],
    ['spiffe://td/node/..', 'invalid identity path segment'],
    ['spiffe://td/node/.', 'invalid identity path segment'],
    ['spiffe://td/node/n%31', 'invalid identity path segment'],
    ['spiffe://td/node/n1?x=1', 'invalid identity path segment'],
    ['spiffe://td/node/n\u00e9', 'invalid identity path segment'],
    ['spiffe://td/node/n1\n', 'invalid identity path segment'],
    [`spiffe://td/node/${'a'.repeat(256)}`, 'invalid identity path segment'],
    ['spiffe://td/node', 'node identity needs a name'],
    ['spiffe://td/svc', 'svc identity needs a name'],
  ])('refuses %j', (uri, message) => {
    expect(() => parseIdentity(uri)).toThrow(expect.objectContaining({ code: 'ERR_ID_INVALID', message }));
  });
  it('isTrustDomain follows the same rule', () => {
    expect(isTrustDomain('factory.example')).toBe(true);
    expect(isTrustDomain('a'.repeat(255))).toBe(true);
    expect(isTrustDomain('a'.repeat(256))).toBe(false);
    expect(isTrustDomain('a..b')).toBe(false);
    expect(isTrustDomain('td.')).toBe(false);
  });
});

describe('identity patterns', () => {
  it('`*` matches exactly one non-empty segment', () => {
    expect(matchIdentity('spiffe://td/node/*', 'spiffe://td/node/n1')).toBe(true);
    expect(matchIdentity('spiffe://td/node/*', 'spiffe://td/node/n1/x')).toBe(false);
    expect(matchIdentity('spiffe://td/node/*', 'spiffe://td/node/')).toBe(false);
    expect(matchIdentity('spiffe://td/node/*', 'spiffe://td/node')).toBe(false);
    expect(matchIdentity('spiffe://td/*/n1', 'spiffe://td/device/n1')).toBe(true);
  });
  it('a trailing `**` matches one or more segments; anywhere else it is literal', () => {
    expect(matchIdentity('spiffe://td/device/**', 'spiffe://td/device/a/b/c')).toBe(true);
    expect(matchIdentity('spiffe://td/device/**', 'spiffe://td/device/a')).toBe(true);
    expect(matchIdentity('spiffe://td/device/**', 'spiffe://td/device')).toBe(false);
    expect(matchIdentity('spiffe://td/**/a', 'spiffe://td/x/a')).toBe(false);
    expect(matchIdentity('spiffe://td/**/a', 'spiffe://td/**/a')).toBe(true);
  });
  it('literal patterns match only themselves, trust domain included', () => {
    expect(matchIdentity('spiffe://td/node/n1', 'spiffe://td/node/n1')).toBe(true);
    expect(matchIdentity('spiffe://td/node/n1', 'spiffe://other/node/n1')).toBe(false);
    expect(matchIdentity('spiffe://td/node/n1', 'spiffe://td/node/n10')).toBe(false);
  });
  it('isValidPattern accepts patterns whose literal parts are a valid identity', () => {
    for (const ok of ['spiffe://td/node/*', 'spiffe://td/device/**', 'spiffe://td/svc/siem'])
      expect(isValidPattern(ok), ok).toBe(true);
    for (const bad of [
      'td/node/*',
      'spiffe://td/node/**/x',
      'spiffe://TD/node/*',
      'spiffe://td/node/../*',
      'spiffe://td/node',
    ])
      expect(isValidPattern(bad), bad).toBe(false);
  });
});
