// The SIEM part's face: the service and its commands, what a running SIEM offers, the analysts'
// dashboard and its stores. The store, the correlation engine and the response playbooks have
// faces of their own (siem/store/, siem/correlate/, siem/playbooks/).
export { runSiemCommand, defaultPolicyDir } from './cli.js';
export { startSiemServer, type SiemServerOptions } from './server.js';
export type { RunningSiem } from './running-siem.js';
export {
  sqliteDashboardStores,
  sqliteInventoryStore,
  sqliteSessionStore,
  sqliteStores,
  sqliteUserStore,
  type SiemStoreFactory,
  type SiemStoreOptions,
  type SiemStores,
} from './store/index.js';
export {
  createAnalystAuthorizer,
  createCaRevoker,
  createDashboardApi,
  type AnalystExtension,
  type DashboardApiOptions,
  type Principal,
} from './service/index.js';
export { openDashboardDb, DASHBOARD_DB } from './dashboard/cli.js';
export { startDashboard, type DashboardOptions, type RunningDashboard } from './dashboard/server.js';
export { DashboardUsers, type Role } from './dashboard/users.js';
export { DashboardSessions } from './dashboard/sessions.js';
export { Inventory, quarantineSet, type QuarantineSet } from './dashboard/inventory.js';
