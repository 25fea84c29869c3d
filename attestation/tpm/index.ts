// Public face of TPM 2.0 attestation: the `tpm` method (server side), the prover (device side),
// reference PCRs for a policy, the software TPM fixture, and the pure verifier pieces other parts
// and tests may use.
export { createTpmMethod, ekSha256Of, TPM_METHOD, NONCE_NAMESPACE, QUOTE_NAMESPACE } from './method.js';
export type { TpmBindingRecord, TpmMethodOptions } from './method.js';
export { createTpmProver, readPcrValues, AK_ATTRIBUTES } from './prover.js';
export type { TpmProverOptions } from './prover.js';
export { createToolRunner } from './tools.js';
export type { ToolRunner } from './tools.js';
export { makeCredential, credentialFromSeed, toTpm2ToolsCredentialFile } from './make-credential.js';
export type { Credential } from './make-credential.js';
export { verifyQuote, checkQuotePcrs, verifyTpmSignature } from './verify-quote.js';
export type { QuoteInput, QuoteResult, PcrValues, GoldenPcrs } from './verify-quote.js';
export { verifyEkChain, parseEkCertificate, TCG_EK_CERTIFICATE_EKU } from './ek-chain.js';
export type { EkTrustAnchors, EkChainResult } from './ek-chain.js';
export { checkAkPublic, checkEkPublic } from './key-checks.js';
export { objectName } from './names.js';
export { kdfa, kdfe } from './kdf.js';
export { qualifyingData, checkQualifyingData, NONCE_BYTES } from './binding.js';
export {
  DEFAULT_REFERENCE_PCRS,
  formatPcrPolicy,
  POLICY_PCRS_USAGE,
  readReferencePcrs,
  runPolicyPcrsCommand,
  type ReferencePcrsOptions,
} from './pcrs.js';
export {
  createTestManufacturer,
  policyTrustingMaker,
  startSwtpm,
  type Swtpm,
  type TestManufacturer,
} from './swtpm.js';
export * from './wire.js';
export * from './structures/index.js';
