// The dashboard's view of the SIEM over a real SQLite store, response engine, decision hub and
// inventory: bounded answers (decision lists with totals, alert pages, an entity's alerts from the
// index at any age, the graph's time window) and quarantine status that follows each revision.
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EdgeEvent } from '../../../common/events.js';
import { silentLogger } from '../../../common/log.js';
import type { Alert } from '../../../siem/correlate/index.js';
import { openDashboardDb } from '../../../siem/dashboard/cli.js';
import { ResponseEngine } from '../../../siem/playbooks/index.js';
import { parsePlaybookTexts } from '../../../policies/index.js';
import { createDashboardApi } from '../../../siem/service/dashboard-api.js';
import { DecisionHub } from '../../../siem/service/hub.js';
import { openSqliteStore, sqliteInventoryStore } from '../../../siem/store/index.js';
import { alertOf } from '../../helpers/alerts.js';
import { tempDir } from '../../helpers/tmp.js';

const TD = 'factory.example';
const dev = (i: number): string => `spiffe://${TD}/device/d${i}`;
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const CONFIG = parsePlaybookTexts([
  { name: 'settings.yaml', text: 'kind: response-settings\nblast-radius: { max-per-minute: 2 }\n' },
  {
    name: 'pb.yaml',
    text: 'kind: playbook\nid: pb-ip\nrules: [r-ip]\ndecisions:\n  - { scope: ip, from: source.ip, action: quarantine, ttl: 15m }\n',
  },
]);

function setup() {
  const dir = tempDir();
  const store = openSqliteStore(join(dir, 'siem.db'), { synchronous: 'NORMAL' });
  const engine = new ResponseEngine({ trustDomain: TD, config: CONFIG });
  let t = Date.UTC(2026, 0, 1);
  const now = (): number => t;
  const hub = new DecisionHub({
    engine,
    store,
    signer: { key: privateKey, kid: 'k1' },
    now,
    log: silentLogger,
  });
  const eventFns = new Set<(e: readonly EdgeEvent[]) => void>();
  const alertFns = new Set<(a: Alert) => void>();
  const audits: unknown[] = [];
  const db = openDashboardDb(dir);
  const api = createDashboardApi(
    {
      hub,
      store,
      now,
      audit: async (a) => void audits.push(a),
      subscribeEvents: (fn) => (eventFns.add(fn), () => void eventFns.delete(fn)),
      subscribeAlerts: (fn) => (alertFns.add(fn), () => void alertFns.delete(fn)),
    },
    { inventory: sqliteInventoryStore(db) },
  );
  const feed = (events: EdgeEvent[]): void => {
    for (const fn of eventFns) fn(events);
  };
  const close = async (): Promise<void> => {
    api.close();
    await hub.settled();
    await store.close();
    db.close();
  };
  return { api, hub, store, engine, feed, audits, advance: (ms: number) => (t += ms), now, close };
}

const manual = (value: string) => ({
  scope: { type: 'identity', value },
  action: 'quarantine' as const,
  ttlMs: 3_600_000,
  reason: 'test',
});

describe('dashboard API', () => {
  const s = setup();
  afterAll(() => s.close());

  it('bounds the decision lists, newest first, and gives the totals', async () => {
    for (let i = 0; i < 520; i++) {
      await s.api.quarantine('ana', manual(dev(i)));
      s.advance(1);
    }
    // The blast-radius cap (2 a minute) leaves three of five automatic decisions pending.
    await s.hub.handleAlerts(
      [1, 2, 3, 4, 5].map((i) =>
        alertOf(`ip${i}`, s.now(), { 'source.ip': `192.0.2.${i}` }, { ruleId: 'r-ip' }),
      ),
    );
    await s.hub.ledger.ack('spiffe://factory.example/node/current', s.hub.revision, s.now());
    await s.hub.ledger.ack('spiffe://factory.example/node/behind', 3, s.now());
    const d = (await s.api.decisions()) as {
      active: { scope: { value: string } }[];
      activeTotal: number;
      pending: unknown[];
      pendingTotal: number;
      agents: { identity: string; behind: number }[];
      agentsTotal: number;
    };
    expect(d.activeTotal).toBe(522);
    expect(d.active).toHaveLength(500);
    expect(d.active.slice(2, 4).map((x) => x.scope.value)).toEqual([dev(519), dev(518)]);
    expect(d.pendingTotal).toBe(3);
    expect(d.pending).toHaveLength(3);
    expect(d.agentsTotal).toBe(2);
    expect(d.agents[0]?.identity).toBe('spiffe://factory.example/node/behind');
    expect(s.audits).toHaveLength(520);
  });

  it('quarantine status follows each revision: quarantine, then lift', async () => {
    const ca = { 'observer.identity': `spiffe://${TD}/svc/ca`, 'observer.type': 'ca' } as const;
    s.feed([
      { '@timestamp': s.now(), 'event.action': 'enroll.success', 'source.identity': dev(9000), ...ca },
      { '@timestamp': s.now(), 'event.action': 'enroll.success', 'source.identity': dev(9001), ...ca },
    ]);
    const q = { q: 'd900', limit: 10, offset: 0 };
    expect((await s.api.inventory({ ...q, status: 'quarantined' })).total).toBe(0);
    const d = await s.api.quarantine('ana', manual(dev(9001)));
    expect((await s.api.inventory({ ...q, status: 'quarantined' })).items.map((x) => x['identity'])).toEqual([
      dev(9001),
    ]);
    expect((await s.api.inventory({ ...q, status: 'healthy' })).items.map((x) => x['identity'])).toEqual([
      dev(9000),
    ]);
    expect((await s.api.entity(dev(9001), 10))['quarantined']).toBe(true);
    await s.api.lift('ana', String(d['id']));
    expect((await s.api.inventory({ ...q, status: 'quarantined' })).total).toBe(0);
    expect((await s.api.entity(dev(9001), 10))['quarantined']).toBe(false);
  });

  it('lists an entity’s alerts from the index even when thousands of newer alerts exist', async () => {
    const t = s.now();
    await s.store.insertAlerts([alertOf('mine', t - 60_000, { 'source.identity': dev(7) })]);
    await s.store.insertAlerts(
      Array.from({ length: 2500 }, (_, i) => alertOf(`other${i}`, t + i, { 'source.ip': '10.1.1.1' })),
    );
    const e = (await s.api.entity(dev(7), 10)) as { alerts: { id: string }[] };
    expect(e.alerts.map((a) => a.id)).toEqual(['mine']);
    const busy = (await s.api.entity('10.1.1.1', 10)) as { alerts: unknown[] };
    expect(busy.alerts).toHaveLength(100);
  });

  it('pages alerts with before, beyond the newest 10,000 too', async () => {
    const page1 = await s.api.alerts({ limit: 100 });
    expect(page1).toHaveLength(100);
    const last = page1[99] as { time: number };
    const page2 = await s.api.alerts({ limit: 100, before: last.time });
    expect((page2[0] as { time: number }).time).toBeLessThan(last.time);
    const oldest = (await s.api.alerts({ limit: 10, before: s.now() - 1000 })) as { id: string }[];
    expect(oldest.map((a) => a.id)).toContain('mine');
  });

  it('draws the graph from pairs seen within the last hour, and makes room for new ones', async () => {
    s.feed([
      {
        '@timestamp': s.now(),
        'event.action': 'connection.accepted',
        'source.identity': dev(1),
        'destination.identity': dev(2),
      },
    ]);
    const edges = async () => ((await s.api.graph()) as { edges: { from: string; to: string }[] }).edges;
    expect((await edges()).map((e) => e.from)).toEqual([dev(1)]);
    // 5,000 distinct pairs fill the table; two hours later they are stale and make room.
    s.feed(
      Array.from({ length: 5000 }, (_, i) => ({
        '@timestamp': s.now(),
        'event.action': 'connection.accepted',
        'source.identity': dev(10_000 + i),
        'destination.identity': dev(3),
      })),
    );
    expect(await edges()).toHaveLength(500);
    s.advance(2 * 3_600_000);
    expect(await edges()).toHaveLength(0);
    s.feed([
      {
        '@timestamp': s.now(),
        'event.action': 'connection.accepted',
        'source.identity': dev(4),
        'destination.identity': dev(5),
      },
    ]);
    expect((await edges()).map((e) => `${e.from}>${e.to}`)).toEqual([`${dev(4)}>${dev(5)}`]);
  });
});

describe('dashboard API views', () => {
  const s = setup();
  afterAll(() => s.close());
  const node1 = `spiffe://${TD}/node/n1`;

  it('names each alert’s severity and entity, preferring identities, then serials, keys, addresses', async () => {
    const t = s.now();
    await s.store.insertAlerts([
      alertOf('by-ip', t, { 'source.ip': '192.0.2.9' }),
      alertOf('by-serial', t + 1, { 'tls.client.x509.serial_number': 'abc' }),
      alertOf('by-id', t + 2, { 'source.ip': '192.0.2.9', 'source.identity': dev(1) }),
      alertOf(
        'by-trigger',
        t + 3,
        {},
        { trigger: { '@timestamp': t, 'event.action': 'x', 'source.ip': '192.0.2.10' } },
      ),
    ]);
    const views = await s.api.alerts({ limit: 10 });
    const of = (id: string) => views.find((v) => v['id'] === id);
    expect(of('by-ip')).toMatchObject({ severity: 'high', entity: '192.0.2.9', entityKind: 'ip' });
    expect(of('by-serial')).toMatchObject({ entity: 'abc', entityKind: 'serial', entityIdentity: null });
    expect(of('by-id')).toMatchObject({ entity: dev(1), entityKind: 'identity', entityIdentity: dev(1) });
    expect(of('by-trigger')).toMatchObject({ entity: '192.0.2.10', entityKind: 'ip' });
    expect(await s.api.alerts({ limit: 10, severity: ['critical'] })).toEqual([]);
    expect(await s.api.alert('by-serial', t + 1)).toMatchObject({
      id: 'by-serial',
      evidence: [],
      decisions: [],
    });
    await expect(s.api.alert('by-serial', t)).rejects.toThrow(
      expect.objectContaining({ code: 'ERR_NOT_FOUND' }),
    );
  });

  it('previews the live connections a scope covers, from the nodes’ own reports', async () => {
    const conn = (port: number, action: string) => ({
      '@timestamp': s.now(),
      'event.action': action,
      'source.identity': dev(2),
      'source.ip': '192.0.2.2',
      'source.port': port,
      'destination.identity': node1,
      'tls.client.x509.serial_number': 'beef',
      'network.direction': 'inbound',
      'observer.identity': node1,
      'observer.type': 'node',
    });
    s.feed([conn(1001, 'connection.accepted'), conn(1002, 'connection.accepted')]);
    s.feed([conn(1001, 'connection.closed')]);
    // A device's own word about a connection does not count.
    s.feed([
      { ...conn(1003, 'connection.accepted'), 'observer.identity': dev(2), 'observer.type': 'device' },
    ]);
    for (const scope of [
      { type: 'identity', value: dev(2) },
      { type: 'serial', value: 'beef' },
      { type: 'cidr', value: '192.0.2.0/24' },
    ])
      expect(s.api.preview(scope), scope.type).toMatchObject({
        liveConnections: 1,
        onAgents: [{ identity: node1, connections: 1 }],
      });
    expect(s.api.preview({ type: 'identity', value: dev(3) })['liveConnections']).toBe(0);
  });

  it('says which agents applied a decision and when; a revision just published is being applied', async () => {
    const d = await s.api.quarantine('ana', manual(dev(4)));
    const revision = Number(d['revision']);
    s.hub.ledger.connect(node1, s.now());
    await s.hub.settled();
    const before = ((await s.api.decisions())['agents'] as { identity: string; state: string }[]).find(
      (a) => a.identity === node1,
    );
    expect(before?.state).toBe('applying');
    s.advance(5000);
    expect(
      ((await s.api.decisions())['agents'] as { identity: string; state: string }[]).find(
        (a) => a.identity === node1,
      )?.state,
    ).toBe('behind');
    await s.hub.ledger.ack(node1, revision, s.now());
    expect(s.hub.ledger.appliedAt(node1, revision)).toBe(s.now());
    expect(s.hub.ledger.appliedAt(node1, revision + 1)).toBeNull();
    const active = (await s.api.decisions())['active'] as { id: string; appliedBy: number }[];
    expect(active.find((x) => x.id === d['id'])?.appliedBy).toBe(1);
  });

  it('answers an entity page for any text: an address, a serial, or nothing known', async () => {
    expect(await s.api.entity('192.0.2.2', 10)).toMatchObject({ type: 'ip', status: 'healthy' });
    expect(await s.api.entity('not a thing', 10)).toMatchObject({
      status: 'healthy',
      events: [],
      certificates: [],
    });
  });
});
