// The alert→decision step: what the response engine made of a batch of alerts becomes counts by
// outcome and the revocations to carry to the CA (revoking rules only, revocable scopes only).
import { describe, expect, it } from 'vitest';
import { parsePlaybookTexts } from '../../../policies/index.js';
import { ResponseEngine } from '../../../siem/playbooks/index.js';
import { respondToAlerts } from '../../../siem/service/alert-response.js';
import { alertOf } from '../../helpers/alerts.js';
import { SAMPLE_PLAYBOOKS } from '../../helpers/playbooks.js';

const TD = 'factory.example';
const NOW = Date.UTC(2026, 0, 1, 12);
const DEV = `spiffe://${TD}/device/d1`;
const CONFIG = parsePlaybookTexts([
  { name: 'settings.yaml', text: 'kind: response-settings\nblast-radius: { max-per-minute: 100 }\n' },
  {
    name: 'pb.yaml',
    text: SAMPLE_PLAYBOOKS,
  },
]);

function outcomeOf(alerts: ReturnType<typeof alertOf>[]) {
  const engine = new ResponseEngine({ trustDomain: TD, config: CONFIG });
  return engine.handleAlerts(alerts, NOW);
}

const alerts = [
  alertOf('a-id', NOW, { 'source.identity': DEV }, { ruleId: 'r-id' }),
  alertOf('a-ip', NOW, { 'source.ip': '192.0.2.7' }, { ruleId: 'r-ip' }),
  alertOf('a-sim', NOW, { 'source.identity': `spiffe://${TD}/device/d2` }, { ruleId: 'r-sim' }),
];

describe('respondToAlerts', () => {
  it('counts what the engine did, by outcome', () => {
    const r = respondToAlerts(alerts, outcomeOf(alerts), { revokeRules: new Set(), canRevoke: true });
    expect(r.outcomes).toEqual([
      ['applied', 2],
      ['simulated', 1],
    ]);
    expect(r.revocations).toEqual([]);
  });

  it('revokes the decisions of revoking rules whose scope the CA can revoke', () => {
    const outcome = outcomeOf(alerts);
    const r = respondToAlerts(alerts, outcome, { revokeRules: new Set(['r-id', 'r-ip']), canRevoke: true });
    const byIdentity = outcome.applied.find((d) => d.scope.type === 'identity');
    // The address decision is not revocable at the CA; the simulated one is not applied.
    expect(r.revocations).toEqual([
      { decisionId: byIdentity?.id, scope: { type: 'identity', value: DEV }, reason: byIdentity?.reason },
    ]);
  });

  it('revokes nothing without a CA', () => {
    const r = respondToAlerts(alerts, outcomeOf(alerts), {
      revokeRules: new Set(['r-id']),
      canRevoke: false,
    });
    expect(r.revocations).toEqual([]);
  });

  it('counts each skipped alert under its reason', () => {
    // Neither alert names an identity for the identity playbook: both are skipped, no value.
    const bare = [
      alertOf('a-1', NOW, { 'source.ip': '192.0.2.1' }, { ruleId: 'r-id' }),
      alertOf('a-2', NOW, { 'source.ip': '192.0.2.2' }, { ruleId: 'r-id' }),
    ];
    const r = respondToAlerts(bare, outcomeOf(bare), { revokeRules: new Set(['r-id']), canRevoke: true });
    expect(r.outcomes).toEqual([
      ['skipped_no-value', 1],
      ['skipped_no-value', 1],
    ]);
    expect(r.revocations).toEqual([]);
  });
});
