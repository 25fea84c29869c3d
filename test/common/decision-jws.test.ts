// Signed decisions: the SIEM signs snapshots and deltas, agents verify them; every refusal has
// its own code.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { CompactSign } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  DECISIONS_TYP,
  parseDecisionDelta,
  parseDecisionSet,
  signDecisionDelta,
  signDecisionSet,
  verifyDecisions,
  type VerifyDecisionsOptions,
} from '../../common/decision-jws.js';
import type { Decision, DecisionDelta, DecisionSet } from '../../common/decisions.js';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const NOW = Date.UTC(2026, 0, 1, 12);
const TD = 'factory.example';

const decision: Decision = {
  id: 'd-1',
  revision: 7,
  scope: { type: 'identity', value: 'spiffe://factory.example/device/d1' },
  action: 'quarantine',
  reason: 'repeated attestation failures',
  createdAt: NOW - 1000,
  expiresAt: NOW + 3_600_000,
  alerts: ['a1'],
};
const set: DecisionSet = { trustDomain: TD, revision: 7, issuedAt: NOW, decisions: [decision] };
const delta: DecisionDelta = {
  trustDomain: TD,
  from: 7,
  revision: 8,
  issuedAt: NOW,
  upserts: [{ ...decision, revision: 8 }],
  removals: ['d-0'],
};

const opts = (o: Partial<VerifyDecisionsOptions> = {}): VerifyDecisionsOptions => ({
  publicKey,
  trustDomain: TD,
  lastApplied: null,
  now: NOW,
  ...o,
});

async function rawSign(
  payload: unknown,
  header: Record<string, unknown>,
  key: KeyObject = privateKey,
): Promise<string> {
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: 'ES256', ...header })
    .sign(key);
}

describe('decision JWS', () => {
  it('round-trips a snapshot with kid and typ', async () => {
    const jws = await signDecisionSet(set, privateKey, 'siem-1');
    const header = JSON.parse(Buffer.from(jws.split('.')[0]!, 'base64url').toString()) as Record<
      string,
      unknown
    >;
    expect(header).toEqual({ alg: 'ES256', kid: 'siem-1', typ: DECISIONS_TYP });
    const r = await verifyDecisions(jws, opts({ kid: 'siem-1' }));
    expect(r).toEqual({ kind: 'snapshot', set });
  });

  it('round-trips a delta that starts at the applied revision', async () => {
    const jws = await signDecisionDelta(delta, privateKey, 'siem-1');
    expect(await verifyDecisions(jws, opts({ lastApplied: 7 }))).toEqual({ kind: 'delta', delta });
  });

  it('accepts a snapshot at the applied revision (re-sent after a reconnect), refuses an older one', async () => {
    const jws = await signDecisionSet(set, privateKey, 'k');
    await expect(verifyDecisions(jws, opts({ lastApplied: 7 }))).resolves.toMatchObject({ kind: 'snapshot' });
    await expect(verifyDecisions(jws, opts({ lastApplied: 8 }))).rejects.toMatchObject({
      code: 'ERR_DECISION_STALE',
    });
  });

  it('refuses a delta that does not start at the applied revision', async () => {
    const jws = await signDecisionDelta(delta, privateKey, 'k');
    await expect(verifyDecisions(jws, opts({ lastApplied: 6 }))).rejects.toMatchObject({
      code: 'ERR_DECISION_GAP',
    });
    await expect(verifyDecisions(jws, opts({ lastApplied: 8 }))).rejects.toMatchObject({
      code: 'ERR_DECISION_GAP',
    });
    await expect(verifyDecisions(jws, opts({ lastApplied: null }))).rejects.toMatchObject({
      code: 'ERR_DECISION_GAP',
    });
  });

  it('refuses another key, a tampered payload and alg none', async () => {
    const jws = await signDecisionSet(set, other.privateKey, 'k');
    await expect(verifyDecisions(jws, opts())).rejects.toMatchObject({ code: 'ERR_DECISION_SIGNATURE' });
    const good = await signDecisionSet(set, privateKey, 'k');
    const [h, , s] = good.split('.');
    const forged = Buffer.from(JSON.stringify({ kind: 'snapshot', ...set, decisions: [] })).toString(
      'base64url',
    );
    await expect(verifyDecisions(`${h}.${forged}.${s}`, opts())).rejects.toMatchObject({
      code: 'ERR_DECISION_SIGNATURE',
    });
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: DECISIONS_TYP })).toString('base64url')}.${forged}.`;
    await expect(verifyDecisions(none, opts())).rejects.toMatchObject({ code: 'ERR_DECISION_MALFORMED' });
    const hs = `${Buffer.from(JSON.stringify({ alg: 'HS256', typ: DECISIONS_TYP })).toString('base64url')}.${forged}.${s}`;
    await expect(verifyDecisions(hs, opts())).rejects.toMatchObject({ code: 'ERR_DECISION_SIGNATURE' });
  });

  it('refuses a wrong typ or kid even when the signature is good', async () => {
    const jwt = await rawSign({ kind: 'snapshot', ...set }, { typ: 'JWT', kid: 'k' });
    await expect(verifyDecisions(jwt, opts())).rejects.toMatchObject({ code: 'ERR_DECISION_TYP' });
    const jws = await signDecisionSet(set, privateKey, 'k');
    await expect(verifyDecisions(jws, opts({ kid: 'other' }))).rejects.toMatchObject({
      code: 'ERR_DECISION_KID',
    });
  });

  it('refuses another trust domain and a future issuedAt beyond the skew', async () => {
    const foreign = await signDecisionSet({ ...set, trustDomain: 'evil.example' }, privateKey, 'k');
    await expect(verifyDecisions(foreign, opts())).rejects.toMatchObject({
      code: 'ERR_DECISION_TRUST_DOMAIN',
    });
    const future = await signDecisionSet({ ...set, issuedAt: NOW + 120_000 }, privateKey, 'k');
    await expect(verifyDecisions(future, opts())).rejects.toMatchObject({ code: 'ERR_DECISION_FUTURE' });
    await expect(verifyDecisions(future, opts({ skewMs: 180_000 }))).resolves.toMatchObject({
      kind: 'snapshot',
    });
  });

  it('refuses malformed payloads even when signed', async () => {
    const bad: unknown[] = [
      { kind: 'other' },
      { kind: 'snapshot', ...set, extra: 1 },
      { kind: 'snapshot', ...set, revision: -1 },
      { kind: 'snapshot', ...set, decisions: [{ ...decision, scope: { type: 'ip', value: 'not-an-ip' } }] },
      { kind: 'snapshot', ...set, decisions: [{ ...decision, action: 'delete' }] },
      { kind: 'snapshot', ...set, decisions: [{ ...decision, revision: 9 }] },
      { kind: 'snapshot', ...set, decisions: [decision, decision] },
      { kind: 'delta', ...delta, from: 8 },
      JSON.parse(
        `{"kind":"snapshot","trustDomain":"${TD}","revision":1,"issuedAt":1,"decisions":[],"__proto__":{"x":1}}`,
      ),
    ];
    for (const p of bad) {
      const jws = await rawSign(p, { typ: DECISIONS_TYP, kid: 'k' });
      await expect(verifyDecisions(jws, opts({ lastApplied: 7 })), JSON.stringify(p)).rejects.toMatchObject({
        code: 'ERR_DECISION_MALFORMED',
      });
    }
  });

  it('refuses signed scopes that are not canonical (the bus and the signer cannot disagree with the enforcer)', async () => {
    const spelled: [string, string][] = [
      ['ip', '::ffff:127.0.0.1'],
      ['ip', '2001:DB8::1'],
      ['ip', '2001:db8:0:0:0:0:0:1'],
      ['cidr', '::ffff:0.0.0.0/96'],
      ['cidr', '10.0.0.1/32'],
      ['serial', '00AB'],
      ['serial', 'ab:cd'],
      ['spki', 'F'.repeat(64)],
    ];
    for (const [type, value] of spelled) {
      const p = { kind: 'snapshot', ...set, decisions: [{ ...decision, scope: { type, value } }] };
      const jws = await rawSign(p, { typ: DECISIONS_TYP, kid: 'k' });
      await expect(verifyDecisions(jws, opts({ lastApplied: 7 })), value).rejects.toMatchObject({
        code: 'ERR_DECISION_SCOPE_NOT_CANONICAL',
      });
      await expect(
        signDecisionSet(
          { ...set, decisions: [{ ...decision, scope: { type, value } as never }] },
          privateKey,
          'k',
        ),
        value,
      ).rejects.toMatchObject({ code: 'ERR_DECISION_SCOPE_NOT_CANONICAL' });
    }
    // Zones and host bits have no canonical form at all.
    for (const [type, value] of [
      ['ip', 'fe80::1%eth0'],
      ['cidr', '10.0.0.1/8'],
      ['ip', '010.0.0.1'],
    ]) {
      const p = { kind: 'snapshot', ...set, decisions: [{ ...decision, scope: { type, value } }] };
      const jws = await rawSign(p, { typ: DECISIONS_TYP, kid: 'k' });
      await expect(verifyDecisions(jws, opts({ lastApplied: 7 })), value).rejects.toMatchObject({
        code: 'ERR_DECISION_MALFORMED',
      });
    }
  });

  it('refuses garbage and oversize input before any crypto', async () => {
    await expect(verifyDecisions('a.b', opts())).rejects.toMatchObject({ code: 'ERR_DECISION_MALFORMED' });
    await expect(verifyDecisions('a.b.c.d', opts())).rejects.toMatchObject({
      code: 'ERR_DECISION_MALFORMED',
    });
    await expect(verifyDecisions('x'.repeat(9 * 1024 * 1024), opts())).rejects.toMatchObject({
      code: 'ERR_DECISION_TOO_LARGE',
    });
  });

  it('refuses to sign with the wrong kind of key, or something agents would refuse', async () => {
    await expect(signDecisionSet(set, publicKey, 'k')).rejects.toThrow(TypeError);
    await expect(
      signDecisionSet(
        { ...set, decisions: [{ ...decision, scope: { type: 'spki', value: 'ab' } }] },
        privateKey,
        'k',
      ),
    ).rejects.toMatchObject({ code: 'ERR_DECISION_MALFORMED' });
  });
});

describe('refusals name the path', () => {
  it.each([
    [{ ...set, decisions: [{ ...decision, extra: 1 }] }, 'decision snapshot decisions[0].extra: unknown key'],
    [
      { ...set, decisions: [{ ...decision, action: 'delete' }] },
      'decision snapshot decisions[0].action: must be one of "quarantine", "isolate"',
    ],
    [{ ...set, revision: -1 }, 'decision snapshot revision: must be >= 0'],
    [
      { ...set, decisions: [{ ...decision, alerts: ['a b'] }] },
      'decision snapshot decisions[0].alerts[0]: must match pattern "^[A-Za-z0-9._:-]{1,64}$"',
    ],
    [{ ...set, decisions: [{ ...decision, expiresAt: 1 }] }, 'decisions[0] expires before it is created'],
  ])('%j', (doc, message) => {
    expect(() => parseDecisionSet({ kind: 'snapshot', ...doc })).toThrow(
      expect.objectContaining({ code: 'ERR_DECISION_MALFORMED', message }),
    );
  });
  it('names a poison key in a delta', () => {
    const doc: unknown = JSON.parse(
      `{"kind":"delta","trustDomain":"${TD}","from":1,"revision":2,"issuedAt":1,"upserts":[],"removals":[],"constructor":1}`,
    );
    expect(() => parseDecisionDelta(doc)).toThrow(
      expect.objectContaining({ message: 'decision delta constructor: forbidden or too deeply nested key' }),
    );
  });
});
