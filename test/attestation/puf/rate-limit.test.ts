import { describe, expect, it } from 'vitest';
import { createFailureLimiter } from '../../../attestation/puf/rate-limit.js';

const limited = (f: () => void): void => {
  expect(f).toThrow(expect.objectContaining({ code: 'ERR_ATT_PUF_RATE_LIMITED' }));
};

describe('failure limiter', () => {
  it('lets the free failures through, then doubles the lock up to the cap', () => {
    const l = createFailureLimiter({ freeFailures: 1, baseDelayMs: 1000, maxDelayMs: 3000 });
    l.failure('a', 0);
    l.check('a', 0);
    l.failure('a', 0);
    limited(() => l.check('a', 999));
    l.check('a', 1000);
    l.failure('a', 1000);
    limited(() => l.check('a', 2999));
    l.check('a', 3000);
    l.failure('a', 3000); // 4 s would exceed the 3 s cap
    limited(() => l.check('a', 5999));
    l.check('a', 6000);
  });

  it('forgets old failures and bounds the identities it tracks', () => {
    const l = createFailureLimiter({ freeFailures: 0, baseDelayMs: 10, forgetAfterMs: 100, maxTracked: 2 });
    l.failure('a', 0);
    expect(l.state('a')?.failures).toBe(1);
    l.check('a', 101);
    expect(l.state('a')).toBeUndefined();
    l.failure('x', 0);
    l.failure('y', 0);
    l.failure('z', 0);
    expect(l.state('x')).toBeUndefined();
    expect(l.state('z')?.failures).toBe(1);
  });
});
