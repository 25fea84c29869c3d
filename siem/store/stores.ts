// Which stores a SIEM runs on: a factory opens the store (alerts, decisions, audit, timelines,
// every read) and the event writer (ingested events); the composition root takes any factory,
// SQLite files in the data folder by default.
import { join } from 'node:path';
import { openEventWriter, yieldingStore, type EventWriter } from './event-writer.js';
import { openSqliteStore } from './sqlite-store.js';
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

/** siem.db (events and their timelines) and siem.state.db (alerts, decisions, revision). */
export const sqliteStores: SiemStoreFactory = async (o) => {
  const file = join(o.dataDir, 'siem.db');
  const sync = o.synchronous ? { synchronous: o.synchronous } : {};
  const own = openSqliteStore(file, sync);
  // Ingested events are inserted through their own connection (on a worker thread by default);
  // the store's connection keeps the other writes and every read.
  let writer: EventWriter;
  try {
    writer = await openEventWriter(file, { ...sync, thread: o.ingestThread ?? true });
  } catch (err) {
    own.close();
    throw err;
  }
  // The store's writes take priority over the next group of ingested events.
  const store = yieldingStore(own, writer);
  return {
    store,
    writer,
    async close() {
      await writer.close();
      store.close();
    },
  };
};
