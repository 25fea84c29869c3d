// The correlation engine's public face: a pure, event-time core (no clock, no I/O).
export { Correlator } from './correlator.js';
export { assertRuleTests, runRuleTests, type RuleTestResult } from './run-rule-tests.js';
export {
  DEFAULT_OPTIONS,
  type Alert,
  type ChainForward,
  type CorrelatorOptions,
  type CorrelatorStats,
} from './types.js';
