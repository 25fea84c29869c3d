// The reporter gate: a reporter's standing (revoked by the CA's CRL or its revocation events,
// quarantined by the SIEM's own decisions by identity, pattern, serial or key), its event budget,
// and the per-event policy filter.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Decision } from '../../../common/decisions.js';
import type { EdgeEvent } from '../../../common/events.js';
import { compileReporterPolicy, parseReporterPolicy } from '../../../policies/index.js';
import { ReporterGate, RevokedSerials } from '../../../siem/service/reporters.js';
import type { ReporterPeer } from '../../../siem/service/peer.js';

const TD = 'spiffe://factory.example';
const POLICY = readFileSync(
  join(import.meta.dirname, '../../../policies/default/reporter-policy.yaml'),
  'utf8',
);
const peer = (name: string, serial: string): ReporterPeer => ({
  identity: `${TD}/node/${name}`,
  serial,
  spki: serial.padEnd(64, '0'),
  kind: 'node',
});
const decision = (type: Decision['scope']['type'], value: string, revision = 1): Decision => ({
  id: `d-${value}`,
  revision,
  scope: { type, value },
  action: 'quarantine',
  reason: 't',
  createdAt: 0,
  expiresAt: 1e15,
  alerts: [],
});

function gate(o: { policy?: string; decisions?: Decision[]; t?: { now: number } } = {}) {
  const revoked = new RevokedSerials();
  const t = o.t ?? { now: 0 };
  const decisions = o.decisions ?? [];
  // Each call is a new revision here: the gate rebuilds its index whenever the revision moves.
  let revision = 0;
  const g = new ReporterGate({
    policy: compileReporterPolicy(parseReporterPolicy(o.policy ?? POLICY)),
    revoked,
    decisions: () => ({ revision: ++revision, active: () => decisions }),
    now: () => t.now,
  });
  return { g, revoked, decisions, t };
}

describe('reporter standing', () => {
  it('refuses a serial on the CA’s CRL, and one its revocation events named, until a newer CRL', () => {
    const { g, revoked } = gate();
    expect(g.standing(peer('n1', 'a1'))).toBeNull();
    expect(revoked.applyCrl(new Set(['00A1']), 100)).toBe(true);
    expect(g.standing(peer('n1', 'a1'))).toBe('ERR_SIEM_REPORTER_REVOKED');
    // An older CRL is ignored; revocation events from the CA count at once, others never.
    expect(revoked.applyCrl(new Set(), 50)).toBe(false);
    const rev = (observer: string, type: string, serial: string): EdgeEvent => ({
      '@timestamp': 1,
      'event.action': 'revocation',
      'observer.type': type,
      'observer.identity': observer,
      'tls.client.x509.serial_number': serial,
    });
    expect(revoked.learn([rev(`${TD}/node/x`, 'node', 'b2'), rev(`${TD}/svc/ca`, 'ca', 'c3')])).toEqual([
      'c3',
    ]);
    expect(g.standing(peer('n2', 'b2'))).toBeNull();
    expect(g.standing(peer('n3', 'c3'))).toBe('ERR_SIEM_REPORTER_REVOKED');
    expect(revoked.applyCrl(new Set(['a1', 'c3']), 200)).toBe(true);
    expect(revoked.size).toBe(2);
  });

  it('refuses a reporter under an active decision on its identity, a pattern, its serial or key', () => {
    const decisions: Decision[] = [];
    const { g } = gate({ decisions });
    const p = peer('n1', 'ab');
    expect(g.standing(p)).toBeNull();
    for (const d of [
      decision('identity', p.identity),
      decision('node', `${TD}/node/*`),
      decision('serial', 'AB'),
      decision('spki', p.spki),
    ]) {
      decisions.length = 0;
      decisions.push(d);
      expect(g.standing({ ...p, serial: d.scope.type === 'serial' ? 'ab' : 'ff' })).toBe(
        'ERR_SIEM_REPORTER_QUARANTINED',
      );
    }
    decisions.length = 0;
    decisions.push(decision('ip', '192.0.2.1'));
    expect(g.standing(p)).toBeNull();
  });
});

describe('reporter budgets', () => {
  it('spends whole batches from each reporter’s own bucket and refills it at the rate', () => {
    const t = { now: 0 };
    const { g } = gate({
      policy: `kind: reporter-policy\nbudgets: { events-per-second: 1000, events-burst: 10000 }\n`,
      t,
    });
    expect(g.spend('a', 10_000)).toBe(true);
    expect(g.hasBudget('a')).toBe(false);
    expect(g.spend('a', 1)).toBe(false);
    expect(g.retryAfter('a', 5000)).toBe(5);
    expect(g.spend('b', 10_000)).toBe(true); // another reporter is unaffected
    t.now = 2000;
    expect(g.spend('a', 2001)).toBe(false);
    expect(g.spend('a', 2000)).toBe(true);
  });
});

describe('the policy filter', () => {
  it('keeps what the reporter may report and lists the rest with its code', () => {
    const { g } = gate();
    const p = peer('n1', 'ab');
    const events = [
      { '@timestamp': 1, 'event.action': 'handshake.failure', 'source.ip': '192.0.2.1' },
      { '@timestamp': 1, 'event.action': 'revocation' },
      { '@timestamp': 1, 'event.action': 'connection.accepted', 'destination.identity': `${TD}/node/n2` },
    ] as EdgeEvent[];
    const f = g.filter(p, events);
    expect(f.accepted).toEqual([events[0]]);
    expect(f.refused).toEqual([
      { index: 1, code: 'ERR_SIEM_REPORTER_ACTION' },
      { index: 2, code: 'ERR_SIEM_REPORTER_SUBJECT' },
    ]);
  });
});
