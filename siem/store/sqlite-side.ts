// The SQLite adapters of the stores beside the SIEM store: the acknowledgement ledger (in the
// state file, siem.state.db), and the dashboard's users, sessions and inventory (dashboard.db).
// Sessions are rows of dashboard.db, so every process on the same data folder shares them, and
// they outlive a restart until they expire.
import type Database from 'better-sqlite3';
import { openDashboardDb } from '../dashboard/cli.js';
import { Inventory, readEvidence } from '../dashboard/inventory.js';
import {
  ACK_HISTORY,
  type AckRecord,
  type AckStore,
  type InventoryStore,
  type SessionRecord,
  type SessionStore,
  type UserRecord,
  type UserStore,
} from './store.js';

type AckRow = { identity: string; acked: number; acked_at: number; history: string };

const ackRecord = (r: AckRow): AckRecord => ({
  identity: r.identity,
  acked: r.acked,
  ackedAt: r.acked_at,
  history: JSON.parse(r.history) as [number, number][],
});

/** The ledger over the state file's agent_acks table (created by the store when it opens the file). */
export function sqliteAckStore(db: Database.Database): AckStore {
  const get = db.prepare(`SELECT identity, acked, acked_at, history FROM agent_acks WHERE identity = ?`);
  const put = db.prepare(
    `INSERT INTO agent_acks (identity, acked, acked_at, history) VALUES (?, ?, ?, ?)
     ON CONFLICT (identity) DO UPDATE SET acked = excluded.acked, acked_at = excluded.acked_at,
       history = excluded.history`,
  );
  const list = db.prepare(
    `SELECT identity, acked, acked_at, history FROM agent_acks ORDER BY identity LIMIT ?`,
  );
  const ack = db.transaction((identity: string, revision: number, at: number) => {
    const row = get.get(identity) as AckRow | undefined;
    const history = row === undefined ? [] : [...ackRecord(row).history];
    if (row === undefined || revision > row.acked) {
      history.push([revision, at]);
      if (history.length > ACK_HISTORY) history.splice(0, history.length - ACK_HISTORY);
    }
    put.run(identity, revision, at, JSON.stringify(history));
  });
  return {
    ack: async (identity, revision, at) => ack.immediate(identity, revision, at),
    list: async (limit = 100_000) => (list.all(Math.max(1, Math.floor(limit))) as AckRow[]).map(ackRecord),
  };
}

/** Users in dashboard.db (the table of the SIEM before the stores were split: unchanged). */
export function sqliteUserStore(db: Database.Database): UserStore {
  db.exec(`CREATE TABLE IF NOT EXISTS dashboard_users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL, created_at INTEGER NOT NULL)`);
  const ins = db.prepare(
    'INSERT INTO dashboard_users (name, role, hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT(name) DO NOTHING',
  );
  const get = db.prepare(
    'SELECT name, role, hash, created_at AS createdAt FROM dashboard_users WHERE name = ?',
  );
  const list = db.prepare('SELECT name, role FROM dashboard_users ORDER BY name');
  return {
    insert: async (u: UserRecord) => ins.run(u.name, u.role, u.hash, u.createdAt).changes === 1,
    get: async (name) => get.get(name) as UserRecord | undefined,
    list: async () => list.all() as { name: string; role: UserRecord['role'] }[],
  };
}

/** Sessions in dashboard.db, by the hash of their id. */
export function sqliteSessionStore(db: Database.Database): SessionStore {
  db.exec(`CREATE TABLE IF NOT EXISTS dashboard_sessions (
    key TEXT PRIMARY KEY, user TEXT NOT NULL, role TEXT NOT NULL, csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL, last_seen INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS dashboard_sessions_created ON dashboard_sessions (created_at)`);
  const count = db.prepare('SELECT count(*) FROM dashboard_sessions').pluck();
  const evict = db.prepare(
    'DELETE FROM dashboard_sessions WHERE key IN (SELECT key FROM dashboard_sessions ORDER BY created_at, rowid LIMIT ?)',
  );
  const ins = db.prepare(
    `INSERT INTO dashboard_sessions (key, user, role, csrf, created_at, last_seen) VALUES (?, ?, ?, ?, ?, ?)`,
  );
  const get = db.prepare(
    'SELECT key, user, role, csrf, created_at AS createdAt, last_seen AS lastSeen FROM dashboard_sessions WHERE key = ?',
  );
  const touch = db.prepare('UPDATE dashboard_sessions SET last_seen = max(last_seen, ?) WHERE key = ?');
  const del = db.prepare('DELETE FROM dashboard_sessions WHERE key = ?');
  const sweep = db.prepare('DELETE FROM dashboard_sessions WHERE last_seen < ? OR created_at < ?');
  const insert = db.transaction((s: SessionRecord, max: number) => {
    const over = (count.get() as number) - Math.max(1, max) + 1;
    if (over > 0) evict.run(over);
    ins.run(s.key, s.user, s.role, s.csrf, s.createdAt, s.lastSeen);
  });
  return {
    insert: async (s, max) => insert.immediate(s, max),
    get: async (key) => get.get(key) as SessionRecord | undefined,
    touch: async (key, lastSeen) => void touch.run(lastSeen, key),
    delete: async (key) => void del.run(key),
    sweep: async (idleBefore, createdBefore) => sweep.run(idleBefore, createdBefore).changes,
  };
}

/** The inventory projection (siem/dashboard/inventory.ts) as an InventoryStore. */
export function sqliteInventoryStore(db: Database.Database): InventoryStore {
  const inv = new Inventory(db);
  return {
    needsRebuild: async () => inv.needsRebuild,
    apply: async (events) => inv.apply(events),
    async rebuild(evidence, trustDomain) {
      inv.rebuild(await readEvidence(evidence, trustDomain));
    },
    markRevoked: async (serials) => inv.markRevoked(serials),
    query: async (q, quarantined) => inv.query(q, quarantined),
    get: async (identity, quarantined) => inv.get(identity, quarantined),
    bySerial: async (serial, quarantined) => inv.bySerial(serial, quarantined),
  };
}

export interface SqliteDashboardStores {
  readonly users: UserStore;
  readonly sessions: SessionStore;
  readonly inventory: InventoryStore;
  close(): Promise<void>;
}

/**
 * The dashboard's stores in the data folder's dashboard.db, opened on first use (a SIEM without
 * the dashboard never creates the file).
 */
export function sqliteDashboardStores(dataDir: string): SqliteDashboardStores {
  let db: Database.Database | undefined;
  const open = (): Database.Database => (db ??= openDashboardDb(dataDir));
  const once = <T>(make: (db: Database.Database) => T): (() => T) => {
    let made: T | undefined;
    return () => (made ??= make(open()));
  };
  const users = once(sqliteUserStore);
  const sessions = once(sqliteSessionStore);
  const inventory = once(sqliteInventoryStore);
  return {
    users: {
      insert: (u) => users().insert(u),
      get: (name) => users().get(name),
      list: () => users().list(),
    },
    sessions: {
      insert: (s, max) => sessions().insert(s, max),
      get: (key) => sessions().get(key),
      touch: (key, at) => sessions().touch(key, at),
      delete: (key) => sessions().delete(key),
      sweep: (a, b) => sessions().sweep(a, b),
    },
    inventory: {
      needsRebuild: () => inventory().needsRebuild(),
      apply: (e) => inventory().apply(e),
      rebuild: (e, td) => inventory().rebuild(e, td),
      markRevoked: (s) => inventory().markRevoked(s),
      query: (q, qs) => inventory().query(q, qs),
      get: (id, qs) => inventory().get(id, qs),
      bySerial: (s, qs) => inventory().bySerial(s, qs),
    },
    async close() {
      db?.close();
      db = undefined;
    },
  };
}
