// Events on PostgreSQL: one INSERT ... SELECT FROM unnest(...) per batch (every row of the batch in
// one statement), a group of batches in one transaction (committed, so durable, before the
// promise resolves), day partitions made ahead and on demand, and retention by dropping whole
// partitions past the cutoff plus row deletes in the partition that holds the cutoff (and in the
// default one).
import type pg from 'pg';
import { storeError, type PostgresUrl } from '../../../common/postgres.js';
import {
  checkRows,
  decodeText,
  NUM_COLUMNS,
  TEXT_COLUMNS,
  type EventRows,
  type KeyResults,
} from '../event-rows.js';
import { BATCH_KEYS_PER_REPORTER } from '../store.js';
import { DAY_MS, dayOfPartition, partitionName } from './schema.js';

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

/** Day partitions are made on demand for events at most this many days old; older ones go to the default partition. */
export const PARTITION_PAST_DAYS = 7;
/** Day partitions made ahead of the current day (so that midnight never waits for DDL). */
export const PARTITION_AHEAD_DAYS = 2;

/** SQLSTATE check_violation: the default partition holds rows of the day being made. */
const CHECK_VIOLATION = '23514';

const INSERT_SQL = `INSERT INTO siem_events
  (id, ts, action, source_identity, destination_identity, source_ip, serial, observer, doc)
  SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                       $7::text[], $8::text[], $9::text[])`;

// Sorted by identity, so two replicas updating the same reporters lock their rows in one order.
const REPORTERS_SQL = `INSERT INTO siem_reporters (identity, last_seen)
  SELECT o, max(t) FROM unnest($1::text[], $2::bigint[]) AS x (o, t) GROUP BY o ORDER BY o
  ON CONFLICT (identity) DO UPDATE SET last_seen = greatest(siem_reporters.last_seen, excluded.last_seen)`;

// In one order (PostgreSQL's sort), so that two replicas inserting overlapping keys take their
// locks in the same order and never deadlock. A key another transaction inserted and has not
// committed yet makes this insert wait for it: then it is a conflict (committed) or ours (rolled back).
const KEYS_SQL = `INSERT INTO siem_batches (reporter, id, at, accepted)
  SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[]) AS k (reporter, id, at, accepted)
  ORDER BY reporter, id
  ON CONFLICT DO NOTHING RETURNING reporter, id`;

const STORED_KEYS_SQL = `SELECT b.reporter, b.id, b.accepted FROM siem_batches b
  JOIN unnest($1::text[], $2::text[]) AS k (reporter, id) ON b.reporter = k.reporter AND b.id = k.id`;

/** Keys past their retention, then those beyond the newest BATCH_KEYS_PER_REPORTER of each given reporter. */
const PRUNE_OLD_KEYS_SQL = `DELETE FROM siem_batches WHERE at < $1`;
const PRUNE_MANY_KEYS_SQL = `DELETE FROM siem_batches b USING unnest($1::text[]) AS r (reporter)
  WHERE b.reporter = r.reporter AND b.at < (
    SELECT x.at FROM siem_batches x WHERE x.reporter = r.reporter ORDER BY x.at DESC LIMIT 1 OFFSET $2)`;

/** Prunes the batch keys (idempotent: any replica, any time). */
export async function pruneBatchKeys(
  db: Queryable,
  before: number,
  reporters: readonly string[],
): Promise<void> {
  await db.query(PRUNE_OLD_KEYS_SQL, [before]);
  if (reporters.length > 0) await db.query(PRUNE_MANY_KEYS_SQL, [[...reporters], BATCH_KEYS_PER_REPORTER]);
}

const keyName = (g: EventRows): string | undefined =>
  g.key === undefined ? undefined : `${g.key.reporter}\n${g.key.id}`;

/** The columns of a group of batches, as the nine arrays of INSERT_SQL, and the reporters' newest times. */
export function eventColumns(groups: readonly EventRows[]): {
  columns: unknown[][];
  reporters: Map<string, number>;
  days: Set<number>;
} {
  const cols: unknown[][] = Array.from({ length: 9 }, () => []);
  const reporters = new Map<string, number>();
  const days = new Set<number>();
  for (const g of groups) {
    checkRows(g);
    const text = decodeText(g);
    for (let i = 0; i < g.count; i++) {
      const t = i * TEXT_COLUMNS;
      const ts = g.num[i * NUM_COLUMNS] as number;
      const id = text[t];
      const action = text[t + 1];
      const doc = text[t + 7];
      if (id == null || action == null || doc == null || !Number.isSafeInteger(ts))
        throw new TypeError('malformed event rows');
      cols[0]?.push(id);
      cols[1]?.push(ts);
      cols[2]?.push(action);
      for (let c = 2; c <= 6; c++) cols[c + 1]?.push(text[t + c] ?? null);
      cols[8]?.push(doc);
      const observer = text[t + 6];
      if (observer != null) reporters.set(observer, Math.max(reporters.get(observer) ?? ts, ts));
      days.add(Math.floor(ts / DAY_MS));
    }
  }
  return { columns: cols, reporters, days };
}

/** The partitions of siem_events: day partitions by their day, and whether the default exists. */
export async function listPartitions(db: Queryable): Promise<Map<number, string>> {
  const r = await db.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'siem_events'::regclass`,
  );
  const out = new Map<number, string>();
  for (const { name } of r.rows) {
    const day = dayOfPartition(name);
    if (day !== undefined) out.set(day, name);
  }
  return out;
}

/**
 * Makes and drops day partitions for one process. Replicas share the partitions: each one makes
 * those it needs under a transaction-scoped advisory lock, so two never race on one name.
 */
export class Partitions {
  private readonly pool: pg.Pool;
  private readonly url: PostgresUrl;
  private readonly now: () => number;
  /** Days known to have a partition (or known to be taken by the default one). */
  private readonly known = new Set<number>();

  constructor(pool: pg.Pool, url: PostgresUrl, now: () => number) {
    this.pool = pool;
    this.url = url;
    this.now = now;
  }

  /** Learns the existing partitions and makes today's and the next days'. */
  async start(): Promise<void> {
    for (const day of (await listPartitions(this.pool)).keys()) this.known.add(day);
    await this.ensure(this.aheadDays());
  }

  private aheadDays(): number[] {
    const today = Math.floor(this.now() / DAY_MS);
    return Array.from({ length: PARTITION_AHEAD_DAYS + 1 }, (_, i) => today + i);
  }

  /** Makes the partitions of these days that are missing (days too old are left to the default one). */
  async ensure(days: Iterable<number>): Promise<void> {
    const today = Math.floor(this.now() / DAY_MS);
    const missing = [...days].filter(
      (d) => !this.known.has(d) && d >= today - PARTITION_PAST_DAYS && d <= today + PARTITION_AHEAD_DAYS,
    );
    if (missing.length === 0) return;
    let c: pg.PoolClient;
    try {
      c = await this.pool.connect();
    } catch (err) {
      throw storeError(this.url, err);
    }
    try {
      for (const day of missing.sort((a, b) => a - b)) {
        await c.query('BEGIN');
        try {
          await c.query(`SELECT pg_advisory_xact_lock(hashtext('edgeward.siem.partitions'))`);
          await c.query(
            `CREATE TABLE IF NOT EXISTS ${partitionName(day)} PARTITION OF siem_events
             FOR VALUES FROM (${day * DAY_MS}) TO (${(day + 1) * DAY_MS})`,
          );
          await c.query('COMMIT');
        } catch (err) {
          await c.query('ROLLBACK').catch(() => undefined);
          // The default partition already took rows of that day (a replica whose clock ran
          // behind): the day stays there, and retention deletes its rows one by one.
          if ((err as { code?: unknown }).code !== CHECK_VIOLATION) throw storeError(this.url, err);
        }
        this.known.add(day);
      }
    } finally {
      c.release();
    }
  }

  /** Forgets a dropped partition (another replica may have dropped it too: inserts then go to the default one). */
  forget(day: number): void {
    this.known.delete(day);
  }

  /** Keeps the partitions ahead made as days go by. */
  tick(): Promise<void> {
    return this.ensure(this.aheadDays());
  }
}

/**
 * Inserts a group of batches in one transaction on `c` (the events' days must have partitions
 * already): first the keys of the batches that have one, then the events of every batch whose key
 * was not stored yet. Returns, per batch, -1 (stored now) or the events stored under its key before.
 */
export async function insertEventGroup(c: Queryable, all: readonly EventRows[]): Promise<KeyResults> {
  for (const g of all) checkRows(g);
  const results: KeyResults = all.map(() => -1);
  // A key twice in one group (a retry queued behind its first copy): the first copy counts.
  const first = new Map<string, number>();
  const sameAs = new Map<number, number>();
  const keyed: number[] = [];
  all.forEach((g, i) => {
    const name = keyName(g);
    if (name === undefined) return;
    const f = first.get(name);
    if (f !== undefined) sameAs.set(i, f);
    else {
      first.set(name, i);
      keyed.push(i);
    }
  });
  if (keyed.length === 0 && all.every((g) => g.count === 0)) return results;
  await c.query('BEGIN');
  try {
    if (keyed.length > 0) {
      const ks = keyed.map((i) => (all[i] as EventRows).key as NonNullable<EventRows['key']>);
      const r = await c.query<{ reporter: string; id: string }>(KEYS_SQL, [
        ks.map((k) => k.reporter),
        ks.map((k) => k.id),
        ks.map((k) => k.at),
        keyed.map((i) => (all[i] as EventRows).count),
      ]);
      const inserted = new Set(r.rows.map((x) => `${x.reporter}\n${x.id}`));
      const old = keyed.filter((i) => !inserted.has(keyName(all[i] as EventRows) as string));
      if (old.length > 0) {
        const oldKeys = old.map((i) => (all[i] as EventRows).key as NonNullable<EventRows['key']>);
        const s = await c.query<{ reporter: string; id: string; accepted: number }>(STORED_KEYS_SQL, [
          oldKeys.map((k) => k.reporter),
          oldKeys.map((k) => k.id),
        ]);
        const stored = new Map(s.rows.map((x) => [`${x.reporter}\n${x.id}`, x.accepted]));
        for (const i of old) {
          const g = all[i] as EventRows;
          results[i] = stored.get(keyName(g) as string) ?? g.count;
        }
      }
    }
    for (const [i, f] of sameAs) {
      const r = results[f] as number;
      results[i] = r < 0 ? (all[f] as EventRows).count : r;
    }
    const { columns, reporters } = eventColumns(all.filter((_, i) => results[i] === -1));
    if ((columns[0]?.length ?? 0) > 0) await c.query(INSERT_SQL, columns);
    if (reporters.size > 0) {
      const sorted = [...reporters].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      await c.query(REPORTERS_SQL, [sorted.map((r) => r[0]), sorted.map((r) => r[1])]);
    }
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  return results;
}

/**
 * Deletes events older than `cutoff`: whole day partitions that end at or before it are dropped
 * (counted first), then at most `batch` rows of the partitions that still hold older rows (the one
 * the cutoff falls in, and the default one). Returns how many events went.
 */
export async function pruneEvents(
  pool: pg.Pool,
  partitions: Partitions,
  cutoff: number,
  batch: number,
): Promise<number> {
  let deleted = 0;
  const all = await listPartitions(pool);
  for (const [day, name] of [...all].sort((a, b) => a[0] - b[0])) {
    if ((day + 1) * DAY_MS > cutoff) continue;
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await c.query(`SELECT pg_advisory_xact_lock(hashtext('edgeward.siem.partitions'))`);
      // Another replica may have dropped it meanwhile.
      const gone = await c.query(`SELECT to_regclass($1) IS NULL AS gone`, [name]);
      if ((gone.rows[0] as { gone: boolean }).gone) {
        await c.query('COMMIT');
      } else {
        const r = await c.query<{ n: number }>(`SELECT count(*)::bigint AS n FROM ${name}`);
        await c.query(`DROP TABLE ${name}`);
        await c.query('COMMIT');
        deleted += r.rows[0]?.n ?? 0;
      }
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
    partitions.forget(day);
  }
  const edge = all.get(Math.floor(cutoff / DAY_MS));
  for (const name of [edge, 'siem_events_default']) {
    if (name === undefined || deleted >= batch) continue;
    const r = await pool.query(
      `DELETE FROM ${name} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${name} WHERE ts < $1 LIMIT $2))`,
      [cutoff, batch - deleted],
    );
    deleted += r.rowCount ?? 0;
  }
  if (deleted > 0) await pool.query(`DELETE FROM siem_reporters WHERE last_seen < $1`, [cutoff]);
  return deleted;
}
