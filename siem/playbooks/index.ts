// Response playbooks' public face: alerts -> versioned decisions (pure), and their YAML loader.
export { loadPlaybooks, parsePlaybookTexts } from '../../policies/playbooks/parse-playbooks.js';
export {
  ResponseEngine,
  type DeltaAnswer,
  type ManualDecision,
  type PendingDecision,
  type Proposal,
  type ResponseEngineOptions,
  type ResponseOutcome,
  type ResponseState,
  type SimulatedDecision,
  type Skipped,
} from './response-engine.js';
export { isAllowlisted, isProtected, patternsOverlap, scopeKey } from './scope.js';
export {
  DEFAULT_SETTINGS,
  type Escalation,
  type Playbook,
  type PlaybookAction,
  type PlaybookConfig,
  type ResponseSettings,
} from '../../policies/playbooks/types.js';
