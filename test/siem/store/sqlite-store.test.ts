// The SQLite event store on a real file: batched inserts, per-entity timelines, alerts,
// decisions that survive a reopen, and retention in small batches.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createEventIdFactory, stampEvent, validateEvent, type EdgeEvent } from '../../../common/events.js';
import type { Alert } from '../../../siem/correlate/index.js';
import type { PendingDecision } from '../../../siem/playbooks/index.js';
import { applyRetention, asyncStore, openSqliteStoreSync, stateFileOf } from '../../../siem/store/index.js';
import { alertOf as sharedAlertOf } from '../../helpers/alerts.js';
import { tempDir } from '../../helpers/tmp.js';

const T = Date.UTC(2026, 0, 10);
const DAY = 86_400_000;
const nextId = createEventIdFactory(randomBytes);
const OBS = 'spiffe://factory.example/node/n1';

function ev(at: number, fields: Record<string, unknown>): EdgeEvent {
  const v = validateEvent({ '@timestamp': T + at, 'event.action': 'connection.accepted', ...fields });
  return stampEvent(v, { id: nextId(T + at), observer: OBS, ingested: T + at });
}

/** A quarantine of D1 made at `revision`. */
const decisionOf = (revision: number) => ({
  id: 'd1',
  revision,
  scope: { type: 'identity' as const, value: 'spiffe://factory.example/device/d1' },
  action: 'quarantine' as const,
  reason: 'r',
  createdAt: T,
  expiresAt: T + 3_600_000,
  alerts: ['a1'],
});
const D1 = 'spiffe://factory.example/device/d1';
const D2 = 'spiffe://factory.example/device/d2';
const N1 = 'spiffe://factory.example/node/n1';

describe('SQLite store', () => {
  const dir = tempDir();

  it('opens a WAL database file', () => {
    const file = join(dir, 'wal.db');
    const s = openSqliteStoreSync(file);
    s.insertEvents([ev(0, {})]);
    s.close();
    const db = new Database(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
    expect(existsSync(file)).toBe(true);
  });

  it('answers per-entity timelines, newest first, within a time range', () => {
    const s = openSqliteStoreSync(join(dir, 'timeline.db'));
    const events = [
      ev(1000, {
        'source.identity': D1,
        'destination.identity': N1,
        'source.ip': '10.0.0.1',
        'tls.client.x509.serial_number': 'aa',
      }),
      ev(2000, {
        'source.identity': D2,
        'destination.identity': N1,
        'source.ip': '10.0.0.2',
        'tls.client.x509.serial_number': 'bb',
      }),
      ev(3000, {
        'source.identity': D1,
        'destination.identity': D2,
        'source.ip': '10.0.0.1',
        'tls.client.x509.serial_number': 'aa',
      }),
      ev(4000, { 'event.action': 'handshake.failure', 'source.ip': '10.0.0.1' }),
    ];
    s.insertEvents(events);
    expect(s.countEvents()).toBe(4);
    const ids = (xs: EdgeEvent[]) => xs.map((e) => e['@timestamp'] - T);
    expect(ids(s.timeline({ entity: 'source.identity', value: D1 }))).toEqual([3000, 1000]);
    expect(ids(s.timeline({ entity: 'destination.identity', value: N1 }))).toEqual([2000, 1000]);
    expect(ids(s.timeline({ entity: 'source.ip', value: '10.0.0.1' }))).toEqual([4000, 3000, 1000]);
    expect(ids(s.timeline({ entity: 'serial', value: 'bb' }))).toEqual([2000]);
    expect(ids(s.timeline({ entity: 'identity', value: D2 }))).toEqual([3000, 2000]);
    expect(
      ids(s.timeline({ entity: 'source.ip', value: '10.0.0.1', since: T + 2000, until: T + 4000 })),
    ).toEqual([3000]);
    expect(ids(s.timeline({ entity: 'source.ip', value: '10.0.0.1', limit: 1 }))).toEqual([4000]);
    expect(s.timeline({ entity: 'source.identity', value: 'spiffe://factory.example/device/none' })).toEqual(
      [],
    );
    // Documents come back exactly as stored, including the SIEM-owned fields.
    expect(s.timeline({ entity: 'serial', value: 'bb' })[0]).toEqual(events[1]);
    expect(s.event(events[0]!['event.id']!)).toEqual(events[0]);
    expect(s.event('missing')).toBeUndefined();
    s.close();
  });

  it('inserts a batch atomically: an event without an id rolls the whole batch back', () => {
    const s = openSqliteStoreSync(join(dir, 'atomic.db'));
    const good = ev(0, {});
    const bad = validateEvent({ '@timestamp': T, 'event.action': 'x' });
    expect(() => s.insertEvents([good, bad])).toThrow(TypeError);
    expect(s.countEvents()).toBe(0);
    s.close();
  });

  it('keeps acknowledged events across a reopen', () => {
    const file = join(dir, 'durable.db');
    const s = openSqliteStoreSync(file);
    s.insertEvents(Array.from({ length: 500 }, (_, i) => ev(i, { 'source.ip': '10.0.0.9' })));
    s.close();
    const again = openSqliteStoreSync(file);
    expect(again.countEvents()).toBe(500);
    expect(again.timeline({ entity: 'source.ip', value: '10.0.0.9', limit: 10_000 })).toHaveLength(500);
    again.close();
  });

  it('stores alerts and lists them newest first, by rule', () => {
    const s = openSqliteStoreSync(join(dir, 'alerts.db'));
    const a = (id: string, ruleId: string, time: number): Alert => ({
      id,
      ruleId,
      title: 't',
      level: 'high',
      type: 'event_count',
      time,
      windowStart: time,
      groupBy: { 'source.ip': '10.0.0.1' },
      count: 3,
      values: [],
      events: [],
      trigger: ev(0, {}),
    });
    s.insertAlerts([a('a1', 'r1', T), a('a2', 'r2', T + 1), a('a3', 'r1', T + 2), a('a1', 'r1', T)]);
    expect(s.alerts().map((x) => x.id)).toEqual(['a3', 'a2', 'a1']);
    expect(s.alerts({ ruleId: 'r1' }).map((x) => x.id)).toEqual(['a3', 'a1']);
    expect(s.alerts({ since: T + 1 }).map((x) => x.id)).toEqual(['a3', 'a2']);
    s.close();
  });

  const alertOf = (id: string, time: number, groupBy: Record<string, string>, trigger = ev(0, {})) =>
    sharedAlertOf(id, time, groupBy, { ruleId: 'r1', count: 3, trigger });

  it('keeps an alert\u2019s triage across a reopen, the latest one winning', () => {
    const file = join(dir, 'triage.db');
    const s = openSqliteStoreSync(file);
    s.insertAlerts([alertOf('t1', T, { 'source.ip': '10.0.0.1' }), alertOf('t2', T + 1, {})]);
    s.setAlertStatus('t1', { status: 'acknowledged', by: 'ana', at: T + 5 });
    s.setAlertStatus('t1', { status: 'closed', by: 'bob', at: T + 9 });
    s.close();
    const again = openSqliteStoreSync(file);
    expect([...again.alertStatuses(['t1', 't2', 'nope']).entries()]).toEqual([
      ['t1', { status: 'closed', by: 'bob', at: T + 9 }],
    ]);
    again.close();
  });

  it('pages alerts newest first with before, and finds an entity\u2019s alerts by index at any age', () => {
    const s = openSqliteStoreSync(join(dir, 'alert-pages.db'));
    const old = alertOf('old', T, { 'source.identity': D1 });
    // 3,000 newer alerts about other entities: the old one is far beyond any "newest N" window.
    const others = Array.from({ length: 3000 }, (_, i) =>
      alertOf(`o${i}`, T + 1000 + i, { 'source.ip': '10.0.0.9' }),
    );
    const byTrigger = alertOf(
      'trig',
      T + 5000,
      { 'source.ip': '10.0.0.8' },
      ev(0, { 'source.identity': D1 }),
    );
    s.insertAlerts([old, ...others, byTrigger]);
    expect(s.alerts({ entity: D1 }).map((a) => a.id)).toEqual(['trig', 'old']);
    expect(s.alerts({ entity: D1, before: T + 5000 }).map((a) => a.id)).toEqual(['old']);
    expect(s.alerts({ entity: D1, since: T + 1 }).map((a) => a.id)).toEqual(['trig']);
    expect(s.alerts({ entity: D1, ruleId: 'r2' })).toEqual([]);
    expect(s.alerts({ entity: '10.0.0.9', limit: 2 }).map((a) => a.id)).toEqual(['o2999', 'o2998']);
    const page1 = s.alerts({ limit: 100 });
    expect(page1[0]?.id).toBe('trig');
    const page2 = s.alerts({ limit: 100, before: page1[99]!.time });
    expect(page2[0]?.time).toBeLessThan(page1[99]!.time);
    expect(page2).toHaveLength(100);
    expect(s.alerts({ before: T }).map((a) => a.id)).toEqual([]);
    // A re-fed alert is stored and indexed once; unknown or oversized entities find nothing.
    s.insertAlerts([old]);
    expect(s.alerts({ entity: D1 }).map((a) => a.id)).toEqual(['trig', 'old']);
    expect(s.alerts({ entity: 'spiffe://factory.example/device/none' })).toEqual([]);
    expect(s.alerts({ entity: 'x'.repeat(5000) })).toEqual([]);
    expect(s.alerts({ before: Number.NaN, limit: 1 }).map((a) => a.id)).toEqual(['trig']);
    s.close();
  });

  it('upgrades a schema-1 file: its stored alerts become findable by entity', () => {
    const file = join(dir, 'schema1.db');
    const raw = new Database(file);
    raw.exec(`CREATE TABLE alerts (id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, level TEXT NOT NULL,
      time INTEGER NOT NULL, doc TEXT NOT NULL)`);
    const a = alertOf('a-v1', T, { 'source.identity': D2 });
    raw
      .prepare('INSERT INTO alerts VALUES (?, ?, ?, ?, ?)')
      .run(a.id, a.ruleId, a.level, a.time, JSON.stringify(a));
    raw.prepare('INSERT INTO alerts VALUES (?, ?, ?, ?, ?)').run('broken', 'r1', 'low', T, '{not json');
    raw.pragma('user_version = 1');
    raw.close();
    const s = openSqliteStoreSync(file);
    expect(s.alerts({ entity: D2 }).map((x) => x.id)).toEqual(['a-v1']);
    s.close();
    const check = new Database(file, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(3);
    check.close();
    // Opening it again does not index twice.
    const again = openSqliteStoreSync(file);
    expect(again.alerts({ entity: D2 })).toHaveLength(1);
    again.close();
  });

  it('upgrades a schema-2 file: timeline into segments, state into its own file', () => {
    // Made by this version, then rewritten as schema 2 laid it out: one file, the merged timeline
    // keyed (h, ts, event), the state tables beside the events, the pending list one meta value.
    const made = join(dir, 'made-v3.db');
    const s = openSqliteStoreSync(made);
    const events = Array.from({ length: 50 }, (_, i) =>
      ev(i, { 'source.identity': D1, 'destination.identity': N1 }),
    );
    s.insertEvents(events);
    const alert = alertOf('a1', T, { 'source.identity': D1 });
    s.insertAlerts([alert]);
    const d = decisionOf(7);
    s.saveDecisionChanges({ revision: 7, upserts: [d], removals: [], at: T, pending: [] });
    s.close();
    const file = join(dir, 'schema2.db');
    const raw = new Database(file);
    raw.exec(`CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, ts INTEGER NOT NULL,
        action TEXT NOT NULL, source_identity TEXT, destination_identity TEXT, source_ip TEXT,
        serial TEXT, observer TEXT, doc TEXT NOT NULL);
      CREATE INDEX events_id ON events (id);
      CREATE INDEX events_ts ON events (ts);
      CREATE TABLE entity_timeline (h INTEGER NOT NULL, ts INTEGER NOT NULL, event INTEGER NOT NULL,
        PRIMARY KEY (h, ts, event)) WITHOUT ROWID;
      CREATE TABLE entity_timeline_recent (h INTEGER NOT NULL, ts INTEGER NOT NULL,
        event INTEGER NOT NULL, PRIMARY KEY (h, ts, event)) WITHOUT ROWID;
      CREATE TABLE alerts (id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, level TEXT NOT NULL,
        time INTEGER NOT NULL, doc TEXT NOT NULL);
      CREATE TABLE alert_entity (value TEXT NOT NULL, time INTEGER NOT NULL, alert INTEGER NOT NULL,
        PRIMARY KEY (value, time, alert)) WITHOUT ROWID;
      CREATE TABLE decisions (id TEXT PRIMARY KEY, revision INTEGER NOT NULL, scope_type TEXT NOT NULL,
        scope_value TEXT NOT NULL, action TEXT NOT NULL, created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL, removed_at INTEGER, doc TEXT NOT NULL);
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`);
    raw.prepare(`ATTACH DATABASE ? AS v3`).run(made);
    raw.prepare(`ATTACH DATABASE ? AS v3s`).run(stateFileOf(made));
    raw.exec(`INSERT INTO events SELECT * FROM v3.events;
      INSERT INTO entity_timeline SELECT h, ts, event FROM v3.entity_timeline_recent;
      INSERT INTO alerts (rowid, id, rule_id, level, time, doc) SELECT rowid, * FROM v3s.alerts;
      INSERT INTO alert_entity SELECT * FROM v3s.alert_entity;
      INSERT INTO decisions SELECT * FROM v3s.decisions;
      INSERT INTO meta SELECT * FROM v3s.meta;
      DETACH DATABASE v3; DETACH DATABASE v3s;`);
    const waiting = [{ id: 'p1', scope: { type: 'ip', value: '10.0.0.1' }, action: 'quarantine' }];
    raw.prepare(`INSERT INTO meta (key, value) VALUES ('pending', ?)`).run(JSON.stringify(waiting));
    raw.pragma('user_version = 2');
    raw.close();

    const expectAll = (st: ReturnType<typeof openSqliteStoreSync>): void => {
      expect(st.timeline({ entity: 'identity', value: D1, limit: 100 })).toEqual([...events].reverse());
      expect(st.timeline({ entity: 'destination.identity', value: N1, limit: 3 })).toEqual(
        events.slice(-3).reverse(),
      );
      expect(st.alerts({ entity: D1 })).toEqual([alert]);
      expect(st.loadResponseState()).toEqual({ revision: 7, decisions: [d], pending: waiting });
    };
    const up = openSqliteStoreSync(file);
    expectAll(up);
    up.close();
    const tables = (f: string): unknown[] => {
      const x = new Database(f, { readonly: true });
      try {
        return x.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).pluck().all();
      } finally {
        x.close();
      }
    };
    expect(tables(file)).toEqual(['batches', 'entity_timeline', 'entity_timeline_recent', 'events']);
    expect(tables(stateFileOf(file))).toEqual([
      'agent_acks',
      'alert_entity',
      'alert_status',
      'alerts',
      'decisions',
      'meta',
      'pending_decisions',
    ]);
    const check = new Database(file);
    expect(check.pragma('user_version', { simple: true })).toBe(3);
    expect(check.prepare(`SELECT count(*) FROM entity_timeline WHERE seg = 0`).pluck().get()).toBe(100);
    // A crash after the state was copied but before the old tables were dropped: both copies.
    check.exec(`CREATE TABLE alerts (id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, level TEXT NOT NULL,
      time INTEGER NOT NULL, doc TEXT NOT NULL);
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`);
    check
      .prepare(`INSERT INTO alerts VALUES (?, ?, ?, ?, ?)`)
      .run('a1', alert.ruleId, alert.level, T, JSON.stringify(alert));
    check.prepare(`INSERT INTO meta VALUES ('revision', '7')`).run();
    check.close();
    const again = openSqliteStoreSync(file);
    expectAll(again);
    again.close();
    expect(tables(file)).toEqual(['batches', 'entity_timeline', 'entity_timeline_recent', 'events']);
  });

  it('answers a busy identity\u2019s timeline from both sides, newest first, each event once', () => {
    const s = openSqliteStoreSync(join(dir, 'busy.db'));
    // 5,000 events with N1 as destination, then 3 newer with N1 as source, one of them to itself.
    s.insertEvents(
      Array.from({ length: 5000 }, (_, i) => ev(i, { 'source.identity': D1, 'destination.identity': N1 })),
    );
    s.insertEvents([
      ev(6000, { 'source.identity': N1, 'destination.identity': D2 }),
      ev(6001, { 'source.identity': N1, 'destination.identity': N1 }),
      ev(6002, { 'source.identity': N1 }),
    ]);
    const at = (xs: EdgeEvent[]) => xs.map((e) => e['@timestamp'] - T);
    expect(at(s.timeline({ entity: 'identity', value: N1, limit: 5 }))).toEqual([
      6002, 6001, 6000, 4999, 4998,
    ]);
    expect(at(s.timeline({ entity: 'identity', value: N1, until: T + 6001, limit: 2 }))).toEqual([
      6000, 4999,
    ]);
    expect(s.timeline({ entity: 'identity', value: N1, limit: 10_000 })).toHaveLength(5003);
    s.close();
  });

  it('persists decision changes and restores the response state', () => {
    const file = join(dir, 'decisions.db');
    const s = openSqliteStoreSync(file);
    const d = decisionOf(1);
    s.saveDecisionChanges({
      revision: 1,
      upserts: [d, { ...d, id: 'd2', scope: { type: 'ip', value: '10.0.0.1' } }],
      removals: [],
      at: T,
      pending: [],
    });
    s.saveDecisionChanges({ revision: 2, upserts: [], removals: ['d2'], at: T + 5, pending: [] });
    s.close();
    const again = openSqliteStoreSync(file);
    const state = again.loadResponseState();
    expect(state.revision).toBe(2);
    expect(state.decisions).toEqual([d]);
    const history = again.decisionHistory();
    expect(history.find((h) => h.id === 'd2')?.removedAt).toBe(T + 5);
    again.close();
    const empty = openSqliteStoreSync(join(dir, 'empty.db'));
    expect(empty.loadResponseState()).toEqual({ revision: 0, decisions: [], pending: [] });
    empty.close();
  });

  it('keeps pending decisions one row each, writing only what changed', () => {
    const file = join(dir, 'pending.db');
    const s = openSqliteStoreSync(file);
    const pd = (i: number): PendingDecision => ({
      id: `p${i}`,
      scope: { type: 'ip', value: `10.0.0.${i}` },
      action: 'quarantine',
      ttlMs: 60_000,
      reason: 'r',
      alerts: [],
      playbook: 'pb',
      createdAt: T + i,
      why: 'blast-radius',
    });
    const list = [pd(1), pd(2), pd(3)];
    const save = (revision: number, pending: PendingDecision[]): void =>
      s.saveDecisionChanges({ revision, upserts: [], removals: [], at: T, pending });
    save(0, list);
    const raw = new Database(stateFileOf(file));
    const rows = (): unknown[] =>
      raw.prepare(`SELECT id FROM pending_decisions ORDER BY rowid`).pluck().all();
    expect(rows()).toEqual(['p1', 'p2', 'p3']);
    // A trigger counts the rows each save writes: one added and one removed, not the list.
    raw.exec(`CREATE TABLE writes (n INTEGER);
      CREATE TRIGGER w1 AFTER INSERT ON pending_decisions BEGIN INSERT INTO writes VALUES (1); END;
      CREATE TRIGGER w2 AFTER UPDATE ON pending_decisions BEGIN INSERT INTO writes VALUES (1); END;
      CREATE TRIGGER w3 AFTER DELETE ON pending_decisions BEGIN INSERT INTO writes VALUES (1); END;`);
    const writes = (): unknown => raw.prepare(`SELECT count(*) FROM writes`).pluck().get();
    save(0, [list[0]!, list[2]!, pd(4)]);
    expect(writes()).toBe(2);
    expect(rows()).toEqual(['p1', 'p3', 'p4']);
    // A changed object under a known id is rewritten; equal objects are not.
    save(1, [list[0]!, { ...list[2]!, reason: 'again' }, pd(4)]);
    expect(writes()).toBe(4); // p3 changed, and pd(4) is another object: compared by identity
    raw.close();
    s.close();
    const again = openSqliteStoreSync(file);
    expect(again.loadResponseState().pending.map((p) => [p.id, p.reason])).toEqual([
      ['p1', 'r'],
      ['p3', 'again'],
      ['p4', 'r'],
    ]);
    // Saving what was loaded writes nothing: the loaded objects are the ones compared.
    again.saveDecisionChanges({
      revision: 2,
      upserts: [],
      removals: [],
      at: T,
      pending: again.loadResponseState().pending,
    });
    again.close();
    const check = new Database(stateFileOf(file), { readonly: true });
    expect(check.prepare(`SELECT count(*) FROM writes`).pluck().get()).toBe(4);
    check.close();
  });

  it('retention deletes old events (and their timeline entries) in small batches', async () => {
    const s = openSqliteStoreSync(join(dir, 'retention.db'));
    const old = Array.from({ length: 1200 }, (_, i) =>
      ev(-10 * DAY + i, { 'source.identity': D1, 'source.ip': '10.0.0.1' }),
    );
    const fresh = Array.from({ length: 10 }, (_, i) => ev(i, { 'source.identity': D1 }));
    s.insertEvents([...old, ...fresh]);
    expect(s.pruneOlderThan(T - 7 * DAY, 500)).toBe(500);
    expect(await applyRetention(asyncStore(s), 7, T, 500)).toBe(700);
    expect(s.countEvents()).toBe(10);
    expect(s.timeline({ entity: 'source.identity', value: D1, limit: 10_000 })).toHaveLength(10);
    expect(s.timeline({ entity: 'source.ip', value: '10.0.0.1' })).toHaveLength(0);
    await expect(applyRetention(asyncStore(s), 0, T)).rejects.toThrow(TypeError);
    s.close();
  });

  it('retention deletes old alerts with their entity index entries', () => {
    const file = join(dir, 'retention-alerts.db');
    const s = openSqliteStoreSync(file);
    s.insertAlerts([
      alertOf('old', T - 10 * DAY, { 'source.identity': D1 }),
      alertOf('new', T, { 'source.identity': D1 }),
    ]);
    expect(s.pruneOlderThan(T - 7 * DAY, 100)).toBe(1);
    expect(s.alerts({ entity: D1 }).map((a) => a.id)).toEqual(['new']);
    s.close();
    const db = new Database(stateFileOf(file), { readonly: true });
    expect(db.prepare('SELECT count(*) AS n FROM alert_entity').get()).toEqual({ n: 1 });
    db.close();
  });

  it('reports a file it cannot open with ERR_SIEM_STORE', () => {
    expect(() => openSqliteStoreSync(join(dir, 'no', 'such', 'dir', 'x.db'))).toThrow(
      expect.objectContaining({ code: 'ERR_SIEM_STORE' }),
    );
  });

  it('refuses an events or state file of a newer schema (ERR_SIEM_STORE), and leaves it as it was', () => {
    const newer = (file: string): void => {
      const db = new Database(file);
      db.pragma('user_version = 99');
      db.close();
    };
    const refusal = (file: string): { code: unknown; cause: unknown } => {
      try {
        openSqliteStoreSync(file).close();
      } catch (err) {
        const e = err as { code?: unknown; cause?: unknown };
        return { code: e.code, cause: (e.cause as Error | undefined)?.message };
      }
      return { code: 'opened', cause: undefined };
    };
    const events = join(dir, 'newer-events.db');
    newer(events);
    expect(refusal(events)).toEqual({
      code: 'ERR_SIEM_STORE',
      cause: 'store schema 99 is newer than this SIEM (3)',
    });
    const stateOnly = join(dir, 'newer-state.db');
    openSqliteStoreSync(stateOnly).close();
    newer(stateFileOf(stateOnly));
    expect(refusal(stateOnly)).toEqual({
      code: 'ERR_SIEM_STORE',
      cause: 'state schema 99 is newer than this SIEM (1)',
    });
    const check = new Database(events, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(99);
    expect(check.prepare(`SELECT count(*) FROM sqlite_master`).pluck().get()).toBe(0);
    check.close();
  });
});
