// The SQLite adapter of SiemStore (better-sqlite3, WAL): batched inserts in one transaction,
// per-entity timeline indexes, alerts and decisions tables, retention in small batches.
import Database from 'better-sqlite3';
import type { Decision } from '../../common/decisions.js';
import { EdgewardError } from '../../common/errors.js';
import { privateDatabase } from '../../common/private-files.js';
import { withVerifiedKind, type EdgeEvent } from '../../common/events.js';
import type { Alert } from '../correlate/index.js';
import type { PendingDecision, ResponseState } from '../playbooks/index.js';
import { configureConnection } from './connection.js';
import { ENTITY, entityHash } from './entity-hash.js';
import { prepareEventInsert, SEGMENT_SHIFT } from './event-insert.js';
import { encodeEventRows } from './event-rows.js';
import {
  checkCountQuery,
  MAX_COUNT_RULES,
  type AlertQuery,
  type AlertStatus,
  type DecisionChanges,
  type SiemStore,
  type TimelineQuery,
} from './store.js';

/** The domain's interface with its promises taken off: what the SQLite connection answers at once. */
type Synchronous<T> = {
  [K in keyof T]: T[K] extends (...a: infer A) => Promise<infer R> ? (...a: A) => R : T[K];
};

/** Events per page of scanEvents. */
const SCAN_PAGE = 1000;

/**
 * The SQLite store's own, synchronous face (better-sqlite3 answers on the calling thread); the
 * domain sees it through `asyncStore`. `scanPage` stands for scanEvents: one page after `after`
 * (a position from the previous page, 0 first), SCAN_PAGE events at most.
 */
export type SqliteStoreSync = Omit<Synchronous<SiemStore>, 'scanEvents'> & {
  scanPage(
    q: { actions: readonly string[]; observer: string },
    after: number,
  ): { seq: number; event: EdgeEvent }[];
};

// 2: alert_entity (alerts by entity), filled from the stored alerts when an older file is opened;
// entity_timeline_recent (the newest timeline entries, see event-insert.ts), created empty.
// 3: entity_timeline keyed by segment first (see event-insert.ts), rebuilt from the older table;
// alerts, decisions, pending decisions (one row each; version 2 kept pending ones in one 'pending'
// meta value) and meta in the state file (below).
const SCHEMA_VERSION = 3;

// The state file (`siem.state.db` beside `siem.db`): alerts, decisions, pending decisions and the
// revision. Its own file, so its writes never wait for the ingest writer's group commit on the
// events file (SQLite locks per file): the event loop never blocks until the writer's transaction
// ends when alerts or decisions are stored.
const STATE_SCHEMA_VERSION = 1;

// Per-entity timelines live in one integer-keyed index table (entity hash, event time, rowid)
// rather than four text indexes on events: one B-tree of small keys takes a batch insert about
// twice as fast. Hash collisions are harmless: queries re-check the entity's text column.
const EVENTS_SCHEMA = `
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
  seg INTEGER NOT NULL,
  h INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  event INTEGER NOT NULL,
  PRIMARY KEY (seg, h, ts, event)
) WITHOUT ROWID;
-- The reporters' names of the batches stored (Edgeward-Batch-Id), written in the events'
-- transaction: a resent batch whose name is here is not stored again. Pruned by the writer.
CREATE TABLE IF NOT EXISTS batches (
  reporter TEXT NOT NULL,
  id TEXT NOT NULL,
  at INTEGER NOT NULL,
  accepted INTEGER NOT NULL,
  PRIMARY KEY (reporter, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS batches_at ON batches (at);
CREATE TABLE IF NOT EXISTS entity_timeline_recent (
  h INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  event INTEGER NOT NULL,
  PRIMARY KEY (h, ts, event)
) WITHOUT ROWID;
`;

const STATE_SCHEMA = `
CREATE TABLE IF NOT EXISTS alerts (
  id TEXT PRIMARY KEY,
  rule_id TEXT NOT NULL,
  level TEXT NOT NULL,
  time INTEGER NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_time ON alerts (time);
CREATE INDEX IF NOT EXISTS alerts_rule ON alerts (rule_id, time);
CREATE TABLE IF NOT EXISTS alert_entity (
  value TEXT NOT NULL,
  time INTEGER NOT NULL,
  alert INTEGER NOT NULL,
  PRIMARY KEY (value, time, alert)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alert_entity_alert ON alert_entity (alert);
CREATE TABLE IF NOT EXISTS alert_status (
  id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  by TEXT NOT NULL,
  at INTEGER NOT NULL
);
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
CREATE TABLE IF NOT EXISTS pending_decisions (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

// The decision stream's acknowledgement ledger (sqlite-side.ts), in the state file only.
const ACK_SCHEMA = `
CREATE TABLE IF NOT EXISTS agent_acks (
  identity TEXT PRIMARY KEY,
  acked INTEGER NOT NULL,
  acked_at INTEGER NOT NULL,
  history TEXT NOT NULL
);
`;

export interface SqliteStoreOptions {
  /**
   * FULL (default): a commit is on disk before insertEvents returns, so acknowledged events
   * survive power loss. NORMAL: survives a process crash, may lose the last commits on power loss.
   */
  readonly synchronous?: 'FULL' | 'NORMAL';
  /** SQLite page cache in MiB (default 64). */
  readonly cacheMiB?: number;
  /** WAL pages between automatic checkpoints (default WAL_PAGES in connection.ts, 32 MiB). */
  readonly walAutocheckpointPages?: number;
  /** The state file (default: stateFileOf(file)). */
  readonly stateFile?: string;
}

/** Where the store keeps alerts and decisions beside an events file: `siem.db` → `siem.state.db`. */
export function stateFileOf(file: string): string {
  return file.endsWith('.db') ? `${file.slice(0, -3)}.state.db` : `${file}.state`;
}

const STATE_TABLES = [
  'alerts',
  'alert_entity',
  'alert_status',
  'decisions',
  'pending_decisions',
  'meta',
] as const;

type Row = { doc: string };

/** The entities with a timeline of their own: their event column and hash kind. */
const TIMELINES = {
  'source.identity': { column: 'source_identity', kind: ENTITY.sourceIdentity },
  'destination.identity': { column: 'destination_identity', kind: ENTITY.destinationIdentity },
  'source.ip': { column: 'source_ip', kind: ENTITY.sourceIp },
  serial: { column: 'serial', kind: ENTITY.serial },
} as const;
type TimelineOf = keyof typeof TIMELINES;
/** One index probe of a timeline query: the entity hash of one column. */
type Probe = { readonly entity: TimelineOf; readonly h: number };

/** The timeline segment of an event rowid (see event-insert.ts). */
const segmentOf = (event: number): number => Math.floor(event / 2 ** SEGMENT_SHIFT);

/** The entities an alert is about: its group-by values and the source identity of its trigger. */
function alertEntities(a: Alert): Set<string> {
  const out = new Set<string>();
  for (const v of Object.values(a.groupBy ?? {})) if (typeof v === 'string' && v !== '') out.add(v);
  const si = a.trigger?.['source.identity'];
  if (typeof si === 'string' && si !== '') out.add(si);
  return out;
}

/**
 * A stored event document as the SIEM reads it: the reporter's kind derived again from its
 * verified identity (rows from before the SIEM set it hold the reporter's own claim there).
 */
function storedEvent(doc: string): EdgeEvent {
  return withVerifiedKind(JSON.parse(doc) as EdgeEvent);
}

function storeError(err: unknown, what: string): EdgewardError {
  return new EdgewardError('ERR_SIEM_STORE', `event store: ${what} failed`, { cause: err });
}

/** Opens one of the store's files with the SIEM's settings; refuses a schema newer than `newest`. */
function openFile(
  file: string,
  opts: SqliteStoreOptions,
  newest: number,
  what: string,
): { db: Database.Database; version: number } {
  // The owner's only (the file, its WAL and shared memory), whatever the umask.
  const db = new Database(privateDatabase(file));
  try {
    configureConnection(db, opts);
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > newest) throw new Error(`${what} schema ${version} is newer than this SIEM (${newest})`);
    return { db, version };
  } catch (err) {
    db.close();
    throw err;
  }
}

/** The SQLite adapter of SiemStore: siem.db and, beside it, the state file. */
export function openSqliteStore(file: string, opts: SqliteStoreOptions = {}): SiemStore {
  return asyncStore(openSqliteStoreSync(file, opts));
}

/**
 * The domain's interface over the synchronous store. `gate` runs the writes to the events file
 * (the writer thread's file: insertEvents, pruneOlderThan) with priority over the writer's next
 * group (event-writer.ts `exclusive`); without one they run as they come.
 */
export function asyncStore(s: SqliteStoreSync, gate: <T>(fn: () => T) => T = (fn) => fn()): SiemStore {
  return {
    insertEvents: async (events) => gate(() => s.insertEvents(events)),
    insertAlerts: async (alerts) => s.insertAlerts(alerts),
    timeline: async (q) => s.timeline(q),
    event: async (id) => s.event(id),
    async scanEvents(q, fn) {
      for (let after = 0; ;) {
        const page = s.scanPage(q, after);
        for (const r of page) await fn(r.event);
        if (page.length < SCAN_PAGE) return;
        after = (page[page.length - 1] as { seq: number }).seq;
      }
    },
    reporters: async () => s.reporters(),
    alerts: async (q) => s.alerts(q),
    setAlertStatus: async (id, status) => s.setAlertStatus(id, status),
    alertStatuses: async (ids) => s.alertStatuses(ids),
    countEvents: async () => s.countEvents(),
    eventCounts: async (q) => s.eventCounts(q),
    alertCounts: async (q) => s.alertCounts(q),
    saveDecisionChanges: async (c) => s.saveDecisionChanges(c),
    loadResponseState: async () => s.loadResponseState(),
    decisionHistory: async (limit) => s.decisionHistory(limit),
    pruneOlderThan: async (cutoff, batch) => gate(() => s.pruneOlderThan(cutoff, batch)),
    close: async () => s.close(),
  };
}

export function openSqliteStoreSync(file: string, opts: SqliteStoreOptions = {}): SqliteStoreSync {
  let db: Database.Database | undefined;
  let sdb: Database.Database | undefined;
  // The pending decisions as last written, by id. The engine keeps its pending objects as they
  // are until they change, so a save writes only those that are new or different by identity,
  // and deletes those gone: a storm of 10,000 pending writes one row per change, not the list.
  let storedPending: Map<string, PendingDecision>;
  const readPending = (): Map<string, PendingDecision> =>
    new Map(
      (
        (sdb as Database.Database).prepare(`SELECT doc FROM pending_decisions ORDER BY rowid`).all() as Row[]
      ).map((r) => {
        const p = JSON.parse(r.doc) as PendingDecision;
        return [p.id, p] as const;
      }),
    );
  try {
    const { db: ev, version } = openFile(file, opts, SCHEMA_VERSION, 'store');
    db = ev;
    const legacyState = version < 3 && STATE_TABLES.some((t) => columnsOf(ev, t).size > 0);
    ev.transaction(() => {
      const timeline = columnsOf(ev, 'entity_timeline');
      const unsegmented = version < 3 && timeline.has('h') && !timeline.has('seg');
      if (unsegmented) ev.exec(`ALTER TABLE entity_timeline RENAME TO entity_timeline_v2`);
      ev.exec(EVENTS_SCHEMA);
      if (unsegmented) segmentTimeline(ev);
      if (legacyState) {
        // Bring the older state tables to this layout where they are, then move them (below).
        ev.exec(STATE_SCHEMA);
        pendingToRows(ev);
        if (version < 2) backfillAlertEntities(ev);
      }
      ev.pragma(`user_version = ${SCHEMA_VERSION}`);
    })();
    const stateFile = opts.stateFile ?? stateFileOf(file);
    sdb = openFile(stateFile, opts, STATE_SCHEMA_VERSION, 'state').db;
    const st = sdb;
    st.transaction(() => {
      st.exec(STATE_SCHEMA);
      st.exec(ACK_SCHEMA);
      st.pragma(`user_version = ${STATE_SCHEMA_VERSION}`);
    })();
    moveState(ev, stateFile);
    storedPending = readPending();
  } catch (err) {
    sdb?.close();
    db?.close();
    throw storeError(err, 'open');
  }
  // The same insert as the ingest writer's (event-insert.ts); here for audit events and tests.
  const inserter = prepareEventInsert(db);
  const delMerged = db.prepare(
    `DELETE FROM entity_timeline WHERE seg = ? AND h = ? AND ts = ? AND event = ?`,
  );
  const delRecent = db.prepare(`DELETE FROM entity_timeline_recent WHERE h = ? AND ts = ? AND event = ?`);
  const delEntity = (h: number, ts: number, event: number): void => {
    delMerged.run(segmentOf(event), h, ts, event);
    delRecent.run(h, ts, event);
  };
  const insAlert = sdb.prepare(
    `INSERT OR IGNORE INTO alerts (id, rule_id, level, time, doc) VALUES (?, ?, ?, ?, ?)`,
  );
  const insAlertEntity = sdb.prepare(
    `INSERT OR IGNORE INTO alert_entity (value, time, alert) VALUES (?, ?, ?)`,
  );
  const upDecision = sdb.prepare(
    `INSERT INTO decisions (id, revision, scope_type, scope_value, action, created_at, expires_at, removed_at, doc)
     VALUES (@id, @revision, @scopeType, @scopeValue, @action, @createdAt, @expiresAt, NULL, @doc)
     ON CONFLICT(id) DO UPDATE SET revision = excluded.revision, expires_at = excluded.expires_at,
       removed_at = NULL, doc = excluded.doc`,
  );
  const rmDecision = sdb.prepare(`UPDATE decisions SET removed_at = ? WHERE id = ? AND removed_at IS NULL`);
  const setMeta = sdb.prepare(
    `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
  );
  const getMeta = sdb.prepare(`SELECT value FROM meta WHERE key = ?`);
  const upPending = sdb.prepare(
    `INSERT INTO pending_decisions (id, doc) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc`,
  );
  const delPending = sdb.prepare(`DELETE FROM pending_decisions WHERE id = ?`);
  const oldest = db.prepare(
    `SELECT rowid AS r, ts, source_identity AS si, destination_identity AS di, source_ip AS ip, serial AS se
     FROM events WHERE ts < ? ORDER BY ts LIMIT ?`,
  );
  const delEvent = db.prepare(`DELETE FROM events WHERE rowid = ?`);
  const oldAlerts = sdb.prepare(`SELECT rowid AS r FROM alerts WHERE time < ? ORDER BY time LIMIT ?`);
  const delAlertEntities = sdb.prepare(`DELETE FROM alert_entity WHERE alert = ?`);
  const delAlert = sdb.prepare(`DELETE FROM alerts WHERE rowid = ?`);
  const delAlertStatus = sdb.prepare(
    `DELETE FROM alert_status WHERE id = (SELECT id FROM alerts WHERE rowid = ?)`,
  );
  const setStatus = sdb.prepare(
    `INSERT INTO alert_status (id, status, by, at) VALUES (?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET status = excluded.status, by = excluded.by, at = excluded.at`,
  );
  const getStatus = sdb.prepare(`SELECT status, by, at FROM alert_status WHERE id = ?`);
  const countEvents = db.prepare(`SELECT count(*) AS n FROM events`);
  // t - t % b buckets the timestamps (% works on integers); the ts and (rule_id, time) indexes bound the scans.
  const eventBuckets = db.prepare(
    `SELECT ts - ts % @b AS bucket, count(*) AS count FROM events
     WHERE ts >= @since AND ts < @until GROUP BY bucket ORDER BY bucket`,
  );
  const alertBuckets = sdb.prepare(
    `WITH top AS (
       SELECT rule_id FROM alerts WHERE time >= @since AND time < @until
       GROUP BY rule_id ORDER BY count(*) DESC, rule_id LIMIT @rules)
     SELECT a.rule_id AS rule, a.time - a.time % @b AS bucket, count(*) AS count
     FROM alerts a JOIN top USING (rule_id)
     WHERE a.time >= @since AND a.time < @until GROUP BY a.rule_id, bucket ORDER BY a.rule_id, bucket`,
  );
  const scanPage = db.prepare(
    `SELECT seq, doc FROM events WHERE seq > ? AND observer = ? AND action IN (SELECT value FROM json_each(?))
     ORDER BY seq LIMIT ?`,
  );
  const byId = db.prepare(`SELECT doc FROM events WHERE id = ?`);
  // An entity's entries are in entity_timeline_recent (the newest) or in one segment of
  // entity_timeline. Each table and segment is read in index order and cut to `limit` (the event
  // row is read only to re-check the entity against hash collisions), the cuts are merged, and
  // documents are read only for the rows kept: a busy identity (100,000s of events) costs what a
  // quiet one does, times the number of segments (one per 131,072 stored events).
  const sideSql = (table: string, column: string, segmented: boolean): string =>
    `SELECT t.ts, t.event FROM ${table} t JOIN events e ON e.rowid = t.event
     WHERE ${segmented ? 't.seg = @seg AND ' : ''}t.h = @h AND t.ts >= @since AND t.ts < @until
       AND e.${column} = @v
     ORDER BY t.ts DESC, t.event DESC LIMIT @limit`;
  const sides = new Map(
    (Object.keys(TIMELINES) as TimelineOf[]).map((k) => [
      k,
      {
        recent: db.prepare(sideSql('entity_timeline_recent', TIMELINES[k].column, false)).raw(),
        merged: db.prepare(sideSql('entity_timeline', TIMELINES[k].column, true)).raw(),
      },
    ]),
  );
  const firstSeq = db.prepare(`SELECT min(seq) FROM events`).pluck();
  const lastSeq = db.prepare(`SELECT max(seq) FROM events`).pluck();
  const docsByRowid = db
    .prepare(`SELECT e.doc FROM json_each(?) j JOIN events e ON e.rowid = j.value ORDER BY j.key`)
    .pluck();
  // One read transaction: the segments, both tables and the documents come from one snapshot
  // (the ingest writer commits and merges concurrently).
  const readTimeline = db.transaction(
    (probes: readonly Probe[], v: string, since: number, until: number, limit: number): string[] => {
      const lo = firstSeq.get() as number | null;
      const hi = lastSeq.get() as number | null;
      if (lo === null || hi === null) return [];
      const rows = new Map<number, number>(); // event rowid -> ts
      const take = (found: unknown[]): void => {
        for (const r of found as [number, number][]) rows.set(r[1], r[0]);
      };
      for (const p of probes) {
        const st = sides.get(p.entity) as { recent: Database.Statement; merged: Database.Statement };
        const args = { h: p.h, v, since, until, limit };
        take(st.recent.all(args));
        for (let seg = segmentOf(hi); seg >= segmentOf(lo); seg--) take(st.merged.all({ ...args, seg }));
      }
      const kept = [...rows]
        .sort((a, b) => b[1] - a[1] || b[0] - a[0])
        .slice(0, limit)
        .map((r) => r[0]);
      return kept.length === 0 ? [] : (docsByRowid.all(JSON.stringify(kept)) as string[]);
    },
  );
  const alertQueries = new Map<string, Database.Statement>();
  /** One statement per shape of AlertQuery, each served by an index in newest-first order. */
  const alertStatement = (entity: boolean, rule: boolean): Database.Statement => {
    const key = `${entity}/${rule}`;
    let st = alertQueries.get(key);
    if (st === undefined) {
      st = entity
        ? sdb.prepare(
            `SELECT a.doc FROM alert_entity x JOIN alerts a ON a.rowid = x.alert
             WHERE x.value = @entity AND x.time >= @since AND x.time < @before
             ${rule ? 'AND a.rule_id = @rule' : ''}
             ORDER BY x.time DESC, x.alert DESC LIMIT @limit`,
          )
        : sdb.prepare(
            `SELECT doc FROM alerts WHERE ${rule ? 'rule_id = @rule AND' : ''} time >= @since AND time < @before
             ORDER BY time DESC LIMIT @limit`,
          );
      alertQueries.set(key, st);
    }
    return st;
  };

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
      if (x.si !== null) delEntity(entityHash(ENTITY.sourceIdentity, x.si), x.ts, x.r);
      if (x.di !== null) delEntity(entityHash(ENTITY.destinationIdentity, x.di), x.ts, x.r);
      if (x.ip !== null) delEntity(entityHash(ENTITY.sourceIp, x.ip), x.ts, x.r);
      if (x.se !== null) delEntity(entityHash(ENTITY.serial, x.se), x.ts, x.r);
      delEvent.run(x.r);
    }
    return rows.length;
  });
  const insertAlerts = sdb.transaction((alerts: readonly Alert[]) => {
    for (const a of alerts) {
      const r = insAlert.run(a.id, a.ruleId, a.level, a.time, JSON.stringify(a));
      if (r.changes === 0) continue; // a re-fed alert: stored once, indexed once
      for (const v of alertEntities(a)) insAlertEntity.run(v, a.time, r.lastInsertRowid);
    }
  });
  const pruneAlerts = sdb.transaction((cutoff: number, n: number): number => {
    const rows = oldAlerts.all(cutoff, n) as { r: number }[];
    for (const x of rows) {
      delAlertEntities.run(x.r);
      delAlertStatus.run(x.r);
      delAlert.run(x.r);
    }
    return rows.length;
  });
  const saveChanges = sdb.transaction((c: DecisionChanges, next: Map<string, PendingDecision>) => {
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
    for (const [id, p] of next) if (storedPending.get(id) !== p) upPending.run(id, JSON.stringify(p));
    for (const id of storedPending.keys()) if (!next.has(id)) delPending.run(id);
  });

  const limitOf = (n: number | undefined) => Math.max(1, Math.min(10_000, Math.floor(n ?? 100)));
  const parseDocs = <T>(rows: unknown[]): T[] => (rows as Row[]).map((r) => JSON.parse(r.doc) as T);

  return {
    insertEvents(events) {
      if (events.length === 0) return;
      try {
        inserter.insert([encodeEventRows(events)]);
        if (inserter.mergeDue()) while (inserter.mergeStep());
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
      let probes: Probe[];
      if (q.entity === 'identity') {
        probes = [
          { entity: 'source.identity', h: entityHash(ENTITY.sourceIdentity, v) },
          { entity: 'destination.identity', h: entityHash(ENTITY.destinationIdentity, v) },
        ];
      } else if (Object.hasOwn(TIMELINES, q.entity)) {
        probes = [{ entity: q.entity, h: entityHash(TIMELINES[q.entity].kind, v) }];
      } else throw new TypeError(`no timeline for ${String(q.entity)}`);
      return readTimeline(probes, v, since, until, limit).map(storedEvent);
    },
    event(id: string) {
      const row = byId.get(id) as Row | undefined;
      return row === undefined ? undefined : storedEvent(row.doc);
    },
    scanPage(q, after) {
      const rows = scanPage.all(after, q.observer, JSON.stringify(q.actions), SCAN_PAGE) as {
        seq: number;
        doc: string;
      }[];
      return rows.map((r) => ({ seq: r.seq, event: storedEvent(r.doc) }));
    },
    reporters() {
      return db
        .prepare(
          'SELECT observer AS identity, max(ts) AS lastSeen FROM events WHERE observer IS NOT NULL GROUP BY observer',
        )
        .all() as { identity: string; lastSeen: number }[];
    },
    alerts(q: AlertQuery = {}) {
      const entity = q.entity;
      if (entity !== undefined && (typeof entity !== 'string' || entity.length > 2048)) return [];
      const args: Record<string, unknown> = {
        since: Number.isFinite(q.since) ? q.since : 0,
        before: Number.isFinite(q.before) ? q.before : Number.MAX_SAFE_INTEGER,
        limit: limitOf(q.limit),
      };
      if (entity !== undefined) args['entity'] = entity;
      if (q.ruleId !== undefined) args['rule'] = q.ruleId;
      return parseDocs<Alert>(alertStatement(entity !== undefined, q.ruleId !== undefined).all(args));
    },
    setAlertStatus(id, status) {
      try {
        setStatus.run(id, status.status, status.by, status.at);
      } catch (err) {
        throw storeError(err, 'set alert status');
      }
    },
    alertStatuses(ids) {
      const out = new Map<string, AlertStatus>();
      for (const id of ids) {
        const r = getStatus.get(id) as AlertStatus | undefined;
        if (r !== undefined) out.set(id, { status: r.status, by: r.by, at: r.at });
      }
      return out;
    },
    countEvents() {
      return (countEvents.get() as { n: number }).n;
    },
    eventCounts(q) {
      checkCountQuery(q);
      return eventBuckets.all({ b: q.bucketMs, since: q.since, until: q.until }) as {
        bucket: number;
        count: number;
      }[];
    },
    alertCounts(q) {
      checkCountQuery(q);
      return alertBuckets.all({
        b: q.bucketMs,
        since: q.since,
        until: q.until,
        rules: MAX_COUNT_RULES,
      }) as { rule: string; bucket: number; count: number }[];
    },
    saveDecisionChanges(c) {
      try {
        const next = new Map(c.pending.map((p) => [p.id, p]));
        saveChanges(c, next);
        storedPending = next;
      } catch (err) {
        throw storeError(err, 'save decisions');
      }
    },
    loadResponseState(): ResponseState {
      const rev = getMeta.get('revision') as { value: string } | undefined;
      // Read from the file (another handle may have saved since this one opened), and kept as
      // the very objects a later save compares against (the engine keeps them as they are).
      storedPending = readPending();
      const pending = [...storedPending.values()];
      const decisions = parseDocs<Decision>(
        sdb.prepare(`SELECT doc FROM decisions WHERE removed_at IS NULL ORDER BY revision`).all(),
      );
      return {
        revision: rev === undefined ? 0 : Number(rev.value),
        decisions,
        pending,
      };
    },
    decisionHistory(limit) {
      const rows = sdb
        .prepare(`SELECT doc, removed_at FROM decisions ORDER BY revision DESC LIMIT ?`)
        .all(limitOf(limit)) as { doc: string; removed_at: number | null }[];
      return rows.map((r) => ({ ...(JSON.parse(r.doc) as Decision), removedAt: r.removed_at }));
    },
    pruneOlderThan(cutoff, batch = 5000) {
      const n = Math.max(1, Math.min(100_000, Math.floor(batch)));
      try {
        // IMMEDIATE: these read before they write, and the ingest writer's connection commits
        // concurrently; a deferred transaction would fail its upgrade instead of waiting.
        const e = prune.immediate(cutoff, n);
        const a = e < n ? pruneAlerts.immediate(cutoff, n - e) : 0;
        return e + a;
      } catch (err) {
        throw storeError(err, 'retention');
      }
    },
    close() {
      db.close();
      sdb.close();
    },
  };
}

function columnsOf(db: Database.Database, table: string): Set<string> {
  return new Set(db.prepare(`SELECT name FROM pragma_table_info(?)`).pluck().all(table) as string[]);
}

/** Moves a schema-2 file's timeline (renamed entity_timeline_v2) into the segmented table. */
function segmentTimeline(db: Database.Database): void {
  db.exec(`INSERT INTO entity_timeline (seg, h, ts, event)
             SELECT event >> ${SEGMENT_SHIFT}, h, ts, event FROM entity_timeline_v2
             ORDER BY event >> ${SEGMENT_SHIFT}, h, ts, event;
           DROP TABLE entity_timeline_v2;`);
}

/**
 * Moves the state tables an older events file still holds (if any) into the state file: copied
 * in one transaction, dropped in a second (SQLite commits attached WAL files one by one, so a
 * crash between the two leaves both copies, and the next open copies again, changing nothing,
 * then drops).
 */
function moveState(db: Database.Database, stateFile: string): void {
  const present = STATE_TABLES.filter((t) => columnsOf(db, t).size > 0);
  if (present.length === 0) return;
  const copy: Record<(typeof STATE_TABLES)[number], string> = {
    // Alerts keep their rowids: alert_entity refers to them.
    alerts: `INSERT OR IGNORE INTO st.alerts (rowid, id, rule_id, level, time, doc)
               SELECT rowid, id, rule_id, level, time, doc FROM main.alerts`,
    alert_entity: `INSERT OR IGNORE INTO st.alert_entity (value, time, alert)
                     SELECT value, time, alert FROM main.alert_entity`,
    alert_status: `INSERT OR IGNORE INTO st.alert_status (id, status, by, at)
                     SELECT id, status, by, at FROM main.alert_status`,
    decisions: `INSERT OR IGNORE INTO st.decisions
                  (id, revision, scope_type, scope_value, action, created_at, expires_at, removed_at, doc)
                SELECT id, revision, scope_type, scope_value, action, created_at, expires_at, removed_at, doc
                FROM main.decisions`,
    pending_decisions: `INSERT OR IGNORE INTO st.pending_decisions (id, doc)
                          SELECT id, doc FROM main.pending_decisions ORDER BY rowid`,
    meta: `INSERT OR IGNORE INTO st.meta (key, value) SELECT key, value FROM main.meta`,
  };
  db.prepare(`ATTACH DATABASE ? AS st`).run(stateFile);
  try {
    db.transaction(() => {
      for (const t of present) db.exec(copy[t]);
    })();
    db.transaction(() => {
      for (const t of present) db.exec(`DROP TABLE main.${t}`);
    })();
  } finally {
    db.exec(`DETACH DATABASE st`);
  }
}

/** Moves the pending list of an older file (one JSON value in meta) into its table. */
function pendingToRows(db: Database.Database): void {
  const row = db.prepare(`SELECT value FROM meta WHERE key = 'pending'`).pluck().get() as string | undefined;
  if (row === undefined) return;
  const list = JSON.parse(row) as unknown; // a broken value fails the open, as loading it did
  const ins = db.prepare(`INSERT OR IGNORE INTO pending_decisions (id, doc) VALUES (?, ?)`);
  for (const p of Array.isArray(list) ? list : []) {
    const id = (p as { id?: unknown } | null)?.id;
    if (typeof id === 'string') ins.run(id, JSON.stringify(p));
  }
  db.prepare(`DELETE FROM meta WHERE key = 'pending'`).run();
}

/** Indexes the alerts a schema-1 file already holds (in the transaction that upgrades it). */
function backfillAlertEntities(db: Database.Database): void {
  const ins = db.prepare(`INSERT OR IGNORE INTO alert_entity (value, time, alert) VALUES (?, ?, ?)`);
  const page = db.prepare(
    `SELECT rowid AS r, time, doc FROM alerts WHERE rowid > ? ORDER BY rowid LIMIT 5000`,
  );
  for (let after = 0; ;) {
    const rows = page.all(after) as { r: number; time: number; doc: string }[];
    if (rows.length === 0) return;
    for (const row of rows) {
      after = row.r;
      let a: Alert;
      try {
        a = JSON.parse(row.doc) as Alert;
      } catch {
        continue; // not ours to repair; it stays listed by time and rule
      }
      for (const v of alertEntities(a)) ins.run(v, row.time, row.r);
    }
  }
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
    const n = await store.pruneOlderThan(cutoff, batch);
    total += n;
    if (n < batch) return total;
    await new Promise<void>((r) => setImmediate(r));
  }
}
