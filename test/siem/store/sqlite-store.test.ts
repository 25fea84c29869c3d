// The SQLite event store on a real file: batched inserts, per-entity timelines, alerts,
// decisions that survive a reopen, and retention in small batches.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createEventIdFactory, stampEvent, validateEvent, type EdgeEvent } from '../../../common/events.js';
import type { Alert } from '../../../siem/correlate/index.js';
import { applyRetention, openSqliteStore } from '../../../siem/store/index.js';
import { tempDir } from '../../helpers/tmp.js';

const T = Date.UTC(2026, 0, 10);
const DAY = 86_400_000;
const nextId = createEventIdFactory(randomBytes);
const OBS = 'spiffe://factory.example/node/n1';

function ev(at: number, fields: Record<string, unknown>): EdgeEvent {
  const v = validateEvent({ '@timestamp': T + at, 'event.action': 'connection.accepted', ...fields });
  return stampEvent(v, { id: nextId(T + at), observer: OBS, ingested: T + at });
}

const D1 = 'spiffe://factory.example/device/d1';
const D2 = 'spiffe://factory.example/device/d2';
const N1 = 'spiffe://factory.example/node/n1';

describe('SQLite store', () => {
  const dir = tempDir();

  it('opens a WAL database file', () => {
    const file = join(dir, 'wal.db');
    const s = openSqliteStore(file);
    s.insertEvents([ev(0, {})]);
    s.close();
    const db = new Database(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
    expect(existsSync(file)).toBe(true);
  });

  it('answers per-entity timelines, newest first, within a time range', () => {
    const s = openSqliteStore(join(dir, 'timeline.db'));
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
    const s = openSqliteStore(join(dir, 'atomic.db'));
    const good = ev(0, {});
    const bad = validateEvent({ '@timestamp': T, 'event.action': 'x' });
    expect(() => s.insertEvents([good, bad])).toThrow(TypeError);
    expect(s.countEvents()).toBe(0);
    s.close();
  });

  it('keeps acknowledged events across a reopen', () => {
    const file = join(dir, 'durable.db');
    const s = openSqliteStore(file);
    s.insertEvents(Array.from({ length: 500 }, (_, i) => ev(i, { 'source.ip': '10.0.0.9' })));
    s.close();
    const again = openSqliteStore(file);
    expect(again.countEvents()).toBe(500);
    expect(again.timeline({ entity: 'source.ip', value: '10.0.0.9', limit: 10_000 })).toHaveLength(500);
    again.close();
  });

  it('stores alerts and lists them newest first, by rule', () => {
    const s = openSqliteStore(join(dir, 'alerts.db'));
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

  it('persists decision changes and restores the response state', () => {
    const file = join(dir, 'decisions.db');
    const s = openSqliteStore(file);
    const d = {
      id: 'd1',
      revision: 1,
      scope: { type: 'identity' as const, value: D1 },
      action: 'quarantine' as const,
      reason: 'r',
      createdAt: T,
      expiresAt: T + 3_600_000,
      alerts: ['a1'],
    };
    s.saveDecisionChanges({
      revision: 1,
      upserts: [d, { ...d, id: 'd2', scope: { type: 'ip', value: '10.0.0.1' } }],
      removals: [],
      at: T,
      pending: [],
    });
    s.saveDecisionChanges({ revision: 2, upserts: [], removals: ['d2'], at: T + 5, pending: [] });
    s.close();
    const again = openSqliteStore(file);
    const state = again.loadResponseState();
    expect(state.revision).toBe(2);
    expect(state.decisions).toEqual([d]);
    const history = again.decisionHistory();
    expect(history.find((h) => h.id === 'd2')?.removedAt).toBe(T + 5);
    again.close();
    const empty = openSqliteStore(join(dir, 'empty.db'));
    expect(empty.loadResponseState()).toEqual({ revision: 0, decisions: [], pending: [] });
    empty.close();
  });

  it('retention deletes old events (and their timeline entries) in small batches', async () => {
    const s = openSqliteStore(join(dir, 'retention.db'));
    const old = Array.from({ length: 1200 }, (_, i) =>
      ev(-10 * DAY + i, { 'source.identity': D1, 'source.ip': '10.0.0.1' }),
    );
    const fresh = Array.from({ length: 10 }, (_, i) => ev(i, { 'source.identity': D1 }));
    s.insertEvents([...old, ...fresh]);
    expect(s.pruneOlderThan(T - 7 * DAY, 500)).toBe(500);
    expect(await applyRetention(s, 7, T, 500)).toBe(700);
    expect(s.countEvents()).toBe(10);
    expect(s.timeline({ entity: 'source.identity', value: D1, limit: 10_000 })).toHaveLength(10);
    expect(s.timeline({ entity: 'source.ip', value: '10.0.0.1' })).toHaveLength(0);
    await expect(applyRetention(s, 0, T)).rejects.toThrow(TypeError);
    s.close();
  });

  it('reports a file it cannot open with ERR_SIEM_STORE', () => {
    expect(() => openSqliteStore(join(dir, 'no', 'such', 'dir', 'x.db'))).toThrow(
      expect.objectContaining({ code: 'ERR_SIEM_STORE' }),
    );
  });
});
