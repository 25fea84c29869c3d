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
import { Inventory } from '../../../siem/dashboard/inventory.js';
import { ResponseEngine } from '../../../siem/playbooks/index.js';
import { parsePlaybookTexts } from '../../../policies/index.js';
import { createDashboardApi } from '../../../siem/service/dashboard-api.js';
import { DecisionHub } from '../../../siem/service/hub.js';
import { openSqliteStore } from '../../../siem/store/index.js';
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
      audit: (a) => void audits.push(a),
      subscribeEvents: (fn) => (eventFns.add(fn), () => void eventFns.delete(fn)),
      subscribeAlerts: (fn) => (alertFns.add(fn), () => void alertFns.delete(fn)),
    },
    { inventory: new Inventory(db) },
  );
  const feed = (events: EdgeEvent[]): void => {
    for (const fn of eventFns) fn(events);
  };
  const close = async (): Promise<void> => {
    api.close();
    await hub.settled();
    store.close();
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
    s.hub.handleAlerts(
      [1, 2, 3, 4, 5].map((i) =>
        alertOf(`ip${i}`, s.now(), { 'source.ip': `192.0.2.${i}` }, { ruleId: 'r-ip' }),
      ),
    );
    s.hub.ledger.ack('spiffe://factory.example/node/current', s.hub.revision, s.now());
    s.hub.ledger.ack('spiffe://factory.example/node/behind', 3, s.now());
    const d = s.api.decisions() as {
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
    expect(s.api.inventory({ ...q, status: 'quarantined' }).total).toBe(0);
    const d = await s.api.quarantine('ana', manual(dev(9001)));
    expect(s.api.inventory({ ...q, status: 'quarantined' }).items.map((x) => x['identity'])).toEqual([
      dev(9001),
    ]);
    expect(s.api.inventory({ ...q, status: 'healthy' }).items.map((x) => x['identity'])).toEqual([dev(9000)]);
    expect(s.api.entity(dev(9001), 10)['quarantined']).toBe(true);
    await s.api.lift('ana', String(d['id']));
    expect(s.api.inventory({ ...q, status: 'quarantined' }).total).toBe(0);
    expect(s.api.entity(dev(9001), 10)['quarantined']).toBe(false);
  });

  it('lists an entity’s alerts from the index even when thousands of newer alerts exist', () => {
    const t = s.now();
    s.store.insertAlerts([alertOf('mine', t - 60_000, { 'source.identity': dev(7) })]);
    s.store.insertAlerts(
      Array.from({ length: 2500 }, (_, i) => alertOf(`other${i}`, t + i, { 'source.ip': '10.1.1.1' })),
    );
    const e = s.api.entity(dev(7), 10) as { alerts: { id: string }[] };
    expect(e.alerts.map((a) => a.id)).toEqual(['mine']);
    const busy = s.api.entity('10.1.1.1', 10) as { alerts: unknown[] };
    expect(busy.alerts).toHaveLength(100);
  });

  it('pages alerts with before, beyond the newest 10,000 too', () => {
    const page1 = s.api.alerts({ limit: 100 });
    expect(page1).toHaveLength(100);
    const last = page1[99] as { time: number };
    const page2 = s.api.alerts({ limit: 100, before: last.time });
    expect((page2[0] as { time: number }).time).toBeLessThan(last.time);
    const oldest = s.api.alerts({ limit: 10, before: s.now() - 1000 }) as { id: string }[];
    expect(oldest.map((a) => a.id)).toContain('mine');
  });

  it('draws the graph from pairs seen within the last hour, and makes room for new ones', () => {
    s.feed([
      {
        '@timestamp': s.now(),
        'event.action': 'connection.accepted',
        'source.identity': dev(1),
        'destination.identity': dev(2),
      },
    ]);
    const edges = () => (s.api.graph() as { edges: { from: string; to: string }[] }).edges;
    expect(edges().map((e) => e.from)).toEqual([dev(1)]);
    // 5,000 distinct pairs fill the table; two hours later they are stale and make room.
    s.feed(
      Array.from({ length: 5000 }, (_, i) => ({
        '@timestamp': s.now(),
        'event.action': 'connection.accepted',
        'source.identity': dev(10_000 + i),
        'destination.identity': dev(3),
      })),
    );
    expect(edges()).toHaveLength(500);
    s.advance(2 * 3_600_000);
    expect(edges()).toHaveLength(0);
    s.feed([
      {
        '@timestamp': s.now(),
        'event.action': 'connection.accepted',
        'source.identity': dev(4),
        'destination.identity': dev(5),
      },
    ]);
    expect(edges().map((e) => `${e.from}>${e.to}`)).toEqual([`${dev(4)}>${dev(5)}`]);
  });
});
