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

describe('text format', () => {
  it('escapes backslash, quote and newline in label values, so a hostile value cannot add a line', () => {
    const r = new Registry();
    const c = r.counter('req_total', 'requests');
    c.inc({ method: 'a"b\\c\nreq_total{method="x"} 99' });
    const lines = r.render().split('\n');
    expect(lines).toEqual([
      '# HELP req_total requests',
      '# TYPE req_total counter',
      'req_total{method="a\\"b\\\\c\\nreq_total{method=\\"x\\"} 99"} 1',
      '',
    ]);
  });
  it('one series per label set whatever the key order; gauges are set, counters add', () => {
    const r = new Registry();
    const c = r.counter('c_total', 'c');
    c.inc({ a: '1', b: '2' });
    c.inc({ b: '2', a: '1' }, 2);
    expect(c.get({ b: '2', a: '1' })).toBe(3);
    expect(c.size).toBe(1);
    const g = r.gauge('g', 'g');
    g.set({ q: 'x' }, 5);
    g.set({ q: 'x' }, 2);
    g.inc();
    expect(r.render()).toContain('# TYPE g gauge\ng{q="x"} 2\ng 1\n');
    c.reset();
    expect(c.size).toBe(0);
  });
  it('renders cumulative histogram buckets, +Inf, sum and count', () => {
    const r = new Registry();
    const h = r.histogram('lat_seconds', 'latency', [0.1, 1]);
    for (const s of [0.05, 0.1, 0.5, 3]) h.observe(s);
    expect(r.render()).toBe(
      [
        '# HELP lat_seconds latency',
        '# TYPE lat_seconds histogram',
        'lat_seconds_bucket{le="0.1"} 2',
        'lat_seconds_bucket{le="1"} 3',
        'lat_seconds_bucket{le="+Inf"} 4',
        'lat_seconds_sum 3.65',
        'lat_seconds_count 4',
        '',
      ].join('\n'),
    );
  });
  it('a metric-specific cap applies per label name', () => {
    const c = new Registry().counter('x_total', 'x', { maxLabelValues: 2 });
    for (const v of ['a', 'b', 'c', 'd']) c.inc({ v });
    expect(c.get({ v: 'other' })).toBe(2);
    c.inc({ v: 'other' });
    expect(c.get({ v: 'other' })).toBe(3);
  });
});
