// Response playbooks at work: alerts -> versioned decisions (pure). The playbook language and its
// loader are the policies part's (policies/playbooks/).
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
