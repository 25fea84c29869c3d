// The SIEM store's public face: the domain's interfaces, their SQLite adapter and their
// PostgreSQL one (replicas on one database).
export {
  applyRetention,
  asyncStore,
  openSqliteStore,
  openSqliteStoreSync,
  stateFileOf,
  type SqliteStoreOptions,
  type SqliteStoreSync,
} from './sqlite-store.js';
export {
  sqliteAckStore,
  sqliteDashboardStores,
  sqliteInventoryStore,
  sqliteSessionStore,
  sqliteUserStore,
  type SqliteDashboardStores,
} from './sqlite-side.js';
export {
  openPostgresSiem,
  postgresStores,
  PostgresEventWriter,
  PostgresSiemStore,
  SIEM_MIGRATIONS,
  type OpenedPostgres,
  type PostgresSiemOptions,
} from './store-postgres.js';
export { eventColumns } from './pg/events.js';
export { sqliteStores, type SiemStoreFactory, type SiemStoreOptions, type SiemStores } from './stores.js';
export {
  ACK_HISTORY,
  BATCH_KEY_PRUNE_MS,
  BATCH_KEY_RETENTION_MS,
  BATCH_KEYS_PER_REPORTER,
  type BatchKey,
  type BatchOutcome,
  MAX_COUNT_BUCKETS,
  MAX_COUNT_RULES,
  type CountQuery,
  type AckRecord,
  type AckStore,
  type AlertQuery,
  type AlertStatus,
  type DecisionChanges,
  type EventBatch,
  type EventWriter,
  type InventoryStore,
  type SessionRecord,
  type SessionStore,
  type SiemStore,
  type StoreMetric,
  type TimelineEntity,
  type TimelineQuery,
  type UserRecord,
  type UserStore,
} from './store.js';
