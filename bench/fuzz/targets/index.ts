// Every fuzz target by name, in the order the smoke test and `npm run fuzz` run them.
import type { FuzzTarget } from '../engine.js';
import { crl, csr, csrText, der, ekChain, pem } from './x509.js';
import { batchJson, batchNdjson, proxyV2, sse } from './wire.js';
import { decisionJws, decisionPayload, joinToken, session } from './signed.js';
import { pufChallenge, pufRecord } from './puf.js';
import { agentConfig, attestationPolicy, playbooks, reporterPolicy, rules } from './yaml.js';
import { pcrSelection, quote, tpm2bPublic, tpmsAttest, tpmtSignature } from './tpm.js';

export const TARGETS: readonly FuzzTarget<never>[] = [
  tpm2bPublic,
  tpmsAttest,
  tpmtSignature,
  pcrSelection,
  quote,
  der,
  pem,
  csr,
  csrText,
  crl,
  ekChain,
  proxyV2,
  sse,
  batchJson,
  batchNdjson,
  decisionJws,
  decisionPayload,
  session,
  joinToken,
  pufRecord,
  pufChallenge,
  rules,
  playbooks,
  attestationPolicy,
  reporterPolicy,
  agentConfig,
] as unknown as FuzzTarget<never>[];

export function targetByName(name: string): FuzzTarget<never> | undefined {
  return TARGETS.find((t) => t.name === name);
}
