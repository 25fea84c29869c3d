// The rule language's public face: Sigma-style detection and correlation rules in YAML.
export { checkRuleFile } from './check-rule-file.js';
export { loadRules } from './load-rules.js';
export {
  parseRuleText,
  resolveRules,
  TEST_EPOCH,
  MAX_RULE_FILE,
  MAX_THRESHOLD,
  type ParsedFile,
} from './parse.js';
export {
  compileRuleRegex,
  backtrackingConstruct,
  MAX_REGEX_LENGTH,
  type RuleRegex,
  type RuleRegexFlag,
} from './linear-regex.js';
export type {
  CorrelationRule,
  CorrelationType,
  DetectionRule,
  Level,
  Rule,
  RuleSet,
  RuleTest,
} from './types.js';
export { LEVELS } from './types.js';
