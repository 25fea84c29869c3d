// The Prometheus registry: label values beyond a metric's cap count under `other`, so values
// chosen by requests (a method name, an identity) cannot add series without end.
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_LABEL_VALUES, Registry } from '../../common/metrics.js';

describe('metric label caps', () => {
  it('keeps at most the cap of distinct values per label, the rest under other', () => {
    const r = new Registry();
    const c = r.counter('x_total', 'x');
    for (let i = 0; i < 1000; i++) c.inc({ method: `m${i}`, outcome: 'failure' });
    expect(c.size).toBe(DEFAULT_MAX_LABEL_VALUES + 1);
    expect(c.get({ method: 'other', outcome: 'failure' })).toBe(1000 - DEFAULT_MAX_LABEL_VALUES);
    // Values seen before the cap keep their own series; a bounded label is untouched.
    c.inc({ method: 'm3', outcome: 'success' });
    expect(c.get({ method: 'm3', outcome: 'success' })).toBe(1);
    expect(
      r
        .render()
        .split('\n')
        .filter((l) => l.startsWith('x_total{')).length,
    ).toBe(DEFAULT_MAX_LABEL_VALUES + 2);
  });

  it('takes a cap per metric', () => {
    const g = new Registry().gauge('y', 'y', { maxLabelValues: 2 });
    for (const v of ['a', 'b', 'c', 'd']) g.set({ rule: v }, 1);
    expect(g.size).toBe(3);
    expect(g.get({ rule: 'other' })).toBe(1);
  });
});
