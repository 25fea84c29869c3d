// The SIEM store's public face: the domain's interface and its SQLite adapter.
export { applyRetention, openSqliteStore, stateFileOf, type SqliteStoreOptions } from './sqlite-store.js';
export type {
  AlertQuery,
  AlertStatus,
  DecisionChanges,
  SiemStore,
  TimelineEntity,
  TimelineQuery,
} from './store.js';
