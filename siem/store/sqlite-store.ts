// The SQLite adapter of SiemStore (better-sqlite3, WAL): batched inserts in one transaction,
// per-entity timeline indexes, alerts and decisions tables, retention in small batches.
import Database from 'better-sqlite3';
import type { Decision } from '../../common/decisions.js';
import { EdgewardError } from '../../common/errors.js';
import type { EdgeEvent } from '../../common/events.js';
import type { Alert } from '../correlate/index.js';
import type { PendingDecision, ResponseState } from '../playbooks/index.js';
import { ENTITY, entityHash } from './entity-hash.js';
import type { AlertQuery, DecisionChanges, SiemStore, TimelineQuery } from './store.js';

const SCHEMA_VERSION = 1;

// Per-entity timelines live in one integer-keyed index table (entity hash, event time, rowid)
// rather than four text indexes on events: one B-tree of small keys takes a batch insert about
// twice as fast. Hash collisions are harmless: queries re-check the entity's text column.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  action TEXT NOT NULL,
  source_identity TEXT,
  destination_identity TEXT,
  source_ip TEXT,
  serial TEXT,
  observer TEXT,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_id ON events (id);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE TABLE IF NOT EXISTS entity_timeline (
  h INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  event INTEGER NOT NULL,
  PRIMARY KEY (h, ts, event)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
  id TEXT PRIMARY KEY,
  rule_id TEXT NOT NULL,
  level TEXT NOT NULL,
  time INTEGER NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_time ON alerts (time);
CREATE INDEX IF NOT EXISTS alerts_rule ON alerts (rule_id, time);
CREATE TABLE IF NOT EXISTS decisions (
  id TEXT PRIMARY KEY,
  revision INTEGER NOT NULL,
  scope_type TEXT NOT NULL,
  scope_value TEXT NOT NULL,
  action TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  removed_at INTEGER,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_active ON decisions (removed_at);
CREATE INDEX IF NOT EXISTS decisions_scope ON decisions (scope_type, scope_value);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

export interface SqliteStoreOptions {
  /**
   * FULL (default): a commit is on disk before insertEvents returns, so acknowledged events
   * survive power loss. NORMAL: survives a process crash, may lose the last commits on power loss.
   */
  readonly synchronous?: 'FULL' | 'NORMAL';
  /** SQLite page cache in MiB (default 64). */
  readonly cacheMiB?: number;
  /** WAL pages between automatic checkpoints (default 10,000, about 40 MiB of WAL). */
  readonly walAutocheckpointPages?: number;
}

type Row = { doc: string };

function storeError(err: unknown, what: string): EdgewardError {
  return new EdgewardError('ERR_SIEM_STORE', `event store: ${what} failed`, { cause: err });
}

export function openSqliteStore(file: string, opts: SqliteStoreOptions = {}): SiemStore {
  let db: Database.Database;
  try {
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.synchronous === 'NORMAL' ? 'NORMAL' : 'FULL'}`);
    db.pragma('busy_timeout = 5000');
    // Checkpoint less often than SQLite's default 1000 pages: index pages touched by many batches
    // are then copied back to the database file once per checkpoint rather than many times.
    db.pragma(`wal_autocheckpoint = ${Math.max(100, Math.floor(opts.walAutocheckpointPages ?? 10_000))}`);
    db.pragma('temp_store = MEMORY');
    // The timeline index takes random keys; a larger page cache keeps its B-tree's hot pages in
    // memory (the default 2 MiB makes batch inserts slower).
    db.pragma(`cache_size = -${Math.max(2, Math.floor(opts.cacheMiB ?? 64)) * 1024}`);
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION)
      throw new Error(`store schema ${version} is newer than this SIEM (${SCHEMA_VERSION})`);
    db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  } catch (err) {
    throw storeError(err, 'open');
  }
  const insEvent = db.prepare(
    `INSERT INTO events (id, ts, action, source_identity, destination_identity, source_ip, serial, observer, doc)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  // One statement per event for its 1..4 timeline entries: fewer calls into SQLite per event.
  const insEntity = [1, 2, 3, 4].map((k) =>
    db.prepare(
      `INSERT OR IGNORE INTO entity_timeline (h, ts, event) VALUES ${Array<string>(k).fill('(?, ?, ?)').join(', ')}`,
    ),
  );
  const entityRow: (number | bigint)[] = [];
  const delEntity = db.prepare(`DELETE FROM entity_timeline WHERE h = ? AND ts = ? AND event = ?`);
  const insAlert = db.prepare(
    `INSERT OR IGNORE INTO alerts (id, rule_id, level, time, doc) VALUES (?, ?, ?, ?, ?)`,
  );
  const upDecision = db.prepare(
    `INSERT INTO decisions (id, revision, scope_type, scope_value, action, created_at, expires_at, removed_at, doc)
     VALUES (@id, @revision, @scopeType, @scopeValue, @action, @createdAt, @expiresAt, NULL, @doc)
     ON CONFLICT(id) DO UPDATE SET revision = excluded.revision, expires_at = excluded.expires_at,
       removed_at = NULL, doc = excluded.doc`,
  );
  const rmDecision = db.prepare(`UPDATE decisions SET removed_at = ? WHERE id = ? AND removed_at IS NULL`);
  const setMeta = db.prepare(
    `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
  );
  const getMeta = db.prepare(`SELECT value FROM meta WHERE key = ?`);
  const oldest = db.prepare(
    `SELECT rowid AS r, ts, source_identity AS si, destination_identity AS di, source_ip AS ip, serial AS se
     FROM events WHERE ts < ? ORDER BY ts LIMIT ?`,
  );
  const delEvent = db.prepare(`DELETE FROM events WHERE rowid = ?`);
  const pruneAlerts = db.prepare(
    `DELETE FROM alerts WHERE rowid IN (SELECT rowid FROM alerts WHERE time < ? LIMIT ?)`,
  );
  const countEvents = db.prepare(`SELECT count(*) AS n FROM events`);
  const byId = db.prepare(`SELECT doc FROM events WHERE id = ?`);
  const COLUMN = {
    'source.identity': 'source_identity',
    'destination.identity': 'destination_identity',
    'source.ip': 'source_ip',
    serial: 'serial',
  } as const;
  const timelines = new Map(
    (Object.keys(COLUMN) as (keyof typeof COLUMN)[]).map((k) => [
      k,
      db.prepare(
        `SELECT e.doc FROM entity_timeline t JOIN events e ON e.rowid = t.event
         WHERE t.h = ? AND t.ts >= ? AND t.ts < ? AND e.${COLUMN[k]} = ?
         ORDER BY t.ts DESC, t.event DESC LIMIT ?`,
      ),
    ]),
  );
  const timelineEither = db.prepare(
    `SELECT doc FROM (
       SELECT e.doc, t.ts, t.event FROM entity_timeline t JOIN events e ON e.rowid = t.event
         WHERE t.h = @hs AND t.ts >= @since AND t.ts < @until AND e.source_identity = @v
       UNION
       SELECT e.doc, t.ts, t.event FROM entity_timeline t JOIN events e ON e.rowid = t.event
         WHERE t.h = @hd AND t.ts >= @since AND t.ts < @until AND e.destination_identity = @v
     ) ORDER BY ts DESC, event DESC LIMIT @limit`,
  );

  const insertEvents = db.transaction((events: readonly EdgeEvent[]) => {
    for (const e of events) {
      const id = e['event.id'];
      if (id === undefined) throw new TypeError('stored events must carry event.id (stampEvent)');
      const ts = e['@timestamp'];
      const si = e['source.identity'];
      const di = e['destination.identity'];
      const ip = e['source.ip'];
      const se = e['tls.client.x509.serial_number'];
      const r = insEvent.run(
        id,
        ts,
        e['event.action'],
        si ?? null,
        di ?? null,
        ip ?? null,
        se ?? null,
        e['observer.identity'] ?? null,
        JSON.stringify(e),
      ).lastInsertRowid;
      entityRow.length = 0;
      if (si !== undefined) entityRow.push(entityHash(ENTITY.sourceIdentity, si), ts, r);
      if (di !== undefined) entityRow.push(entityHash(ENTITY.destinationIdentity, di), ts, r);
      if (ip !== undefined) entityRow.push(entityHash(ENTITY.sourceIp, ip), ts, r);
      if (se !== undefined) entityRow.push(entityHash(ENTITY.serial, se), ts, r);
      if (entityRow.length > 0) (insEntity[entityRow.length / 3 - 1] as Database.Statement).run(entityRow);
    }
  });
  const prune = db.transaction((cutoff: number, n: number): number => {
    const rows = oldest.all(cutoff, n) as {
      r: number;
      ts: number;
      si: string | null;
      di: string | null;
      ip: string | null;
      se: string | null;
    }[];
    for (const x of rows) {
      if (x.si !== null) delEntity.run(entityHash(ENTITY.sourceIdentity, x.si), x.ts, x.r);
      if (x.di !== null) delEntity.run(entityHash(ENTITY.destinationIdentity, x.di), x.ts, x.r);
      if (x.ip !== null) delEntity.run(entityHash(ENTITY.sourceIp, x.ip), x.ts, x.r);
      if (x.se !== null) delEntity.run(entityHash(ENTITY.serial, x.se), x.ts, x.r);
      delEvent.run(x.r);
    }
    return rows.length;
  });
  const insertAlerts = db.transaction((alerts: readonly Alert[]) => {
    for (const a of alerts) insAlert.run(a.id, a.ruleId, a.level, a.time, JSON.stringify(a));
  });
  const saveChanges = db.transaction((c: DecisionChanges) => {
    for (const d of c.upserts) {
      upDecision.run({
        id: d.id,
        revision: d.revision,
        scopeType: d.scope.type,
        scopeValue: d.scope.value,
        action: d.action,
        createdAt: d.createdAt,
        expiresAt: d.expiresAt,
        doc: JSON.stringify(d),
      });
    }
    for (const id of c.removals) rmDecision.run(c.at, id);
    setMeta.run('revision', String(c.revision));
    setMeta.run('pending', JSON.stringify(c.pending));
  });

  const limitOf = (n: number | undefined) => Math.max(1, Math.min(10_000, Math.floor(n ?? 100)));
  const parseDocs = <T>(rows: unknown[]): T[] => (rows as Row[]).map((r) => JSON.parse(r.doc) as T);

  return {
    insertEvents(events) {
      if (events.length === 0) return;
      try {
        insertEvents(events);
      } catch (err) {
        if (err instanceof TypeError) throw err;
        throw storeError(err, 'insert');
      }
    },
    insertAlerts(alerts) {
      if (alerts.length === 0) return;
      try {
        insertAlerts(alerts);
      } catch (err) {
        throw storeError(err, 'insert alerts');
      }
    },
    timeline(q: TimelineQuery) {
      const since = q.since ?? 0;
      const until = q.until ?? Number.MAX_SAFE_INTEGER;
      const limit = limitOf(q.limit);
      if (typeof q.value !== 'string' || q.value.length > 2048) return [];
      const v = q.value;
      if (q.entity === 'identity') {
        const hs = entityHash(ENTITY.sourceIdentity, v);
        const hd = entityHash(ENTITY.destinationIdentity, v);
        return parseDocs<EdgeEvent>(timelineEither.all({ hs, hd, v, since, until, limit }));
      }
      const stmt = timelines.get(q.entity);
      if (stmt === undefined) throw new TypeError(`no timeline for ${String(q.entity)}`);
      const kind =
        q.entity === 'source.identity'
          ? ENTITY.sourceIdentity
          : q.entity === 'destination.identity'
            ? ENTITY.destinationIdentity
            : q.entity === 'source.ip'
              ? ENTITY.sourceIp
              : ENTITY.serial;
      return parseDocs<EdgeEvent>(stmt.all(entityHash(kind, v), since, until, v, limit));
    },
    event(id: string) {
      const row = byId.get(id) as Row | undefined;
      return row === undefined ? undefined : (JSON.parse(row.doc) as EdgeEvent);
    },
    alerts(q: AlertQuery = {}) {
      const limit = limitOf(q.limit);
      const since = q.since ?? 0;
      const rows =
        q.ruleId === undefined
          ? db.prepare(`SELECT doc FROM alerts WHERE time >= ? ORDER BY time DESC LIMIT ?`).all(since, limit)
          : db
              .prepare(`SELECT doc FROM alerts WHERE rule_id = ? AND time >= ? ORDER BY time DESC LIMIT ?`)
              .all(q.ruleId, since, limit);
      return parseDocs<Alert>(rows);
    },
    countEvents() {
      return (countEvents.get() as { n: number }).n;
    },
    saveDecisionChanges(c) {
      try {
        saveChanges(c);
      } catch (err) {
        throw storeError(err, 'save decisions');
      }
    },
    loadResponseState(): ResponseState {
      const rev = getMeta.get('revision') as { value: string } | undefined;
      const pend = getMeta.get('pending') as { value: string } | undefined;
      const decisions = parseDocs<Decision>(
        db.prepare(`SELECT doc FROM decisions WHERE removed_at IS NULL ORDER BY revision`).all(),
      );
      return {
        revision: rev === undefined ? 0 : Number(rev.value),
        decisions,
        pending: pend === undefined ? [] : (JSON.parse(pend.value) as PendingDecision[]),
      };
    },
    decisionHistory(limit) {
      const rows = db
        .prepare(`SELECT doc, removed_at FROM decisions ORDER BY revision DESC LIMIT ?`)
        .all(limitOf(limit)) as { doc: string; removed_at: number | null }[];
      return rows.map((r) => ({ ...(JSON.parse(r.doc) as Decision), removedAt: r.removed_at }));
    },
    pruneOlderThan(cutoff, batch = 5000) {
      const n = Math.max(1, Math.min(100_000, Math.floor(batch)));
      try {
        const e = prune(cutoff, n);
        const a = e < n ? pruneAlerts.run(cutoff, n - e).changes : 0;
        return e + a;
      } catch (err) {
        throw storeError(err, 'retention');
      }
    },
    close() {
      db.close();
    },
  };
}

/** Runs retention to completion in small batches, yielding between them so ingest keeps going. */
export async function applyRetention(
  store: SiemStore,
  days: number,
  now: number,
  batch = 5000,
): Promise<number> {
  if (!(days > 0)) throw new TypeError('retention days must be positive');
  const cutoff = now - days * 86_400_000;
  let total = 0;
  for (;;) {
    const n = store.pruneOlderThan(cutoff, batch);
    total += n;
    if (n < batch) return total;
    await new Promise<void>((r) => setImmediate(r));
  }
}
