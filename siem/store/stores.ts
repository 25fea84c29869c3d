// Which stores a SIEM runs on: a factory opens every store of siem/store/store.ts (the SIEM
// store, the event writer, the acknowledgement ledger, the dashboard's users, sessions and
// inventory); the composition root takes any factory, SQLite files in the data folder by default.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { EdgewardError } from '../../common/errors.js';
import { configureConnection } from './connection.js';
import { domainEventWriter, openEventWriter, walMetrics, type SqliteEventWriter } from './event-writer.js';
import { sqliteAckStore, sqliteDashboardStores } from './sqlite-side.js';
import { asyncStore, openSqliteStoreSync, stateFileOf } from './sqlite-store.js';
import type {
  AckStore,
  EventWriter,
  InventoryStore,
  SessionStore,
  SiemStore,
  StoreMetric,
  UserStore,
} from './store.js';

export interface SiemStoreOptions {
  /** The SIEM's data folder. */
  readonly dataDir: string;
  /** Durability of a commit: FULL (default, survives power loss) or NORMAL (survives a crash). */
  readonly synchronous?: 'FULL' | 'NORMAL';
  /** Insert ingested events on a second thread (default true; false: on the event loop). */
  readonly ingestThread?: boolean;
}

/**
 * Every store a SIEM runs on, opened by one factory. Several SIEM replicas may open the same
 * stores (an adapter on a shared server): decisions, alerts, events, users, sessions and the
 * acknowledgement ledger are then shared; what is per process stays in the process (live
 * stream connections, the correlator's windows).
 */
export interface SiemStores {
  /** Alerts, decisions, audit events, timelines, every read. */
  readonly store: SiemStore;
  /** Ingested events (group commits). */
  readonly writer: EventWriter;
  /** Which revision each agent acknowledged, and when. */
  readonly acks: AckStore;
  /** Dashboard users (password hashes). */
  readonly users: UserStore;
  /** Dashboard sessions. */
  readonly sessions: SessionStore;
  /** The dashboard's inventory projection. */
  readonly inventory: InventoryStore;
  /** The adapter's own metrics (optional), rendered on /metrics as they are. */
  metrics?(): readonly StoreMetric[];
  /** Closes the writer (after what it was given is committed), then the other stores. */
  close(): Promise<void>;
}

export type SiemStoreFactory = (o: SiemStoreOptions) => Promise<SiemStores>;

/**
 * siem.db (events and their timelines), siem.state.db (alerts, decisions, revision, the
 * acknowledgement ledger) and, once the dashboard uses them, dashboard.db (users, sessions,
 * inventory). Ingested events go through the writer thread's own connection in group commits.
 */
export const sqliteStores: SiemStoreFactory = async (o) => {
  const file = join(o.dataDir, 'siem.db');
  const sync = o.synchronous ? { synchronous: o.synchronous } : {};
  const own = openSqliteStoreSync(file, sync);
  // Ingested events are inserted through their own connection (on a worker thread by default);
  // the store's connection keeps the other writes and every read.
  let writer: SqliteEventWriter;
  let ackDb: Database.Database;
  try {
    writer = await openEventWriter(file, { ...sync, thread: o.ingestThread ?? true });
  } catch (err) {
    own.close();
    throw err;
  }
  try {
    ackDb = new Database(stateFileOf(file), { fileMustExist: true });
    configureConnection(ackDb, sync);
  } catch (err) {
    await writer.close();
    own.close();
    throw new EdgewardError('ERR_SIEM_STORE', 'event store: open failed', { cause: err });
  }
  // The store's writes to the events file take priority over the next group of ingested events.
  const store = asyncStore(own, (fn) => writer.exclusive(fn));
  const dashboard = sqliteDashboardStores(o.dataDir);
  return {
    store,
    writer: domainEventWriter(writer),
    acks: sqliteAckStore(ackDb),
    users: dashboard.users,
    sessions: dashboard.sessions,
    inventory: dashboard.inventory,
    metrics: () => walMetrics(writer),
    async close() {
      await writer.close();
      await dashboard.close();
      ackDb.close();
      await store.close();
    },
  };
};
