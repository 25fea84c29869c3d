// The default rule pack: every file passes `policy check`, every alerting rule has a test that
// fires it and a near miss that must not, and every embedded test passes on the real engine.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkRuleFile, loadRules } from '../../../policies/rules/index.js';
import { assertRuleTests, runRuleTests } from '../../../siem/correlate/index.js';

const DIR = join(import.meta.dirname, '../../../policies/default/rules');

describe('default rule pack', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml'));

  it('has the six detections the issue asks for', () => {
    expect(files.sort()).toEqual([
      'attestation-failures.yaml',
      'cloned-credential.yaml',
      'handshake-failures.yaml',
      'lateral-movement.yaml',
      'pcr-mismatch-renewal.yaml',
      'policy-denials.yaml',
    ]);
  });

  for (const f of files) {
    it(`${f} passes policy check on its own`, () => {
      const rules = checkRuleFile(readFileSync(join(DIR, f), 'utf8'), f);
      expect(rules.correlations.length).toBeGreaterThan(0);
    });
  }

  it('every correlation has a firing test and a near miss', async () => {
    const rules = await loadRules(DIR);
    expect(rules.correlations).toHaveLength(7);
    for (const c of rules.correlations) {
      expect(
        c.tests.some((t) => t.expect > 0),
        `${c.id} needs a firing test`,
      ).toBe(true);
      expect(
        c.tests.some((t) => t.expect === 0),
        `${c.id} needs a near miss`,
      ).toBe(true);
    }
  });

  it('every embedded rule test passes on the real engine', async () => {
    const results = assertRuleTests(await loadRules(DIR));
    expect(results.length).toBeGreaterThan(30);
    const failed = results.filter((r) => !r.pass);
    expect(failed).toEqual([]);
  });

  it('base rules of correlations do not raise alerts of their own', async () => {
    const rules = await loadRules(DIR);
    for (const d of rules.detections) expect(d.generate, d.id).toBe(false);
  });
});

describe('runRuleTests', () => {
  it('reports a test whose expectation is wrong as failed, with what it got', () => {
    const rules = checkRuleFile(
      [
        'title: b\nid: base\nlogsource: { product: edgeward }\ndetection:\n  s: { event.action: handshake.failure }\n  condition: s\n---',
        'title: c\nid: corr\ncorrelation:\n  type: event_count\n  rules: [base]\n  group-by: [source.ip]\n  timespan: 1m\n  condition: { gte: 2 }',
        'tests:\n  - name: wrong\n    expect: 0\n    events:\n      - { at: 0s, repeat: 2, every: 1s, event: { event.action: handshake.failure, source.ip: 192.0.2.1 } }\n',
      ].join('\n'),
    );
    expect(runRuleTests(rules)).toEqual([
      { ruleId: 'corr', test: 'wrong', expected: 0, got: 1, pass: false },
    ]);
  });
});
