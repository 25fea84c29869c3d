// Public face of PUF attestation: the method (CA side), the prover (device side), provisioning,
// registration, the record format, the simulator and the evaluation.
export { createPufMethod, PUF_METHOD, type PufMethod, type PufMethodOptions } from './method.js';
export { createPufProver, openPuf, type PufProver, type PufProverOptions } from './prover.js';
export { provisionPuf, type ProvisionOptions } from './provision.js';
export { signedMessage, type PufMode } from './protocol.js';
export { helperHash, reconstructKey } from './fuzzy-extractor.js';
export { importPufRecord, validatePufRecord } from './import.js';
export {
  parsePufRecord,
  parsePufRecordText,
  pufRecordToJson,
  MAX_RECORD_BYTES,
  MAX_CRPS,
  type PufRecord,
  type PufRecordJson,
} from './record.js';
export { createSimPuf, parsePufSpec, type Puf, type SimPuf, type SimPufOptions } from './simulator.js';
export { PROFILE_V1, type PufProfile } from './profile.js';
export { runPufEval, analyticBound, type EvalRow } from './eval.js';
export { runPufCommand } from './cli.js';
