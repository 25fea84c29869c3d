// Runs the tests written inside rule files (events that must fire a rule, near misses that must
// not) through the real engine, one fresh engine per test. Used by the test suite and the CLI.
import { EdgewardError } from '../../common/errors.js';
import type { RuleSet } from '../../policies/rules/index.js';
import { Correlator } from './correlator.js';

export interface RuleTestResult {
  readonly ruleId: string;
  readonly test: string;
  readonly expected: number;
  readonly got: number;
  readonly pass: boolean;
}

/** The rule plus the base rules it needs, alone, so other rules cannot mask a result. */
function subset(rules: RuleSet, id: string): RuleSet {
  const corr = rules.correlations.find((c) => c.id === id);
  if (corr === undefined) {
    // A base rule's own tests count its matches, whether or not it raises alerts in the pack.
    return {
      detections: rules.detections.filter((d) => d.id === id).map((d) => ({ ...d, generate: true })),
      correlations: [],
    };
  }
  // The rules it refers to, and theirs for a chain.
  const needed = new Set<string>();
  const add = (ids: readonly string[]) => {
    for (const x of ids) {
      if (needed.has(x)) continue;
      needed.add(x);
      const inner = rules.correlations.find((c) => c.id === x);
      if (inner !== undefined) add(inner.rules);
    }
  };
  add(corr.rules);
  return {
    detections: rules.detections.filter((d) => needed.has(d.id)).map((d) => ({ ...d, generate: false })),
    correlations: [
      ...rules.correlations.filter((c) => needed.has(c.id)).map((c) => ({ ...c, generate: false })),
      { ...corr, generate: true },
    ],
  };
}

export function runRuleTests(rules: RuleSet): RuleTestResult[] {
  const results: RuleTestResult[] = [];
  for (const rule of [...rules.detections, ...rules.correlations]) {
    for (const test of rule.tests) {
      const engine = new Correlator(subset(rules, rule.id));
      const got = engine.feed(test.events).filter((a) => a.ruleId === rule.id).length;
      results.push({
        ruleId: rule.id,
        test: test.name,
        expected: test.expect,
        got,
        pass: got === test.expect,
      });
    }
  }
  return results;
}

/** Runs the embedded tests and throws ERR_POLICY_RULE_TEST_FAILED listing the failures, if any. */
export function assertRuleTests(rules: RuleSet): RuleTestResult[] {
  const results = runRuleTests(rules);
  const failed = results.filter((r) => !r.pass);
  if (failed.length > 0) {
    const first = failed[0] as RuleTestResult;
    throw new EdgewardError(
      'ERR_POLICY_RULE_TEST_FAILED',
      `${first.ruleId}: test "${first.test}" expected ${first.expected} alert(s), got ${first.got}` +
        (failed.length > 1 ? ` (and ${failed.length - 1} more)` : ''),
      { detail: { failed } },
    );
  }
  return results;
}
