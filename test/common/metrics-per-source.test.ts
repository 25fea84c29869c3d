// Label values that come from a reporter: one reporter cannot use up a label's values for every
// other (what it adds beyond its own cap counts under `other`), and the SIEM takes both caps from
// the reporter policy's budgets.
import { describe, expect, it } from 'vitest';
import { Registry } from '../../common/metrics.js';
import { parseReporterPolicy } from '../../policies/index.js';
import { createSiemMetrics } from '../../siem/service/index.js';

describe('label values per source', () => {
  it('a reporter refused with many codes adds at most its own cap, and another reporter’s codes still show', () => {
    const c = new Registry().counter('x_total', 'x', { maxLabelValues: 20, maxValuesPerSource: 4 });
    for (let i = 0; i < 100; i++) c.inc({ code: `ERR_FORGED_${i}` }, 1, 'spiffe://td/node/flood');
    expect(c.get({ code: 'other' })).toBe(96);
    expect(c.size).toBe(5);
    // An honest reporter's value is its own series, not `other`.
    c.inc({ code: 'ERR_SIEM_REPORTER_ACTION' }, 1, 'spiffe://td/node/honest');
    expect(c.get({ code: 'ERR_SIEM_REPORTER_ACTION' })).toBe(1);
    // Values already there count for anyone, whoever added them.
    c.inc({ code: 'ERR_FORGED_0' }, 1, 'spiffe://td/node/honest');
    expect(c.get({ code: 'ERR_FORGED_0' })).toBe(2);
  });

  it('the SIEM’s refusal counter takes its caps from the reporter policy budgets', () => {
    const policy = parseReporterPolicy(
      'kind: reporter-policy\nbudgets: { metric-label-values: 2, metric-reporters: 3 }\n',
      'p.yaml',
    );
    expect(policy.budgets).toMatchObject({ metricLabelValues: 2, metricReporters: 3 });
    const m = createSiemMetrics(policy.budgets);
    const r = (name: string) => `spiffe://td/node/${name}`;
    for (const code of ['A', 'B', 'C', 'D'])
      m.reporterRefusals.inc({ kind: 'node', reporter: r('flood'), code }, 1, r('flood'));
    expect(m.reporterRefusals.get({ kind: 'node', reporter: r('flood'), code: 'other' })).toBe(2);
    for (const n of ['n1', 'n2', 'n3'])
      m.reporterRefusals.inc({ kind: 'node', reporter: r(n), code: 'A' }, 1, r(n));
    // Three reporters named at most: the fourth counts as other.
    expect(m.reporterRefusals.get({ kind: 'node', reporter: 'other', code: 'A' })).toBe(1);
  });

  it('refuses budgets outside their bounds', () => {
    for (const b of ['metric-label-values: 0', 'metric-reporters: 0', 'correlation-entries: 100'])
      expect(() => parseReporterPolicy(`kind: reporter-policy\nbudgets: { ${b} }\n`, 'p.yaml')).toThrow(
        expect.objectContaining({ code: 'ERR_POLICY_REPORTER_SCHEMA' }),
      );
  });
});
