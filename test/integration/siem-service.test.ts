// The SIEM service end to end over real sockets: a real CA, the SIEM enrolled with a join token,
// agents over mTLS posting events, the agent's own SSE client verifying signed deltas, acks, the
// analyst API, the CA link, and hostile input at every entry point.
import { generateKeyPairSync, createPrivateKey } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompactSign } from 'jose';
import { renew, remoteCode } from '../../client/index.js';
import { signDecisionDelta, verifyDecisions } from '../../common/decision-jws.js';
import { serviceId } from '../../common/identity.js';
import { silentLogger } from '../../common/log.js';
import { loadRules } from '../../policies/rules/index.js';
import { loadPlaybooks } from '../../policies/index.js';
import { startSiemServer, type RunningSiem, createDashboardApi } from '../../siem/index.js';
import { verifySiemChain } from '../../common/siem-key.js';
import { createCaDecisionFollower } from '../../ca/index.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { tempDir } from '../helpers/tmp.js';
import {
  PLAYBOOKS,
  RULES,
  adminCreds,
  call,
  enrollAs,
  enrollSiemIdentity,
  startTestSiem,
  subscriber,
  waitFor,
  type Creds,
} from '../siem/service/setup.js';

const TD = 'factory.example';
let ca: TestCa;
let otherCa: TestCa;
let siem: RunningSiem;
let node: Creds;
let node2: Creds;
let foreign: Creds;
let admin: Creds;
let dir: string;

const failures = (ip: string, n: number, t0 = Date.now() - 30_000) =>
  Array.from({ length: n }, (_, i) => ({
    '@timestamp': t0 + i * 100,
    'event.action': 'handshake.failure',
    'source.ip': ip,
    'event.reason': 'unknown_ca',
  }));

beforeAll(async () => {
  dir = tempDir('edgeward-siem-');
  ca = await startTestCa();
  otherCa = await startTestCa();
  const identity = await enrollSiemIdentity(ca, dir);
  siem = await startTestSiem(dir, identity, ca.url, {
    heartbeatMs: 200,
    expireEveryMs: 100,
    maxBatchEvents: 500,
  });
  node = await enrollAs(ca, `spiffe://${TD}/node/n1`, join(dir, 'n1'));
  node2 = await enrollAs(ca, `spiffe://${TD}/node/n2`, join(dir, 'n2'));
  foreign = await enrollAs(otherCa, `spiffe://${TD}/node/n1`, join(dir, 'foreign'));
  admin = adminCreds(ca);
});

afterAll(async () => {
  await siem?.close();
  await ca?.stop();
  await otherCa?.stop();
});

describe('SIEM identity and signing key', () => {
  it('enrolls as spiffe://TD/svc/siem and serves the chain whose key signs decisions', async () => {
    expect(siem.identity().identity).toBe(serviceId(TD, 'siem'));
    const r = await call(`${siem.url}/v1/decisions/key`, undefined);
    expect(r.status).toBe(200);
    const key = verifySiemChain(r.body.toString('utf8'), ca.rootPem, TD, Date.now());
    expect(key.kid).toBe(siem.hub.kid);
    expect(r.headers['x-edgeward-kid']).toBe(key.kid);
  });

  it('refuses a chain that is not the SIEM or not from this bundle (ERR_SIEM_DECISION_KEY)', async () => {
    expect(() => verifySiemChain(node.certPem, ca.rootPem, TD, Date.now())).toThrow(
      expect.objectContaining({ code: 'ERR_SIEM_DECISION_KEY' }),
    );
    expect(() => verifySiemChain(siem.identity().certPem, otherCa.rootPem, TD, Date.now())).toThrow(
      expect.objectContaining({ code: 'ERR_SIEM_DECISION_KEY' }),
    );
    expect(() => verifySiemChain('not pem', ca.rootPem, TD, Date.now())).toThrow(
      expect.objectContaining({ code: 'ERR_SIEM_DECISION_KEY' }),
    );
  });
});

describe('events in -> alert -> decision -> stream -> ack', () => {
  it('a subscribed agent verifies the signed delta, acknowledges it, and /v1/agents shows it', async () => {
    const sub = await subscriber(siem.url, node, join(dir, 'sub1'), TD);
    try {
      await waitFor('initial snapshot', () => sub.applied.length > 0);
      await waitFor('agent listed', async () => {
        const r = await call(`${siem.url}/v1/agents`, admin);
        return (r.json?.['agents'] as { identity: string; connected: number }[]).find(
          (a) => a.identity === node.identity && a.connected > 0,
        );
      });
      const r = await call(`${siem.url}/v1/events`, node, { body: failures('192.0.2.50', 20) });
      expect(r.status).toBe(200);
      expect(r.json).toEqual({ accepted: 20 });
      const d = await waitFor('decision applied by the agent', () =>
        sub.store.current?.decisions.find((x) => x.scope.type === 'ip' && x.scope.value === '192.0.2.50'),
      );
      expect(d.action).toBe('quarantine');
      expect(sub.applied.at(-1)?.kind).toBe('delta');
      const rev = siem.hub.revision;
      expect(sub.store.revision).toBe(rev);
      const agent = await waitFor('ack recorded', async () => {
        const a = await call(`${siem.url}/v1/agents`, admin);
        return (a.json?.['agents'] as { identity: string; acked: number | null; behind: number }[]).find(
          (x) => x.identity === node.identity && x.acked === rev,
        );
      });
      expect(agent.behind).toBe(0);
      const alerts = await call(`${siem.url}/v1/alerts?rule=ew-handshake-failures-burst`, admin);
      expect((alerts.json?.['alerts'] as unknown[]).length).toBeGreaterThan(0);
      // The events carry the reporter's identity from its certificate.
      const tl = await call(`${siem.url}/v1/entities/source.ip/192.0.2.50/timeline?limit=50`, admin);
      const events = tl.json?.['events'] as Record<string, unknown>[];
      expect(events).toHaveLength(20);
      expect(events.every((e) => e['observer.identity'] === node.identity)).toBe(true);
      const metrics = (await call(`${siem.url}/metrics`, undefined)).body.toString();
      expect(metrics).toMatch(/edgeward_siem_alerts_total\{rule="ew-handshake-failures-burst"\} [1-9]/);
      expect(metrics).toMatch(/edgeward_siem_decisions_total\{outcome="applied"\} [1-9]/);
      // The events file's checkpointer thread runs (a pass follows the first commit).
      expect(metrics).toMatch(/edgeward_siem_wal_checkpoints_total\{result="pass"\} [1-9]/);
      expect(metrics).toMatch(/edgeward_siem_wal_checkpoints_total\{result="refused"\} 0/);
    } finally {
      sub.client.stop();
    }
  });

  it('accepts NDJSON, and an event repeating its own observer.identity', async () => {
    const lines = failures('192.0.2.60', 3).map((e) =>
      JSON.stringify({ ...e, 'observer.identity': node.identity }),
    );
    const r = await call(`${siem.url}/v1/events`, node, {
      raw: lines.join('\n') + '\n',
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ accepted: 3 });
  });

  it('the polling fallback answers a signed snapshot, then current', async () => {
    const r = await call(`${siem.url}/v1/decisions?from=0`, node2);
    expect(r.json?.['kind']).toBe('snapshot');
    const key = verifySiemChain(siem.identity().certPem, ca.rootPem, TD, Date.now());
    const doc = await verifyDecisions(r.json?.['jws'] as string, {
      publicKey: key.publicKey,
      trustDomain: TD,
      lastApplied: null,
      now: Date.now(),
      kid: key.kid,
    });
    expect(doc.kind).toBe('snapshot');
    const cur = await call(`${siem.url}/v1/decisions?from=${siem.hub.revision}`, node2);
    expect(cur.json).toEqual({ kind: 'current', revision: siem.hub.revision });
    expect((await call(`${siem.url}/v1/decisions?from=0`, undefined)).json?.['code']).toBe(
      'ERR_SIEM_UNAUTHENTICATED',
    );
  });
});

describe('hostile input at ingest', () => {
  const post = (creds: Creds | undefined, raw: string | Buffer, type = 'application/json') =>
    call(`${siem.url}/v1/events`, creds, { raw, headers: { 'content-type': type } });
  const one = { '@timestamp': Date.now(), 'event.action': 'connection.denied' };

  it('refuses each bad batch with its code and stores none of it', async () => {
    const before = await siem.store.countEvents();
    const cases: [string | Buffer, string, number, string?][] = [
      ['{"not":"an array"}', 'ERR_SIEM_BATCH_MALFORMED', 400],
      ['[{"@timestamp": 1', 'ERR_SIEM_BATCH_MALFORMED', 400],
      [Buffer.from([0x5b, 0xff, 0xfe, 0x5d]), 'ERR_SIEM_BATCH_MALFORMED', 400],
      [`${JSON.stringify(one)}\n{bad`, 'ERR_SIEM_BATCH_MALFORMED', 400, 'application/x-ndjson'],
      [JSON.stringify([one, { ...one, 'x|unknown': 1 }]), 'ERR_SIEM_EVENT_INVALID', 400],
      [
        `[${JSON.stringify(one)}, {"__proto__": {"x": 1}, "@timestamp": ${Date.now()}, "event.action": "a"}]`,
        'ERR_SIEM_EVENT_POISONED',
        400,
      ],
      [
        JSON.stringify([{ ...one, 'observer.identity': `spiffe://${TD}/node/someone-else` }]),
        'ERR_SIEM_OBSERVER_MISMATCH',
        403,
      ],
      [JSON.stringify([{ ...one, 'event.id': 'x' }]), 'ERR_SIEM_EVENT_SERVER_FIELD', 400],
      [JSON.stringify([{ ...one, '@timestamp': Date.now() + 3_600_000 }]), 'ERR_SIEM_EVENT_TIME', 400],
      [JSON.stringify(Array.from({ length: 501 }, () => one)), 'ERR_SIEM_BATCH_TOO_LARGE', 413],
      [Buffer.alloc(1024 * 1024 + 10, 0x20), 'ERR_INPUT_TOO_LARGE', 413],
      ['<events/>', 'ERR_INPUT_UNSUPPORTED_MEDIA', 415, 'application/xml'],
    ];
    for (const [body, code, status, type] of cases) {
      const r = await post(node, body, type);
      expect({ code: r.json?.['code'], status: r.status }).toEqual({ code, status });
      expect(Object.keys(r.json ?? {}).sort()).toEqual(['code', 'error', 'message', 'statusCode']);
    }
    expect(await siem.store.countEvents()).toBe(before);
    const m = (await call(`${siem.url}/metrics`, undefined)).body.toString();
    expect(m).toMatch(/edgeward_siem_events_rejected_total\{reason="ERR_SIEM_OBSERVER_MISMATCH"\} 1/);
  });

  it('refuses a batch with one malformed event whole, while batches sharing its group commit are stored', async () => {
    const before = await siem.store.countEvents();
    const batch = (who: string, n: number) =>
      Array.from({ length: n }, (_, i) => ({
        ...one,
        '@timestamp': Date.now() - 1000 + i,
        'source.identity': `spiffe://${TD}/device/${who}`,
      }));
    const bad = batch('mixed', 50);
    bad[37] = { ...bad[37], 'source.port': 70_000 } as (typeof bad)[number];
    const results = await Promise.all([
      ...Array.from({ length: 4 }, (_, k) => post(node, JSON.stringify(batch(`good${k}`, 100)))),
      post(node, JSON.stringify(bad)),
      ...Array.from({ length: 4 }, (_, k) => post(node2, JSON.stringify(batch(`good${k + 4}`, 100)))),
    ]);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 400, 200, 200, 200, 200]);
    expect(results[4]?.json?.['code']).toBe('ERR_SIEM_EVENT_INVALID');
    expect(results[4]?.json?.['message']).toBe(
      'event 37, field source.port: event does not match the schema',
    );
    expect(await siem.store.countEvents()).toBe(before + 800);
    expect(
      await siem.store.timeline({ entity: 'source.identity', value: `spiffe://${TD}/device/mixed` }),
    ).toEqual([]);
    for (let k = 0; k < 8; k++)
      expect(
        await siem.store.timeline({
          entity: 'source.identity',
          value: `spiffe://${TD}/device/good${k}`,
          limit: 1000,
        }),
      ).toHaveLength(100);
  });

  it('refuses ingest without a client certificate, or with one from another CA', async () => {
    const none = await post(undefined, JSON.stringify([one]));
    expect([none.status, none.json?.['code']]).toEqual([401, 'ERR_SIEM_UNAUTHENTICATED']);
    const other = await post(foreign, JSON.stringify([one]));
    expect([other.status, other.json?.['code']]).toEqual([401, 'ERR_SIEM_CERT_UNTRUSTED']);
  });

  it('answers 429 with Retry-After when the ingest queue is full', async () => {
    const small = await startSiemServer({
      dataDir: tempDir('edgeward-siem-small-'),
      host: '127.0.0.1',
      port: 0,
      identity: siem.identity(),
      rules: await loadRules(RULES),
      playbooks: await loadPlaybooks(PLAYBOOKS),
      log: silentLogger,
      maxQueuedEvents: 5,
    });
    try {
      const r = await call(`${small.url}/v1/events`, node, { body: Array.from({ length: 6 }, () => one) });
      expect([r.status, r.json?.['code'], r.headers['retry-after']]).toEqual([
        429,
        'ERR_SIEM_OVERLOADED',
        '1',
      ]);
      const ok = await call(`${small.url}/v1/events`, node, { body: Array.from({ length: 5 }, () => one) });
      expect(ok.status).toBe(200);
    } finally {
      await small.close();
    }
  });
});

describe('decisions presented to the verifier', () => {
  it('refuses a replayed, a stale, a forged and a tampered document with their codes', async () => {
    const key = verifySiemChain(siem.identity().certPem, ca.rootPem, TD, Date.now());
    const base = { publicKey: key.publicKey, trustDomain: TD, now: Date.now(), kid: key.kid };
    const before = siem.hub.revision;
    const made = await call(`${siem.url}/v1/decisions`, admin, {
      body: {
        scope: { type: 'ip', value: '198.51.100.77' },
        action: 'quarantine',
        ttl: '10m',
        reason: 'test',
      },
    });
    expect(made.status).toBe(201);
    const delta = await call(`${siem.url}/v1/decisions?from=${before}`, node);
    expect(delta.json?.['kind']).toBe('delta');
    const jws = delta.json?.['jws'] as string;
    const ok = await verifyDecisions(jws, { ...base, lastApplied: before });
    expect(ok.kind).toBe('delta');
    // Replayed: the verifier already applied it.
    await expect(verifyDecisions(jws, { ...base, lastApplied: siem.hub.revision })).rejects.toMatchObject({
      code: 'ERR_DECISION_GAP',
    });
    // A snapshot older than what is applied.
    const snap = (await call(`${siem.url}/v1/decisions?from=0`, node)).json?.['jws'] as string;
    await expect(
      verifyDecisions(snap, { ...base, lastApplied: siem.hub.revision + 5 }),
    ).rejects.toMatchObject({
      code: 'ERR_DECISION_STALE',
    });
    // Tampered payload.
    const [h, p, s] = jws.split('.') as [string, string, string];
    const body = JSON.parse(Buffer.from(p, 'base64url').toString()) as { upserts: { reason: string }[] };
    body.upserts[0]!.reason = 'changed';
    const tampered = `${h}.${Buffer.from(JSON.stringify(body)).toString('base64url')}.${s}`;
    await expect(verifyDecisions(tampered, { ...base, lastApplied: before })).rejects.toMatchObject({
      code: 'ERR_DECISION_SIGNATURE',
    });
    // Forged: signed by another P-256 key, with the SIEM's kid or with its own.
    const forger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const decoded = JSON.parse(Buffer.from(p, 'base64url').toString()) as Parameters<
      typeof signDecisionDelta
    >[0];
    const forged = await signDecisionDelta(decoded, forger, key.kid);
    await expect(verifyDecisions(forged, { ...base, lastApplied: before })).rejects.toMatchObject({
      code: 'ERR_DECISION_SIGNATURE',
    });
    // The SIEM's own key under another kid (e.g. a key the verifier does not pin).
    const otherKid = await signDecisionDelta(decoded, createPrivateKey(siem.identity().keyPem), 'other-kid');
    await expect(verifyDecisions(otherKid, { ...base, lastApplied: before })).rejects.toMatchObject({
      code: 'ERR_DECISION_KID',
    });
    // Signed by the SIEM's key but with another typ header.
    const wrongTyp = await new CompactSign(Buffer.from(JSON.stringify(decoded)))
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
      .sign(createPrivateKey(siem.identity().keyPem));
    await expect(verifyDecisions(wrongTyp, { ...base, lastApplied: before })).rejects.toMatchObject({
      code: 'ERR_DECISION_TYP',
    });
  });
});

describe('analyst API, expiry and the CA link', () => {
  it('is refused to non-admin identities and to clients without a certificate', async () => {
    const r = await call(`${siem.url}/v1/decisions`, node, {
      body: { scope: { type: 'ip', value: '198.51.100.9' }, action: 'quarantine', ttl: '1m', reason: 'x' },
    });
    expect([r.status, r.json?.['code']]).toEqual([403, 'ERR_SIEM_FORBIDDEN']);
    const a = await call(`${siem.url}/v1/agents`, undefined);
    expect([a.status, a.json?.['code']]).toEqual([401, 'ERR_SIEM_UNAUTHENTICATED']);
    const p = await call(`${siem.url}/v1/decisions`, admin, {
      raw: '{"scope":{"type":"ip","value":"198.51.100.9"},"action":"quarantine","ttl":"1m","reason":"x","__proto__":{"a":1}}',
    });
    expect([p.status, p.json?.['code']]).toEqual([400, 'ERR_INPUT_MALFORMED']);
    const svc = await call(`${siem.url}/v1/decisions`, admin, {
      body: {
        scope: { type: 'identity', value: serviceId(TD, 'ca') },
        action: 'quarantine',
        ttl: '1m',
        reason: 'x',
      },
    });
    expect([svc.status, svc.json?.['code']]).toEqual([403, 'ERR_SIEM_DECISION_PROTECTED']);
  });

  it('a manual quarantine with revoke revokes at the CA (renewal refused) and the CA follower sees it', async () => {
    const device = await enrollAs(ca, `spiffe://${TD}/device/d9`, join(dir, 'd9'));
    const follower = await startCaFollower('ca-id');
    try {
      const r = await call(`${siem.url}/v1/decisions`, admin, {
        body: {
          scope: { type: 'identity', value: device.identity },
          action: 'quarantine',
          ttl: '1h',
          reason: 'stolen device',
          revoke: true,
        },
      });
      expect(r.status).toBe(201);
      expect((r.json?.['revoked'] as string[]).length).toBe(1);
      const err = await renew({ ca: ca.url, dir: join(dir, 'd9') }).catch((e: unknown) => e);
      expect(remoteCode(err)).toMatch(/^ERR_CA_(CERT_REVOKED|IDENTITY_REVOKED)$/);
      await waitFor('follower sees the quarantine', () => follower.isQuarantined(device.identity));
      expect(follower.isQuarantined(node.identity)).toBe(false);
      // The analyst's action is audited in the store.
      const tl = await call(
        `${siem.url}/v1/entities/identity/${encodeURIComponent(admin.identity)}/timeline`,
        admin,
      );
      const actions = (tl.json?.['events'] as Record<string, unknown>[]).map((e) => e['event.action']);
      expect(actions).toContain('siem.decision.create');
      // Lift: a new revision removes it, and the follower drops it.
      const id = (r.json?.['decision'] as { id: string }).id;
      const lifted = await call(`${siem.url}/v1/decisions/${id}/lift`, admin, { method: 'POST', raw: '{}' });
      expect(lifted.status).toBe(200);
      await waitFor('follower sees the lift', () => !follower.isQuarantined(device.identity));
      const again = await call(`${siem.url}/v1/decisions/${id}/lift`, admin, { method: 'POST', raw: '{}' });
      expect(again.json?.['code']).toBe('ERR_SIEM_DECISION_UNKNOWN');
    } finally {
      follower.stop();
    }
  });

  it('expired decisions are removed with a new revision that subscribers receive', async () => {
    const sub = await subscriber(siem.url, node2, join(dir, 'sub2'), TD);
    try {
      await waitFor('snapshot', () => sub.applied.length > 0);
      const r = await call(`${siem.url}/v1/decisions`, admin, {
        body: {
          scope: { type: 'ip', value: '198.51.100.200' },
          action: 'quarantine',
          ttl: '1s',
          reason: 'short',
        },
      });
      const id = (r.json?.['decision'] as { id: string }).id;
      await waitFor('agent holds it', () => sub.store.current?.decisions.some((d) => d.id === id));
      await waitFor('agent dropped it after expiry', () =>
        sub.store.current?.decisions.every((d) => d.id !== id),
      );
      expect(siem.hub.engine.active().some((d) => d.id === id)).toBe(false);
    } finally {
      sub.client.stop();
    }
  });

  it('renewal rotates the TLS certificate and the signing key; a verifier follows the new kid', async () => {
    const follower = await startCaFollower('ca-id2');
    try {
      await waitFor('follower synced', () => follower.revision === siem.hub.revision && follower.connected);
      const oldKid = siem.hub.kid;
      const oldSerial = siem.identity().serial;
      const next = await siem.renewNow();
      expect(next.serial).not.toBe(oldSerial);
      expect(siem.hub.kid).not.toBe(oldKid);
      const key = await call(`${siem.url}/v1/decisions/key`, undefined);
      expect(key.headers['x-edgeward-kid']).toBe(siem.hub.kid);
      const device = `spiffe://${TD}/device/after-renewal`;
      const r = await call(`${siem.url}/v1/decisions`, admin, {
        body: { scope: { type: 'identity', value: device }, action: 'quarantine', ttl: '5m', reason: 'x' },
      });
      expect(r.status).toBe(201);
      // The follower's pinned kid no longer matches: it refetches the chain and applies the delta.
      await waitFor('follower applied the delta signed with the new key', () =>
        follower.isQuarantined(device),
      );
    } finally {
      follower.stop();
    }
  });

  it('refuses an ack ahead of the current revision', async () => {
    const r = await call(`${siem.url}/v1/decisions/ack`, node, { body: { revision: siem.hub.revision + 1 } });
    expect([r.status, r.json?.['code']]).toEqual([409, 'ERR_SIEM_ACK_REVISION']);
    const s = await call(`${siem.url}/v1/decisions/ack`, node, { body: { revision: '1' } });
    expect([s.status, s.json?.['code']]).toEqual([400, 'ERR_INPUT_MALFORMED']);
  });
});

describe('dashboard adapter (siem/dashboard/api.ts over the running service)', () => {
  it('quarantines and lifts through the hub, audits the user, and aggregates events and alerts', async () => {
    const api = createDashboardApi(siem);
    const seen: unknown[] = [];
    const off = api.subscribeAlerts((a) => seen.push(a));
    try {
      const made = await api.quarantine('alice', {
        scope: { type: 'ip', value: '198.51.100.150' },
        action: 'quarantine',
        ttlMs: 60_000,
        reason: 'from the dashboard',
      });
      expect(made['status']).toBe('created');
      const view = await api.decisions();
      expect(view['revision']).toBe(siem.hub.revision);
      expect((view['active'] as { id: string }[]).some((d) => d.id === made['id'])).toBe(true);
      await expect(
        api.quarantine('alice', {
          scope: { type: 'ip', value: 'nope' },
          action: 'quarantine',
          ttlMs: 1000,
          reason: '',
        }),
      ).rejects.toMatchObject({ code: 'ERR_SIEM_DECISION_SCOPE' });
      expect((await api.lift('alice', made['id'] as string))['status']).toBe('lifted');
      const batch = [
        ...failures('192.0.2.170', 20),
        {
          '@timestamp': Date.now() - 1000,
          'event.action': 'connection.accepted',
          'source.identity': `spiffe://${TD}/device/g1`,
          'destination.identity': `spiffe://${TD}/node/n1`,
        },
      ];
      expect((await call(`${siem.url}/v1/events`, node, { body: batch })).status).toBe(200);
      await waitFor('alert pushed to the dashboard', () => seen.length > 0);
      const g = (await api.graph()) as { edges: { from: string; to: string }[] };
      expect(g.edges).toContainEqual(
        expect.objectContaining({ from: `spiffe://${TD}/device/g1`, to: `spiffe://${TD}/node/n1` }),
      );
      const c = (await api.charts()) as { eventsPerSecond: [number, number][] };
      expect(c.eventsPerSecond.some(([, v]) => v > 0)).toBe(true);
      const who = await siem.store.timeline({ entity: 'source.ip', value: '127.0.0.1', limit: 100 });
      expect(
        who.some((e) => e['event.action'] === 'siem.decision.lift' && String(e.message).includes('alice')),
      ).toBe(true);
      expect((await api.entity(`spiffe://${TD}/device/g1`, 10))['peers']).toContain(`spiffe://${TD}/node/n1`);
    } finally {
      off();
      api.close();
    }
  });
});

/** The CA's decision follower (ca/siem-follower.ts) with a svc/ca identity enrolled into `name`. */
async function startCaFollower(name: string): Promise<ReturnType<typeof createCaDecisionFollower>> {
  const caId = await enrollAs(ca, serviceId(TD, 'ca'), join(dir, name));
  const follower = createCaDecisionFollower({
    siemUrl: siem.url,
    trustDomain: TD,
    credentials: () => caId,
    log: silentLogger,
    file: join(dir, name, 'siem-decisions.json'),
  });
  await follower.start();
  return follower;
}
