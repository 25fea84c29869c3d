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
  type ParseOptions,
} from './parse.js';
export type { IndexKeys, Placeholders } from './detection.js';
export {
  parsePipeline,
  parsePlaceholders,
  mappingsFor,
  mapField,
  type Pipeline,
  type Mapping,
} from './pipeline.js';
export {
  compileRuleRegex,
  backtrackingConstruct,
  MAX_REGEX_LENGTH,
  type RuleRegex,
  type RuleRegexFlag,
} from './linear-regex.js';
export type {
  CompareOp,
  Criterion,
  CorrelationRule,
  CorrelationType,
  DetectionRule,
  Level,
  Rule,
  RuleSet,
  RuleTest,
} from './types.js';
export { CORRELATION_TYPES, LEVELS } from './types.js';
