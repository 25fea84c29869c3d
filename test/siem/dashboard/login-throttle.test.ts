// Wrong dashboard passwords back off per user name and source address: the guessing source waits
// longer and longer, the same user from elsewhere does not wait at all.
import { describe, expect, it } from 'vitest';
import { LoginThrottle } from '../../../siem/dashboard/login-throttle.js';

describe('login back-off', () => {
  it('backs off one source for one user, doubling, and never another source', () => {
    const t = { now: 0 };
    const th = new LoginThrottle(() => t.now, { freeFailures: 3, baseMs: 1000, maxMs: 8000 });
    for (let i = 0; i < 3; i++) {
      expect(th.wait('ana', '192.0.2.1')).toBe(0);
      th.failed('ana', '192.0.2.1');
    }
    expect(th.wait('ana', '192.0.2.1')).toBe(1);
    th.failed('ana', '192.0.2.1');
    expect(th.wait('ana', '192.0.2.1')).toBe(2);
    for (let i = 0; i < 5; i++) th.failed('ana', '192.0.2.1');
    expect(th.wait('ana', '192.0.2.1')).toBe(8); // capped
    expect(th.wait('ana', '192.0.2.9')).toBe(0);
    expect(th.wait('bob', '192.0.2.1')).toBe(0);
    t.now += 8000;
    expect(th.wait('ana', '192.0.2.1')).toBe(0);
    th.succeeded('ana', '192.0.2.1');
    th.failed('ana', '192.0.2.1');
    expect(th.wait('ana', '192.0.2.1')).toBe(0);
  });

  it('forgets old failures and bounds what it remembers', () => {
    const t = { now: 0 };
    const th = new LoginThrottle(() => t.now, { freeFailures: 1, forgetMs: 1000, maxKeys: 10 });
    th.failed('ana', 'a');
    th.failed('ana', 'a');
    expect(th.wait('ana', 'a')).toBeGreaterThan(0);
    t.now = 5000;
    expect(th.wait('ana', 'a')).toBe(0);
    for (let i = 0; i < 100; i++) th.failed('ana', `s${i}`);
    expect(th.size).toBe(10);
  });
});
