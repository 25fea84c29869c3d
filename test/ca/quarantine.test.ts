// What the SIEM's decisions mean for the CA (ca/quarantine.ts): which decision covers a
// credential, and the renewal holds a set places or releases.
import { describe, expect, it } from 'vitest';
import { LIFT_MARGIN_MS, planHolds, quarantineOf, type RenewalHold } from '../../ca/quarantine.js';
import type { Decision, DecisionScope, DecisionSet } from '../../common/decisions.js';

const TD = 'factory.example';
const NOW = Date.UTC(2026, 0, 1);
const d1 = `spiffe://${TD}/device/d1`;

function decision(id: string, scope: DecisionScope, expiresAt = NOW + 3_600_000): Decision {
  return {
    id,
    revision: 1,
    scope,
    action: 'quarantine',
    reason: 'test',
    createdAt: NOW - 1000,
    expiresAt,
    alerts: [],
  };
}

function set(...decisions: Decision[]): DecisionSet {
  return { trustDomain: TD, revision: 7, issuedAt: NOW, decisions };
}

describe('quarantineOf', () => {
  it('covers an identity by identity, node or pattern, a certificate by serial or key', () => {
    const s = set(
      decision('a', { type: 'serial', value: '0AB1' }),
      decision('b', { type: 'spki', value: 'C'.repeat(64) }),
      decision('c', { type: 'identity', value: `spiffe://${TD}/device/*` }),
    );
    expect(quarantineOf(s, { identity: `spiffe://${TD}/node/n1`, serials: ['ab1'] }, NOW)?.id).toBe('a');
    expect(quarantineOf(s, { identity: `spiffe://${TD}/node/n1`, spkis: ['c'.repeat(64)] }, NOW)?.id).toBe(
      'b',
    );
    expect(quarantineOf(s, { identity: d1 }, NOW)?.id).toBe('c');
    expect(quarantineOf(s, { identity: `spiffe://${TD}/node/n1`, serials: ['ab2'] }, NOW)).toBeUndefined();
    // Expired decisions and no set at all cover nothing.
    expect(quarantineOf(s, { identity: d1 }, NOW + 3_600_000)).toBeUndefined();
    expect(quarantineOf(null, { identity: d1 }, NOW)).toBeUndefined();
  });
});

describe('planHolds', () => {
  const owners = (scope: DecisionScope): string[] =>
    scope.value === 'ab1' ? [d1, d1] : scope.value === 'ca' ? [`spiffe://${TD}/svc/ca`] : [];
  const hold = (decisionId: string, o: Partial<RenewalHold> = {}): RenewalHold => ({
    identity: d1,
    decisionId,
    scope: { type: 'serial', value: 'ab1' },
    placedAt: NOW - 10_000,
    decisionExpiresAt: NOW + 3_600_000,
    releasedAt: null,
    releasedBy: null,
    ...o,
  });

  it('holds the owner of a quarantined serial once, never a control-plane identity', () => {
    const p = planHolds(
      set(
        decision('a', { type: 'serial', value: 'ab1' }),
        decision('b', { type: 'serial', value: 'ca' }),
        decision('c', { type: 'identity', value: d1 }),
      ),
      [],
      owners,
      NOW,
    );
    expect(p.place.map((h) => [h.identity, h.decisionId])).toEqual([[d1, 'a']]);
    expect(p.lifted).toEqual([]);
  });

  it('does not hold again for a decision whose hold an analyst released', () => {
    const p = planHolds(
      set(decision('a', { type: 'serial', value: 'ab1' })),
      [hold('a', { releasedAt: NOW - 1, releasedBy: 'cli' })],
      owners,
      NOW,
    );
    expect(p.place).toEqual([]);
  });

  it('releases a hold whose decision was lifted, and keeps one whose decision expired', () => {
    expect(planHolds(set(), [hold('a')], owners, NOW).lifted.map((h) => h.decisionId)).toEqual(['a']);
    const expiring = hold('a', { decisionExpiresAt: NOW + LIFT_MARGIN_MS / 2 });
    expect(planHolds(set(), [expiring], owners, NOW).lifted).toEqual([]);
    expect(
      planHolds(set(decision('a', { type: 'serial', value: 'ab1' })), [hold('a')], owners, NOW).lifted,
    ).toEqual([]);
  });
});
