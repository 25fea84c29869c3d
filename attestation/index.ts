// The attestation part's face: the interface every method implements, the registry of methods by
// name, and the `token` method. The TPM and the PUF have faces of their own (attestation/tpm/,
// attestation/puf/) for what only they offer.
export { evidenceOf, withEvidence } from './method.js';
export type {
  AttestationEvidence,
  AttestationMethod,
  CheckVerdict,
  BeginResult,
  CsrKey,
  MethodContext,
  MethodStoreReader,
  MethodStoreWriter,
  Prover,
  Verdict,
} from './method.js';
export type { MethodEntry, MethodServerDeps, ProverRequest } from './entry.js';
export {
  ATTEST_OPTIONS,
  attestOptionsOf,
  CONFIG_ATTEST_USAGE,
  ENROLL_ATTEST_USAGE,
  METHOD_NAMES,
  METHODS,
  methodEntry,
  proverFor,
  RENEW_ATTEST_USAGE,
  serverMethods,
} from './registry.js';
export {
  createTokenMethod,
  createTokenProver,
  hashToken,
  newJoinToken,
  type TokenRecord,
} from './token/method.js';
