// The CA part's face: the service, the CA folder (init, file names, store), the
// service names it vouches for, and its follower of the SIEM's decisions.
export { startCaServer, type CaServerOptions, type RunningCa } from './server.js';
export { initCa, type InitOptions, type InitOutcome } from './init.js';
export { createAuthority, FILES, loadAuthority } from './authority.js';
export { verifyAuditChain, type AuditRecord } from './audit.js';
export { openCaStore } from './store-sqlite.js';
export { openPostgresCaStore } from './store-postgres.js';
export type { CaStore, CaStoreFactory, CertRecord, Standing, StoreTx } from './store.js';
export type { CaEvent, EnrollmentPolicy } from './service.js';
export {
  listenHostNames,
  NO_SERVICE_NAMES,
  parseServiceNames,
  permittedHostNames,
  serviceNamesFromJson,
  type ServiceNames,
} from './service-names.js';
export { createCaDecisionFollower, type CaDecisionFollower } from './siem-follower.js';
export { openSealedSession, sealSession, type SessionClaims } from './sessions.js';
