// The SIEM's public face: the service, its command, and the pieces verifiers and the CA use.
export { runSiemCommand, defaultPolicyDir } from './cli.js';
export { startSiemServer, type RunningSiem, type SiemServerOptions } from './server.js';
export {
  createAnalystAuthorizer,
  createCaRevoker,
  verifySiemChain,
  type AnalystExtension,
  type Principal,
  type SiemDecisionKey,
} from './service/index.js';
