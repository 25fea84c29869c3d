// The pure enforcement core: the live-connection index, decisions, CRL serials, expiry, and the
// handshake rate limiter (with a fake clock). Addresses and blocks: test/common/ip.test.ts.
import { describe, expect, it } from 'vitest';
import { fakeClock } from '../../common/clock.js';
import type { Decision, DecisionScope } from '../../common/decisions.js';
import { Enforcer, type LiveConn, type Refusal } from '../../agent/enforcement.js';
import { HandshakeRateLimiter } from '../../agent/limits.js';

function conn(over: Partial<LiveConn> & { kills?: Refusal[] } = {}): LiveConn & { kills: Refusal[] } {
  const kills: Refusal[] = over.kills ?? [];
  return {
    identity: 'spiffe://factory.example/node/a',
    serial: 'abc1',
    spki: 'f'.repeat(64),
    ip: '10.0.0.1',
    notAfter: Date.UTC(2027, 0, 1),
    direction: 'inbound',
    listener: 'in',
    ...over,
    kills,
    kill: (r) => kills.push(r),
  };
}

let n = 0;
function decision(scope: DecisionScope, over: Partial<Decision> = {}): Decision {
  return {
    id: `d${++n}`,
    revision: 1,
    scope,
    action: 'quarantine',
    reason: 'r',
    createdAt: 0,
    expiresAt: Date.UTC(2030, 0, 1),
    alerts: [],
    ...over,
  };
}

const set = (revision: number, ...decisions: Decision[]) => ({
  trustDomain: 'factory.example',
  revision,
  issuedAt: 0,
  decisions,
});

describe('Enforcer', () => {
  it('a decision kills exactly the matching live connections and refuses new ones', () => {
    const e = new Enforcer(fakeClock());
    const a = conn();
    const b = conn({
      identity: 'spiffe://factory.example/node/b',
      serial: 'b2',
      spki: 'e'.repeat(64),
      ip: '10.9.0.1',
    });
    e.add(a);
    e.add(b);
    const killed = e.applyDecisions(set(3, decision({ type: 'identity', value: a.identity })));
    expect(killed).toEqual([a]);
    expect(a.kills[0]).toMatchObject({ code: 'ERR_AGENT_QUARANTINED', revision: 1 });
    expect(b.kills).toEqual([]);
    expect(e.size).toBe(1);
    expect(e.decisionRevision).toBe(3);
    expect(e.check(a, 'inbound')).toMatchObject({ code: 'ERR_AGENT_QUARANTINED' });
    expect(e.check(b, 'inbound')).toBeNull();
  });

  it('matches identity patterns, serial, spki, ip (a mapped socket address too) and cidr', () => {
    const cases: [DecisionScope, Partial<LiveConn>][] = [
      [{ type: 'identity', value: 'spiffe://factory.example/node/*' }, {}],
      [{ type: 'node', value: 'spiffe://factory.example/node/a' }, {}],
      [{ type: 'serial', value: 'abc1' }, {}],
      [{ type: 'spki', value: 'f'.repeat(64) }, {}],
      [{ type: 'ip', value: '10.0.0.1' }, { ip: '::ffff:10.0.0.1' }],
      [{ type: 'ip', value: 'fe80::1' }, { ip: 'fe80::1%eth0' }],
      [{ type: 'cidr', value: '10.0.0.0/24' }, {}],
      [{ type: 'cidr', value: '10.0.0.0/24' }, { ip: '::FFFF:10.0.0.1' }],
    ];
    for (const [scope, over] of cases) {
      const e = new Enforcer(fakeClock());
      const c = conn(over);
      e.add(c);
      expect(e.applyDecisions(set(1, decision(scope))).length, scope.type).toBe(1);
      expect(e.check(c, 'inbound'), scope.type).not.toBeNull();
    }
  });

  it('quarantine leaves outbound connections alone; isolate and node scopes do not', () => {
    const e = new Enforcer(fakeClock());
    const out = conn({ direction: 'outbound' });
    e.add(out);
    expect(e.applyDecisions(set(1, decision({ type: 'identity', value: out.identity })))).toEqual([]);
    expect(
      e.applyDecisions(set(2, decision({ type: 'identity', value: out.identity }, { action: 'isolate' }))),
    ).toEqual([out]);
  });

  it('skips scopes that are not canonical instead of rebasing them (the verifier refuses them)', () => {
    for (const scope of [
      { type: 'ip', value: '::ffff:10.0.0.1' },
      { type: 'cidr', value: '::ffff:10.0.0.0/120' },
      { type: 'cidr', value: '10.0.0.1/24' },
      { type: 'serial', value: '00:AB:C1' },
      { type: 'spki', value: 'F'.repeat(64) },
      { type: 'ip', value: 'fe80::1%eth0' },
    ] as const) {
      const e = new Enforcer(fakeClock());
      const c = conn({ ip: scope.type === 'ip' && scope.value.startsWith('fe80') ? 'fe80::1' : '10.0.0.1' });
      e.add(c);
      expect(e.applyDecisions(set(1, decision(scope))), scope.value).toEqual([]);
      expect(e.check(c, 'inbound'), scope.value).toBeNull();
    }
  });

  it('expired decisions are not enforced; unusable scopes are skipped', () => {
    const clock = fakeClock(Date.UTC(2031, 0, 1));
    const e = new Enforcer(clock);
    const c = conn({ notAfter: Date.UTC(2032, 0, 1) });
    e.add(c);
    expect(
      e.applyDecisions(
        set(
          1,
          decision({ type: 'identity', value: c.identity }),
          decision({ type: 'cidr', value: 'nonsense' }),
        ),
      ),
    ).toEqual([]);
    expect(e.check(c, 'inbound')).toBeNull();
  });

  it('CRL serials kill and refuse', () => {
    const e = new Enforcer(fakeClock());
    const c = conn();
    e.add(c);
    expect(e.applyRevoked(['00ABC1'])).toEqual([c]);
    expect(c.kills[0]?.code).toBe('ERR_AGENT_REVOKED');
    expect(e.check(c, 'inbound')?.code).toBe('ERR_AGENT_REVOKED');
  });

  it('expired peer certificates are swept and refused', () => {
    const clock = fakeClock(Date.UTC(2026, 5, 1));
    const e = new Enforcer(clock);
    const c = conn({ notAfter: Date.UTC(2026, 5, 2) });
    e.add(c);
    expect(e.sweepExpired()).toEqual([]);
    clock.advance(2 * 86_400_000);
    expect(e.sweepExpired()).toEqual([c]);
    expect(e.check(c, 'inbound')?.code).toBe('ERR_AGENT_CERT_EXPIRED');
  });

  it('remove is idempotent and counts per identity', () => {
    const e = new Enforcer(fakeClock());
    const a = conn();
    const b = conn();
    e.add(a);
    e.add(b);
    expect(e.countsByIdentity().get(a.identity)).toBe(2);
    e.remove(a);
    e.remove(a);
    expect(e.countsByIdentity().get(a.identity)).toBe(1);
  });
});

describe('HandshakeRateLimiter', () => {
  it('allows a burst, then the sustained rate, per source', () => {
    const clock = fakeClock();
    const l = new HandshakeRateLimiter(clock, 2, 3);
    expect([l.take('a'), l.take('a'), l.take('a'), l.take('a')]).toEqual([true, true, true, false]);
    expect(l.take('b')).toBe(true);
    clock.advance(500);
    expect(l.take('a')).toBe(true);
    expect(l.take('a')).toBe(false);
  });
  it('keeps its table bounded', () => {
    const l = new HandshakeRateLimiter(fakeClock(), 1, 1, 100);
    for (let i = 0; i < 1000; i++) l.take(`10.0.${i >> 8}.${i & 255}`);
    expect(l.sources).toBeLessThanOrEqual(100);
  });
});
