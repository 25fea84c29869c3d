// The PostgreSQL adapter of the SIEM store, for SIEM replicas sharing one database: alerts with
// their triage, decisions under one revision (siem_revision, locked by every save), pending
// decisions, and the event reads (timelines by entity index, an event by id, scans for the
// inventory). Event inserts go through events.ts, for the store and the event writer alike.
import type pg from 'pg';
import type { Decision } from '../../../common/decisions.js';
import { EdgewardError } from '../../../common/errors.js';
import { withVerifiedKind, type EdgeEvent } from '../../../common/events.js';
import type { PostgresUrl } from '../../../common/postgres.js';
import type { Alert } from '../../correlate/index.js';
import type { PendingDecision, ResponseState } from '../../playbooks/index.js';
import { encodeEventRows } from '../event-rows.js';
import {
  checkCountQuery,
  MAX_COUNT_RULES,
  type AlertQuery,
  type AlertStatus,
  type CountQuery,
  type DecisionChanges,
  type SiemStore,
  type TimelineQuery,
} from '../store.js';
import type { Partitions } from './events.js';
import { PgRunner } from './side.js';
import type { KeyResults } from '../event-rows.js';
import { insertEventGroup, pruneBatchKeys, pruneEvents, eventColumns } from './events.js';

/** The timeline entities and their columns (the same entities as the SQLite adapter's). */
const COLUMNS = {
  'source.identity': ['source_identity'],
  'destination.identity': ['destination_identity'],
  identity: ['source_identity', 'destination_identity'],
  'source.ip': ['source_ip'],
  serial: ['serial'],
} as const;

const limitOf = (n: number | undefined): number => Math.max(1, Math.min(10_000, Math.floor(n ?? 100)));

/** The entities an alert is about: its group-by values and the source identity of its trigger. */
function alertEntities(a: Alert): string[] {
  const out = new Set<string>();
  for (const v of Object.values(a.groupBy ?? {})) if (typeof v === 'string' && v !== '') out.add(v);
  const si = a.trigger?.['source.identity'];
  if (typeof si === 'string' && si !== '') out.add(si);
  return [...out];
}

const storedEvent = (doc: string): EdgeEvent => withVerifiedKind(JSON.parse(doc) as EdgeEvent);

/** The timeline query of one or two entity columns, newest first, each side cut to the limit. */
function timelineSql(columns: readonly string[]): string {
  const side = (col: string): string =>
    `(SELECT seq, ts, doc FROM siem_events WHERE ${col} = $1 AND ts >= $2 AND ts < $3
      ORDER BY ts DESC, seq DESC LIMIT $4)`;
  if (columns.length === 1) return side(columns[0] as string);
  // An event whose source and destination are both the entity is found on each side: kept once.
  return `SELECT DISTINCT ON (ts, seq) seq, ts, doc FROM (${columns.map(side).join(' UNION ALL ')}) x
          ORDER BY ts DESC, seq DESC LIMIT $4`;
}

export interface PgSiemStoreDeps {
  readonly pool: pg.Pool;
  readonly url: PostgresUrl;
  readonly partitions: Partitions;
  /** Closes what the store runs on (the factory's pool, once every store of it is done). */
  readonly close: () => Promise<void>;
}

export class PostgresSiemStore implements SiemStore {
  private readonly pool: pg.Pool;
  private readonly partitions: Partitions;
  private readonly db: PgRunner;

  constructor(d: PgSiemStoreDeps) {
    this.pool = d.pool;
    this.partitions = d.partitions;
    this.db = new PgRunner(d.pool, d.url);
    this.closeAll = d.close;
  }

  private readonly closeAll: () => Promise<void>;

  close(): Promise<void> {
    return this.closeAll();
  }

  private fail(err: unknown, what: string): unknown {
    return this.db.fail(err, what);
  }

  private q<R extends pg.QueryResultRow>(what: string, text: string, values: unknown[] = []) {
    return this.db.q<R>(what, text, values);
  }

  private tx<T>(what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.db.tx(what, fn);
  }

  /** Inserts rows already encoded (the event writer's path), in one transaction. */
  async insertRows(groups: Parameters<typeof insertEventGroup>[1]): Promise<KeyResults> {
    const { days } = eventColumns(groups);
    let c: pg.PoolClient;
    try {
      await this.partitions.ensure(days);
      c = await this.pool.connect();
    } catch (err) {
      throw this.fail(err, 'insert');
    }
    let broken: Error | undefined;
    try {
      return await insertEventGroup(c, groups);
    } catch (err) {
      // A connection that failed mid-transaction is not given back to the pool.
      broken = err instanceof Error ? err : new Error(String(err));
      throw this.fail(err, 'insert');
    } finally {
      c.release(broken);
    }
  }

  /** Prunes the batch keys stored before `before`, and beyond the newest of each of `reporters`. */
  async pruneBatchKeys(before: number, reporters: readonly string[]): Promise<void> {
    try {
      await pruneBatchKeys(this.pool, before, reporters);
    } catch (err) {
      throw this.fail(err, 'prune batch keys');
    }
  }

  async insertEvents(events: readonly EdgeEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.insertRows([encodeEventRows(events)]);
  }

  async insertAlerts(alerts: readonly Alert[]): Promise<void> {
    if (alerts.length === 0) return;
    await this.tx('insert alerts', async (c) => {
      for (const a of alerts) {
        const r = await c.query<{ seq: number }>(
          `INSERT INTO siem_alerts (id, rule_id, level, time, doc) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (id) DO NOTHING RETURNING seq`,
          [a.id, a.ruleId, a.level, a.time, JSON.stringify(a)],
        );
        const seq = r.rows[0]?.seq;
        // A re-fed alert: stored once, indexed once.
        if (seq === undefined) continue;
        const values = alertEntities(a);
        if (values.length > 0)
          await c.query(
            `INSERT INTO siem_alert_entity (value, time, alert) SELECT v, $2, $3 FROM unnest($1::text[]) v
             ON CONFLICT DO NOTHING`,
            [values, a.time, seq],
          );
      }
    });
  }

  async timeline(q: TimelineQuery): Promise<EdgeEvent[]> {
    if (!Object.hasOwn(COLUMNS, q.entity)) throw new TypeError(`no timeline for ${String(q.entity)}`);
    if (typeof q.value !== 'string' || q.value.length > 2048) return [];
    const r = await this.q<{ doc: string }>('timeline', timelineSql(COLUMNS[q.entity]), [
      q.value,
      q.since ?? 0,
      q.until ?? Number.MAX_SAFE_INTEGER,
      limitOf(q.limit),
    ]);
    return r.rows.map((x) => storedEvent(x.doc));
  }

  async event(id: string): Promise<EdgeEvent | undefined> {
    if (typeof id !== 'string' || id.length > 256) return undefined;
    const r = await this.q<{ doc: string }>(
      'read event',
      'SELECT doc FROM siem_events WHERE id = $1 LIMIT 1',
      [id],
    );
    const row = r.rows[0];
    return row === undefined ? undefined : storedEvent(row.doc);
  }

  async scanEvents(
    q: { actions: readonly string[]; observer: string },
    fn: (e: EdgeEvent) => void | Promise<void>,
  ): Promise<void> {
    for (let after = 0; ;) {
      const r = await this.q<{ seq: number; doc: string }>(
        'scan events',
        `SELECT seq, doc FROM siem_events WHERE observer = $1 AND seq > $2 AND action = ANY($3::text[])
         ORDER BY seq LIMIT 1000`,
        [q.observer, after, [...q.actions]],
      );
      for (const row of r.rows) await fn(storedEvent(row.doc));
      const last = r.rows.at(-1);
      if (last === undefined || r.rows.length < 1000) return;
      after = last.seq;
    }
  }

  async reporters(): Promise<{ identity: string; lastSeen: number }[]> {
    const r = await this.q<{ identity: string; last_seen: number }>(
      'reporters',
      'SELECT identity, last_seen FROM siem_reporters ORDER BY identity',
    );
    return r.rows.map((x) => ({ identity: x.identity, lastSeen: x.last_seen }));
  }

  async alerts(q: AlertQuery = {}): Promise<Alert[]> {
    const entity = q.entity;
    if (entity !== undefined && (typeof entity !== 'string' || entity.length > 2048)) return [];
    const since = Number.isFinite(q.since) ? (q.since as number) : 0;
    const before = Number.isFinite(q.before) ? (q.before as number) : Number.MAX_SAFE_INTEGER;
    const args: unknown[] = [since, before, limitOf(q.limit)];
    let sql: string;
    if (entity !== undefined) {
      args.push(entity);
      const rule = q.ruleId !== undefined ? `AND a.rule_id = $${args.push(q.ruleId)}` : '';
      sql = `SELECT a.doc FROM siem_alert_entity x JOIN siem_alerts a ON a.seq = x.alert
             WHERE x.value = $4 AND x.time >= $1 AND x.time < $2 ${rule}
             ORDER BY x.time DESC, x.alert DESC LIMIT $3`;
    } else {
      const rule = q.ruleId !== undefined ? `rule_id = $${args.push(q.ruleId)} AND` : '';
      sql = `SELECT doc FROM siem_alerts WHERE ${rule} time >= $1 AND time < $2
             ORDER BY time DESC, seq DESC LIMIT $3`;
    }
    const r = await this.q<{ doc: string }>('alerts', sql, args);
    return r.rows.map((x) => JSON.parse(x.doc) as Alert);
  }

  async setAlertStatus(id: string, status: AlertStatus): Promise<void> {
    await this.q(
      'set alert status',
      `INSERT INTO siem_alert_status (id, status, by_user, at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, by_user = excluded.by_user, at = excluded.at`,
      [id, status.status, status.by, status.at],
    );
  }

  async alertStatuses(ids: readonly string[]): Promise<Map<string, AlertStatus>> {
    const out = new Map<string, AlertStatus>();
    if (ids.length === 0) return out;
    const r = await this.q<{ id: string; status: AlertStatus['status']; by_user: string; at: number }>(
      'alert statuses',
      'SELECT id, status, by_user, at FROM siem_alert_status WHERE id = ANY($1::text[])',
      [[...ids]],
    );
    for (const x of r.rows) out.set(x.id, { status: x.status, by: x.by_user, at: x.at });
    return out;
  }

  async countEvents(): Promise<number> {
    const r = await this.q<{ n: number }>('count events', 'SELECT count(*)::bigint AS n FROM siem_events');
    return r.rows[0]?.n ?? 0;
  }

  async eventCounts(q: CountQuery): Promise<{ bucket: number; count: number }[]> {
    checkCountQuery(q);
    const r = await this.q<{ bucket: number; count: number }>(
      'count events',
      `SELECT ts - ts % $1 AS bucket, count(*)::bigint AS count FROM siem_events
       WHERE ts >= $2 AND ts < $3 GROUP BY bucket ORDER BY bucket`,
      [q.bucketMs, q.since, q.until],
    );
    return r.rows;
  }

  async alertCounts(q: CountQuery): Promise<{ rule: string; bucket: number; count: number }[]> {
    checkCountQuery(q);
    const r = await this.q<{ rule: string; bucket: number; count: number }>(
      'count alerts',
      `WITH top AS (
         SELECT rule_id FROM siem_alerts WHERE time >= $2 AND time < $3
         GROUP BY rule_id ORDER BY count(*) DESC, rule_id LIMIT $4)
       SELECT a.rule_id AS rule, a.time - a.time % $1 AS bucket, count(*)::bigint AS count
       FROM siem_alerts a JOIN top USING (rule_id)
       WHERE a.time >= $2 AND a.time < $3 GROUP BY a.rule_id, bucket ORDER BY a.rule_id, bucket`,
      [q.bucketMs, q.since, q.until, MAX_COUNT_RULES],
    );
    return r.rows;
  }

  /** The revision every replica shares (what a replica compares its own against). */
  async revision(): Promise<number> {
    const r = await this.q<{ revision: number }>('read revision', 'SELECT revision FROM siem_revision');
    return r.rows[0]?.revision ?? 0;
  }

  /**
   * Writes one revision's changes; refused (ERR_SIEM_REVISION_CONFLICT) unless it moves the shared
   * revision forward: another replica stored this revision first, and this one must reload.
   * A save of the pending list alone keeps the revision and is refused when it is behind.
   */
  async saveDecisionChanges(ch: DecisionChanges): Promise<void> {
    await this.tx('save decisions', async (c) => {
      const head = await c.query<{ revision: number }>('SELECT revision FROM siem_revision FOR UPDATE');
      const stored = head.rows[0]?.revision ?? 0;
      const moves = ch.upserts.length > 0 || ch.removals.length > 0;
      if (moves ? ch.revision <= stored : ch.revision < stored)
        throw new EdgewardError(
          'ERR_SIEM_REVISION_CONFLICT',
          `decision revision ${ch.revision} refused: the store is at ${stored}`,
          { detail: { revision: ch.revision, stored } },
        );
      for (const d of ch.upserts)
        await c.query(
          `INSERT INTO siem_decisions (id, revision, scope_type, scope_value, action, created_at, expires_at, removed_at, doc)
           VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)
           ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, expires_at = excluded.expires_at,
             removed_at = NULL, doc = excluded.doc`,
          [
            d.id,
            d.revision,
            d.scope.type,
            d.scope.value,
            d.action,
            d.createdAt,
            d.expiresAt,
            JSON.stringify(d),
          ],
        );
      if (ch.removals.length > 0)
        await c.query(
          'UPDATE siem_decisions SET removed_at = $1 WHERE id = ANY($2::text[]) AND removed_at IS NULL',
          [ch.at, [...ch.removals]],
        );
      await c.query('UPDATE siem_revision SET revision = $1', [Math.max(stored, ch.revision)]);
      // The pending list is small (capped by the response engine): replaced as a whole.
      await c.query('DELETE FROM siem_pending_decisions');
      if (ch.pending.length > 0)
        await c.query(
          `INSERT INTO siem_pending_decisions (id, doc)
           SELECT id, doc FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS p (id, doc, n) ORDER BY n`,
          [ch.pending.map((p) => p.id), ch.pending.map((p) => JSON.stringify(p))],
        );
    });
  }

  async loadResponseState(): Promise<ResponseState> {
    // One snapshot: the revision, the active set and the pending list agree.
    return this.tx('load decisions', async (c) => {
      await c.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const rev = await c.query<{ revision: number }>('SELECT revision FROM siem_revision');
      const d = await c.query<{ doc: string }>(
        'SELECT doc FROM siem_decisions WHERE removed_at IS NULL ORDER BY revision, id',
      );
      const p = await c.query<{ doc: string }>('SELECT doc FROM siem_pending_decisions ORDER BY row_id');
      return {
        revision: rev.rows[0]?.revision ?? 0,
        decisions: d.rows.map((x) => JSON.parse(x.doc) as Decision),
        pending: p.rows.map((x) => JSON.parse(x.doc) as PendingDecision),
      };
    });
  }

  async decisionHistory(limit?: number): Promise<(Decision & { readonly removedAt: number | null })[]> {
    const r = await this.q<{ doc: string; removed_at: number | null }>(
      'decision history',
      'SELECT doc, removed_at FROM siem_decisions ORDER BY revision DESC, id LIMIT $1',
      [limitOf(limit)],
    );
    return r.rows.map((x) => ({ ...(JSON.parse(x.doc) as Decision), removedAt: x.removed_at }));
  }

  async pruneOlderThan(cutoff: number, batch = 5000): Promise<number> {
    const n = Math.max(1, Math.min(100_000, Math.floor(batch)));
    try {
      const e = await pruneEvents(this.pool, this.partitions, cutoff, n);
      if (e >= n) return e;
      const a = await this.pool.query(
        `DELETE FROM siem_alerts WHERE seq = ANY(ARRAY(
           SELECT seq FROM siem_alerts WHERE time < $1 ORDER BY time LIMIT $2))
         RETURNING id`,
        [cutoff, n - e],
      );
      const ids = a.rows.map((x: { id: string }) => x.id);
      if (ids.length > 0)
        await this.pool.query('DELETE FROM siem_alert_status WHERE id = ANY($1::text[])', [ids]);
      return e + ids.length;
    } catch (err) {
      throw this.fail(err, 'retention');
    }
  }
}
