// The policies part's face: who may talk to whom (authz), the attestation policy, the reporter
// policy, the playbook language and where the default files are. The rule language has a face of
// its own (policies/rules/), so that what loads a policy does not load the rule engine.
export { authorize, compileAuthz, type AuthzPolicy, type AuthzVerdict } from './authz.js';
export {
  checkAttestationPolicy,
  DEFAULT_NONCE_TTL_MS,
  describeAttestationPolicy,
  loadAttestationPolicy,
  methodsFor,
  PCR_BANKS,
  ruleFor,
  type AttestationPolicy,
  type CheckOptions,
  type IdentityRule,
  type PcrBank,
  type TpmPatternPolicy,
} from './attestation-policy.js';
export {
  compileReporterPolicy,
  DEFAULT_BUDGETS,
  describeReporterPolicy,
  loadReporterPolicy,
  parseReporterPolicy,
  type CompiledReporterPolicy,
  type ReporterBudgets,
  type ReporterPolicy,
  type ReporterRefusal,
  type ReporterRule,
} from './reporter-policy.js';
export { loadPlaybooks, parsePlaybookTexts } from './playbooks/parse-playbooks.js';
export {
  DEFAULT_SETTINGS,
  type DecisionBudget,
  type Escalation,
  type Playbook,
  type PlaybookAction,
  type PlaybookConfig,
  type ReservedBudget,
  type ResponseSettings,
} from './playbooks/types.js';
export { defaultPolicyPath } from './defaults.js';
