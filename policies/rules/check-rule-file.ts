// `edgeward policy check` for rule files: parses, compiles and resolves one file on its own
// (correlations must sit in the same file as their base rules) and validates its test events.
import { parseRuleText, resolveRules, type ParseOptions } from './parse.js';
import type { RuleSet } from './types.js';

/** Throws an EdgewardError with an ERR_POLICY_RULE_* code on the first problem. */
export function checkRuleFile(text: string, file = 'rules', opts: ParseOptions = {}): RuleSet {
  return resolveRules([parseRuleText(text, file, opts)]);
}
