// With real processes: rule regexes compile on RE2 in `edgeward policy check`
// and in `siem serve` alike, so a pattern that backtracks catastrophically on V8 cannot stall the
// SIEM's event loop, and what needs backtracking is refused by both with the same code.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { edgeward } from '../helpers/cli.js';
import { startMesh } from '../helpers/mesh.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('edgeward-regex-');
const LONG = 'a'.repeat(1024);

function ruleDir(name: string, rule: string): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'regex.yaml'), rule);
  return d;
}

// `.*.*.*.*.*x` took 2.4 s on 100 characters and 18 s on 200 on V8; 1024 would take days.
const PATHOLOGICAL = `title: pathological but linear
id: ew-test-pathological
logsource: { product: edgeward }
detection:
  sel:
    message|re: '.*.*.*.*.*x'
  condition: sel
tests:
  - name: the longest message finishes and does not match
    expect: 0
    events:
      - event: { event.action: probe, message: '${LONG}' }
  - name: a message ending in x matches
    expect: 1
    events:
      - event: { event.action: probe, message: '${'a'.repeat(1000)}x' }
`;

const LOOKAHEAD = `title: needs backtracking
id: ew-test-lookahead
logsource: { product: edgeward }
detection:
  sel:
    event.reason|re: 'unknown(?=_ca)'
  condition: sel
`;

describe('linear-time rule regexes (policy check and siem serve)', () => {
  it('policy check runs a pathological regex on the longest field to completion', () => {
    const f = join(ruleDir('linear', PATHOLOGICAL), 'regex.yaml');
    const r = edgeward(['policy', 'check', f]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/regex.yaml: rules OK .* embedded tests pass/);
  });

  it('the SIEM ingests and correlates that event and keeps answering', async () => {
    // The test's node may report its probe events (the default reporter policy would refuse them).
    const policy = join(dir, 'reporter-policy.yaml');
    writeFileSync(
      policy,
      'kind: reporter-policy\nreporters:\n  - { id: probes, kinds: [node], actions: [probe], about: anyone }\nsubscribers: [ca, node]\n',
    );
    const mesh = await startMesh({
      siemArgs: ['--rules', ruleDir('linear-siem', PATHOLOGICAL), '--reporter-policy', policy],
    });
    try {
      const reporter = await mesh.enroll('node/n9');
      const r = await mesh.report(reporter, [
        { '@timestamp': Date.now(), 'event.action': 'probe', message: LONG },
        { '@timestamp': Date.now(), 'event.action': 'probe', message: `${'a'.repeat(1000)}x` },
      ]);
      expect(r.status, r.body.toString()).toBeLessThan(300);
      // The matching event raises the rule's alert: both events went through the regex.
      const end = Date.now() + 30_000;
      let alerts: unknown[] = [];
      while (alerts.length === 0 && Date.now() < end) {
        const a = await mesh.call(`${mesh.siemUrl}/v1/alerts?rule=ew-test-pathological`, mesh.admin);
        alerts = (a.json?.['alerts'] ?? []) as unknown[];
        if (alerts.length === 0) await new Promise((res) => setTimeout(res, 100));
      }
      expect(alerts).toHaveLength(1);
      expect((await mesh.call(`${mesh.siemUrl}/healthz`, undefined)).status).toBe(200);
    } finally {
      await mesh.stop();
    }
  });

  it('a lookahead is refused by both, with ERR_POLICY_RULE_REGEX_UNSAFE naming the file and key', async () => {
    const d = ruleDir('lookahead', LOOKAHEAD);
    const r = edgeward(['policy', 'check', join(d, 'regex.yaml')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('ERR_POLICY_RULE_REGEX_UNSAFE');
    expect(r.stderr).toMatch(/regex\.yaml#0\.detection\.sel\.event\.reason\|re: /);
    await expect(startMesh({ siemArgs: ['--rules', d] })).rejects.toThrow(
      /siem exited[\s\S]*ERR_POLICY_RULE_REGEX_UNSAFE[\s\S]*regex\.yaml#0\.detection\.sel\.event\.reason\|re: /,
    );
  });
});
