// PostgreSQL internals of the SIEM store (the behaviours every adapter shares are in the contract
// suite): day partitions made ahead and on demand, old events in the default partition,
// retention by dropping whole partitions, one revision for two replicas, a newer schema refused.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EdgeEvent } from '../../../common/events.js';
import { openPostgresSiem, type OpenedPostgres } from '../../../siem/store/index.js';
import { listPartitions } from '../../../siem/store/pg/events.js';
import { DAY_MS, partitionName, SIEM_MIGRATIONS } from '../../../siem/store/pg/schema.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres.js';

const NOW = Date.UTC(2026, 11, 7, 12, 0, 0);
const TD = 'spiffe://pg.example';
let n = 0;
function ev(ts: number, over: Partial<Record<string, unknown>> = {}): EdgeEvent {
  n++;
  return {
    '@timestamp': ts,
    'event.action': 'tls.handshake.failure',
    'event.id': `e${String(n).padStart(8, '0')}`,
    'source.identity': `${TD}/node/n${n % 3}`,
    'destination.identity': `${TD}/node/gw`,
    'source.ip': `10.0.0.${n % 5}`,
    'observer.identity': `${TD}/node/gw`,
    ...over,
  };
}

describe('SIEM store on PostgreSQL', () => {
  let db: TestDatabase;
  let a: OpenedPostgres;
  let b: OpenedPostgres;
  beforeAll(async () => {
    db = await createTestDatabase();
    a = await openPostgresSiem(db.url, { now: () => NOW });
    b = await openPostgresSiem(db.url, { now: () => NOW });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.drop();
  });

  it('makes the partitions of today and the next two days on open, once for two replicas', async () => {
    const parts = await listPartitions(a.pool);
    const today = Math.floor(NOW / DAY_MS);
    expect([...parts.keys()].sort()).toEqual([today, today + 1, today + 2]);
    expect(parts.get(today)).toBe('siem_events_d20261207');
  });

  it('routes events to day partitions, made on demand for recent days, older ones to the default', async () => {
    const day = Math.floor(NOW / DAY_MS);
    await a.writer.write([
      a.writer.prepare([ev(NOW - 3 * DAY_MS), ev(NOW - 1000), ev(NOW - 400 * DAY_MS), ev(NOW)]),
    ]);
    const parts = await listPartitions(a.pool);
    expect(parts.has(day - 3)).toBe(true);
    expect(parts.has(day - 400)).toBe(false);
    const where = await a.pool.query<{ t: string; n: number }>(
      `SELECT tableoid::regclass::text AS t, count(*)::bigint AS n FROM siem_events GROUP BY 1 ORDER BY 1`,
    );
    expect(where.rows).toEqual([
      { t: 'siem_events_d20261204', n: 1 },
      { t: 'siem_events_d20261207', n: 2 },
      { t: 'siem_events_default', n: 1 },
    ]);
    // What one replica wrote, the other reads.
    expect(await b.store.countEvents()).toBe(4);
  });

  it('serves the timeline newest first across partitions, an event on both sides once', async () => {
    const id = `${TD}/node/both`;
    await b.store.insertEvents([
      ev(NOW - 2 * DAY_MS, { 'source.identity': id }),
      ev(NOW - 5000, { 'source.identity': id, 'destination.identity': id }),
      ev(NOW - 500 * DAY_MS, { 'destination.identity': id }),
    ]);
    const t = await a.store.timeline({ entity: 'identity', value: id });
    expect(t.map((e) => e['@timestamp'])).toEqual([NOW - 5000, NOW - 2 * DAY_MS, NOW - 500 * DAY_MS]);
    const limited = await a.store.timeline({ entity: 'identity', value: id, limit: 1 });
    expect(limited).toHaveLength(1);
    const bySource = await a.store.timeline({
      entity: 'source.identity',
      value: id,
      since: NOW - 3 * DAY_MS,
    });
    expect(bySource.map((e) => e['@timestamp'])).toEqual([NOW - 5000, NOW - 2 * DAY_MS]);
  });

  it('retention drops whole partitions past the cutoff and deletes rows in the one it falls in', async () => {
    const cutoff = NOW - 2 * DAY_MS - 60_000;
    // In the partition the cutoff falls in, before it: deleted as a row.
    await a.store.insertEvents([ev(cutoff - 60_000)]);
    const before = await a.store.countEvents();
    const older = (
      await a.pool.query<{ n: number }>('SELECT count(*)::bigint AS n FROM siem_events WHERE ts < $1', [
        cutoff,
      ])
    ).rows[0]?.n;
    expect(older).toBe(4);
    let deleted = 0;
    for (;;) {
      const k = await a.store.pruneOlderThan(cutoff, 1);
      deleted += k;
      if (k < 1) break;
    }
    expect(deleted).toBe(4);
    expect(await b.store.countEvents()).toBe(before - 4);
    const parts = await listPartitions(a.pool);
    expect([...parts.values()]).not.toContain(partitionName(Math.floor((NOW - 3 * DAY_MS) / DAY_MS)));
    // The partition the cutoff falls in keeps its newer rows.
    expect([...parts.values()]).toContain(partitionName(Math.floor(cutoff / DAY_MS)));
    // A later event of a dropped day goes to the default partition, not into an error.
    await b.writer.write([b.writer.prepare([ev(NOW - 3 * DAY_MS)])]);
    expect(await a.store.countEvents()).toBe(before - 3);
  });

  it('stores one revision for two replicas: the second save of a revision is refused', async () => {
    const d = (id: string, revision: number) => ({
      id,
      revision,
      scope: { type: 'identity' as const, value: `${TD}/node/${id}` },
      action: 'quarantine' as const,
      reason: 'test',
      createdAt: NOW,
      expiresAt: NOW + 3_600_000,
    });
    const save = (s: OpenedPostgres, id: string, revision: number) =>
      s.store.saveDecisionChanges({
        revision,
        upserts: [d(id, revision) as never],
        removals: [],
        at: NOW,
        pending: [],
      });
    const both = await Promise.allSettled([save(a, 'x', 1), save(b, 'y', 1)]);
    expect(both.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = both.find((r) => r.status === 'rejected');
    expect((refused as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_SIEM_REVISION_CONFLICT' });
    expect(await b.store.revision()).toBe(1);
    const state = await b.store.loadResponseState();
    expect(state.revision).toBe(1);
    expect(state.decisions).toHaveLength(1);
  });

  it('refuses to open a database migrated by a newer build, naming both versions', async () => {
    await a.pool.query(
      `INSERT INTO schema_migrations (component, version, name) VALUES ('siem', 99, 'from the future')`,
    );
    try {
      await expect(openPostgresSiem(db.url)).rejects.toMatchObject({
        code: 'ERR_STORE_SCHEMA_NEWER',
        message: expect.stringMatching(
          new RegExp(`version 99.*up to ${SIEM_MIGRATIONS.length}\\b`),
        ) as unknown,
      });
    } finally {
      await a.pool.query(`DELETE FROM schema_migrations WHERE component = 'siem' AND version = 99`);
    }
  });

  it('answers ERR_STORE_UNAVAILABLE, without a password, when PostgreSQL is not there', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
    await c.connect();
    await c.end();
    await expect(openPostgresSiem('postgres://edgeward@127.0.0.1:1/siem')).rejects.toMatchObject({
      code: 'ERR_STORE_UNAVAILABLE',
      message: expect.stringContaining('postgres://edgeward@127.0.0.1:1/siem') as unknown,
    });
    await expect(openPostgresSiem('postgres://edgeward:hunter2@127.0.0.1/siem')).rejects.toMatchObject({
      code: 'ERR_SECRET_ARGV',
      message: expect.not.stringContaining('hunter2') as unknown,
    });
  });
});
