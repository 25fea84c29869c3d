// The correlation engine's semantics: half-open windows, group keys, out-of-order tolerance,
// lateness, suppression, sequences and the memory caps.
import { describe, expect, it } from 'vitest';
import { validateEvent, type EdgeEvent } from '../../../common/events.js';
import { checkRuleFile, type RuleSet } from '../../../policies/rules/index.js';
import { Correlator } from '../../../siem/correlate/index.js';

const T = Date.UTC(2026, 0, 1);
let seq = 0;
function ev(at: number, fields: Record<string, unknown> = {}): EdgeEvent {
  return validateEvent(
    {
      '@timestamp': T + at,
      'event.action': 'handshake.failure',
      'source.ip': '10.0.0.1',
      'event.id': `e${seq++}`,
      ...fields,
    },
    { mode: 'stored' },
  );
}

const BASE =
  'title: b\nid: base\nlogsource: { product: edgeward }\ndetection:\n  s: { event.action: handshake.failure }\n  condition: s\n';
function countRule(cond: string, extra = ''): RuleSet {
  return checkRuleFile(
    `${BASE}---\ntitle: c\nid: c\nlevel: high\n${extra}correlation:\n  type: event_count\n  rules: [base]\n  group-by: [source.ip]\n  timespan: 10s\n  condition: ${cond}\n`,
  );
}

describe('event_count', () => {
  it('fires when the threshold is reached inside (end - timespan, end]', () => {
    const c = new Correlator(countRule('{ gte: 3 }'));
    const alerts = c.feed([ev(0), ev(5000), ev(9999)]);
    expect(alerts).toHaveLength(1);
    const a = alerts[0]!;
    expect(a.ruleId).toBe('c');
    expect(a.level).toBe('high');
    expect(a.count).toBe(3);
    expect(a.time).toBe(T + 9999);
    expect(a.windowStart).toBe(T);
    expect(a.groupBy).toEqual({ 'source.ip': '10.0.0.1' });
    expect(a.events).toHaveLength(3);
    expect(a.trigger['@timestamp']).toBe(T + 9999);
  });

  it('an event exactly one timespan older is outside the window', () => {
    const c = new Correlator(countRule('{ gte: 3 }'));
    expect(c.feed([ev(0), ev(5000), ev(10_000)])).toHaveLength(0);
  });

  it('gt needs one more than gte', () => {
    expect(new Correlator(countRule('{ gt: 3 }')).feed([ev(0), ev(1), ev(2)])).toHaveLength(0);
    expect(new Correlator(countRule('{ gt: 3 }')).feed([ev(0), ev(1), ev(2), ev(3)])).toHaveLength(1);
  });

  it('counts per group key; events without the group-by field are not counted', () => {
    const c = new Correlator(countRule('{ gte: 2 }'));
    expect(c.feed([ev(0), ev(1, { 'source.ip': '10.0.0.2' }), ev(2, { 'source.ip': null })])).toHaveLength(0);
    expect(c.feed([ev(3, { 'source.ip': '10.0.0.2' })])[0]?.groupBy).toEqual({ 'source.ip': '10.0.0.2' });
  });

  it('tolerates out-of-order events within the lateness bound', () => {
    const c = new Correlator(countRule('{ gte: 3 }'), { latenessMs: 60_000 });
    const alerts = c.feed([ev(8000), ev(9000), ev(1000)]);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.windowStart).toBe(T + 1000);
    expect(alerts[0]?.time).toBe(T + 9000);
  });

  it('a late insert completes a window that ends at a later event', () => {
    // 10 s windows: the late 0.5 s event joins 2 s and 9 s in the window (-1 s, 9 s].
    const c = new Correlator(countRule('{ gte: 3 }'), { latenessMs: 60_000 });
    expect(c.feed([ev(2000), ev(9000), ev(20_000)])).toHaveLength(0);
    const alerts = c.feed([ev(500)]);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.time).toBe(T + 9000);
  });

  it('events older than the lateness bound are counted as late and not correlated', () => {
    const c = new Correlator(countRule('{ gte: 3 }'), { latenessMs: 1000 });
    expect(c.feed([ev(100_000), ev(100_001), ev(50_000)])).toHaveLength(0);
    expect(c.stats().late).toBe(1);
  });

  it('a reporter sending future times cannot push honest events out of the lateness bound', () => {
    const c = new Correlator(countRule('{ gte: 3 }'), { latenessMs: 60_000 });
    // Stamped at ingest time T, but claiming T + 5 minutes (what ingest still accepts).
    expect(c.feed([ev(300_000, { 'event.ingested': T, 'source.ip': '10.9.9.9' })])).toHaveLength(0);
    expect(
      c.feed([
        ev(0, { 'event.ingested': T }),
        ev(1, { 'event.ingested': T }),
        ev(2, { 'event.ingested': T }),
      ]),
    ).toHaveLength(1);
    expect(c.stats().late).toBe(0);
  });

  it('suppresses repeats for the suppress duration (default: the timespan)', () => {
    const c = new Correlator(countRule('{ gte: 2 }'));
    expect(c.feed([ev(0), ev(1000)])).toHaveLength(1);
    expect(c.feed([ev(2000), ev(3000), ev(10_999)])).toHaveLength(0);
    expect(c.stats().suppressed).toBe(3);
    expect(c.feed([ev(11_000)])).toHaveLength(1);
  });

  it('honours an explicit suppress of 0 (every qualifying event alerts)', () => {
    const c = new Correlator(countRule('{ gte: 2 }', 'suppress: 0s\n'));
    expect(c.feed([ev(0), ev(1), ev(2)])).toHaveLength(2);
  });

  it('gives the same alert ids for the same feed (idempotent)', () => {
    const feed = [ev(0), ev(1), ev(2)];
    const a = new Correlator(countRule('{ gte: 2 }')).feed(feed).map((x) => x.id);
    const b = new Correlator(countRule('{ gte: 2 }')).feed(feed).map((x) => x.id);
    expect(a).toEqual(b);
    expect(a[0]).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe('value_count', () => {
  const rules = checkRuleFile(
    `${BASE.replace('handshake.failure', 'connection.accepted')}---\ntitle: v\nid: v\ncorrelation:\n  type: value_count\n  rules: [base]\n  group-by: [tls.client.x509.serial_number]\n  timespan: 1m\n  condition: { gte: 3, field: source.ip }\n`,
  );
  const conn = (at: number, ip: string, serial = 'aa') =>
    ev(at, {
      'event.action': 'connection.accepted',
      'source.ip': ip,
      'tls.client.x509.serial_number': serial,
    });

  it('counts distinct values, not events', () => {
    const c = new Correlator(rules);
    expect(
      c.feed([conn(0, '10.0.0.1'), conn(1, '10.0.0.1'), conn(2, '10.0.0.2'), conn(3, '10.0.0.2')]),
    ).toHaveLength(0);
    const alerts = c.feed([conn(4, '10.0.0.3')]);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.count).toBe(3);
    expect([...(alerts[0]?.values ?? [])].sort()).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
  });

  it('values that left the window no longer count', () => {
    const c = new Correlator(rules);
    expect(c.feed([conn(0, '10.0.0.1'), conn(30_000, '10.0.0.2'), conn(60_000, '10.0.0.3')])).toHaveLength(0);
    expect(c.feed([conn(61_000, '10.0.0.2'), conn(62_000, '10.0.0.4')])).toHaveLength(1);
  });

  it('an out-of-order value completes the set', () => {
    const c = new Correlator(rules);
    expect(
      c.feed([conn(10_000, '10.0.0.1'), conn(20_000, '10.0.0.2'), conn(25_000, '10.0.0.2')]),
    ).toHaveLength(0);
    expect(c.feed([conn(5000, '10.0.0.9')])).toHaveLength(1);
  });

  it('a late value completes an earlier window while the newest one falls short', () => {
    const c = new Correlator(rules, { latenessMs: 120_000 });
    // The newest window (10 s, 70 s] holds one address; (-50 s, 10 s] held two.
    expect(c.feed([conn(0, '10.0.0.1'), conn(10_000, '10.0.0.2'), conn(70_000, '10.0.0.1')])).toHaveLength(0);
    const alerts = c.feed([conn(5000, '10.0.0.3')]);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.time).toBe(T + 10_000);
    expect([...(alerts[0]?.values ?? [])].sort()).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    // Every entry in one window with too few addresses: nothing, however late they come.
    const d = new Correlator(rules, { latenessMs: 120_000 });
    expect(
      d.feed([
        conn(30_000, '10.0.0.1', 'bb'),
        conn(40_000, '10.0.0.2', 'bb'),
        conn(20_000, '10.0.0.1', 'bb'),
      ]),
    ).toHaveLength(0);
  });
});

describe('temporal_ordered', () => {
  const rules = checkRuleFile(
    [
      'title: a\nid: a\nlogsource: { product: edgeward }\ndetection:\n  s: { event.action: attestation.failure }\n  condition: s\n',
      'title: b\nid: b\nlogsource: { product: edgeward }\ndetection:\n  s: { event.action: renewal.failure }\n  condition: s\n',
      'title: s\nid: s\ncorrelation:\n  type: temporal_ordered\n  rules: [a, b]\n  group-by: [source.identity]\n  timespan: 1m\n',
    ].join('---\n'),
  );
  const id = 'spiffe://factory.example/node/n1';
  const a = (at: number) => ev(at, { 'event.action': 'attestation.failure', 'source.identity': id });
  const b = (at: number) => ev(at, { 'event.action': 'renewal.failure', 'source.identity': id });

  it('fires on a then b within the timespan, not on b then a', () => {
    expect(new Correlator(rules).feed([a(0), b(1000)])).toHaveLength(1);
    expect(new Correlator(rules).feed([b(0), a(1000)])).toHaveLength(0);
  });

  it('needs strictly increasing times and a span below the timespan', () => {
    expect(new Correlator(rules).feed([a(0), b(0)])).toHaveLength(0);
    expect(new Correlator(rules).feed([a(0), b(60_000)])).toHaveLength(0);
    expect(new Correlator(rules).feed([a(0), b(59_999)])).toHaveLength(1);
  });

  it('matches when the first step arrives late (within the lateness bound)', () => {
    expect(new Correlator(rules).feed([b(30_000), a(10_000)])).toHaveLength(1);
  });

  it('a completed sequence is consumed: the next alert needs a new first step', () => {
    const c = new Correlator(rules, {});
    expect(c.feed([a(0), b(1000)])).toHaveLength(1);
    expect(c.feed([b(120_000)])).toHaveLength(0);
    expect(c.feed([a(130_000), b(140_000)])).toHaveLength(1);
  });
});

describe('detection rules that alert on their own', () => {
  it('alert per match, suppressed per suppress-by key', () => {
    const rules = checkRuleFile(
      'title: r\nid: rev\nlevel: critical\nsuppress: 1m\nsuppress-by: [source.identity]\nlogsource: { product: edgeward }\ndetection:\n  s: { event.action: revocation }\n  condition: s\n',
    );
    const c = new Correlator(rules);
    const r = (at: number, n: string) =>
      ev(at, { 'event.action': 'revocation', 'source.identity': `spiffe://factory.example/node/${n}` });
    const alerts = c.feed([r(0, 'a'), r(1, 'a'), r(2, 'b'), r(70_000, 'a')]);
    expect(alerts.map((x) => x.groupBy['source.identity'])).toEqual([
      'spiffe://factory.example/node/a',
      'spiffe://factory.example/node/b',
      'spiffe://factory.example/node/a',
    ]);
    expect(alerts[0]?.type).toBe('detection');
  });
});

describe('bounded memory', () => {
  it('evicts the least recently updated group beyond maxGroupsPerRule', () => {
    const c = new Correlator(countRule('{ gte: 2 }'), { maxGroupsPerRule: 2 });
    c.feed([
      ev(0, { 'source.ip': '10.0.0.1' }),
      ev(1, { 'source.ip': '10.0.0.2' }),
      ev(2, { 'source.ip': '10.0.0.3' }),
    ]);
    expect(c.stats().evictedGroups).toBe(1);
    expect(c.stats().groups).toBe(2);
    // 10.0.0.1 was evicted: its second event starts a fresh count.
    expect(c.feed([ev(3, { 'source.ip': '10.0.0.1' })])).toHaveLength(0);
    expect(c.feed([ev(4, { 'source.ip': '10.0.0.3' })])).toHaveLength(1);
  });

  it('keeps the number of groups at the cap however many keys arrive', () => {
    const c = new Correlator(countRule('{ gte: 5 }'), { maxGroupsPerRule: 100 });
    const events: EdgeEvent[] = [];
    for (let i = 0; i < 5000; i++) events.push(ev(i, { 'source.ip': `10.0.${i >> 8}.${i & 255}` }));
    c.feed(events);
    expect(c.stats().groups).toBe(100);
    expect(c.stats().evictedGroups).toBe(4900);
  });

  it('drops groups whose events left every window', () => {
    const c = new Correlator(countRule('{ gte: 50 }'), { latenessMs: 0 });
    const events: EdgeEvent[] = [];
    for (let i = 0; i < 40_000; i++)
      events.push(ev(i * 10, { 'source.ip': `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}` }));
    c.feed(events);
    // 40,000 keys seen; a sweep every 16,384 events keeps only keys with events in the last
    // timespan (10 s = 1,000 events) plus those that arrived since the last sweep.
    expect(c.stats().groups).toBeLessThanOrEqual(1_000 + (40_000 % 16_384));
    expect(c.stats().evictedGroups).toBe(0);
  });

  it('refuses caps too small for the largest threshold', () => {
    expect(() => new Correlator(countRule('{ gte: 2 }'), { maxEntriesPerGroup: 10 })).toThrow(TypeError);
  });
});

describe('reporters', () => {
  const N = (name: string) => `spiffe://factory.example/node/${name}`;
  const by = (name: string, at: number, ip: string) =>
    ev(at, { 'source.ip': ip, 'observer.identity': N(name), 'observer.type': 'node' });

  it('an alert names the reporters of the events behind it', () => {
    const c = new Correlator(countRule('{ gte: 3 }'));
    const [a] = c.feed([by('n1', 0, '10.0.0.9'), by('n2', 1, '10.0.0.9'), by('n1', 2, '10.0.0.9')]);
    expect([...(a?.reporters ?? [])].sort()).toEqual([N('n1'), N('n2')]);
  });

  it('a reporter inventing group keys forgets its own oldest keys, never another reporter’s', () => {
    const c = new Correlator(countRule('{ gte: 2 }'), { maxGroupsPerReporter: 100, latenessMs: 3_600_000 });
    // n2 starts a group that needs a second event; n1 then floods with 1,000 invented addresses.
    c.feed([by('n2', 0, '192.0.2.1')]);
    c.feed(Array.from({ length: 1000 }, (_, i) => by('n1', 1 + i, `10.1.${i >> 8}.${i & 255}`)));
    expect(c.stats().groups).toBe(101);
    expect(c.stats().evictedByReporter).toBe(900);
    // n2's group survived the flood: its second event completes it.
    const alerts = c.feed([by('n2', 2000, '192.0.2.1')]);
    expect(alerts.map((a) => a.groupBy)).toEqual([{ 'source.ip': '192.0.2.1' }]);
    expect(alerts[0]?.reporters).toEqual([N('n2')]);
  });
});

describe('the Sigma v2.1 correlation types', () => {
  const B2 =
    'title: b2\nid: base2\nlogsource: { product: edgeward }\ndetection:\n  s: { event.reason: expired }\n  condition: s\n';
  const set = (corr: string): RuleSet =>
    checkRuleFile(`${BASE}---\n${B2}---\ntitle: c\nid: c\nsuppress: 0s\ncorrelation:\n${corr}`);

  it('an event matching two base rules of one correlation counts once', () => {
    const c = new Correlator(
      set(
        '  type: event_count\n  rules: [base, base2]\n  group-by: [source.ip]\n  timespan: 10s\n  condition: { gte: 2 }\n',
      ),
    );
    expect(c.feed([ev(0, { 'event.reason': 'expired' })])).toHaveLength(0);
    expect(c.feed([ev(1000)])).toHaveLength(1);
  });

  it('value_sum: a late event inside the lateness bound completes the earlier window', () => {
    const c = new Correlator(
      set(
        '  type: value_sum\n  rules: [base]\n  group-by: [source.ip]\n  timespan: 10s\n  condition: { field: source.port, gte: 100 }\n',
      ),
    );
    expect(c.feed([ev(0, { 'source.port': 60 }), ev(30_000, { 'source.port': 1 })])).toHaveLength(0);
    const late = c.feed([ev(5000, { 'source.port': 50 })]);
    expect(late.map((a) => [a.time - T, a.count])).toEqual([[5000, 110]]);
  });

  it('value_avg and a range: the mean must lie in (10, 20]', () => {
    const c = new Correlator(
      set(
        '  type: value_avg\n  rules: [base]\n  group-by: [source.ip]\n  timespan: 10s\n  condition: { field: source.port, gt: 10, lte: 20 }\n',
      ),
    );
    const got = [5, 25, 31, 1].map((p, i) => c.feed([ev(i * 1000, { 'source.port': p })]).length);
    expect(got).toEqual([0, 1, 0, 1]); // means 5, 15, 20.33, 15.5
  });

  it('temporal: both rules in the window, in any order; the window is half-open', () => {
    const c = new Correlator(
      set('  type: temporal\n  rules: [base, base2]\n  group-by: [source.ip]\n  timespan: 10s\n'),
    );
    const b2 = (at: number) => ev(at, { 'event.action': 'x.y', 'event.reason': 'expired' });
    expect(c.feed([b2(0)])).toHaveLength(0);
    expect(c.feed([ev(10_000)])).toHaveLength(0); // b2 at 0 is exactly one timespan old
    expect(c.feed([b2(15_000)])).toHaveLength(1);
  });

  it('a chain: inner alerts are events of the outer correlation; only the outer alerts', () => {
    const rules = checkRuleFile(
      `${BASE}---\ntitle: inner\nid: inner\nname: bursts\nsuppress: 0s\ncorrelation:\n  type: event_count\n  rules: [base]\n  group-by: [source.ip]\n  timespan: 10s\n  condition: { gte: 2 }\n---\ntitle: outer\nid: outer\nsuppress: 0s\ncorrelation:\n  type: event_count\n  rules: [bursts]\n  group-by: [source.ip]\n  timespan: 1m\n  condition: { gte: 3 }\n`,
    );
    const c = new Correlator(rules);
    const alerts = c.feed([0, 1, 2, 3].map((s) => ev(s * 1000)));
    expect(alerts.map((a) => [a.ruleId, a.time - T, a.groupBy])).toEqual([
      ['outer', 3000, { 'source.ip': '10.0.0.1' }],
    ]);
  });

  it('aliases: one group-by name read from a different field per rule', () => {
    const c = new Correlator(
      set(
        '  type: temporal\n  rules: [base, base2]\n  group-by: [peer]\n  timespan: 10s\n  aliases:\n    peer: { base: source.ip, base2: destination.ip }\n',
      ),
    );
    expect(c.feed([ev(0, { 'source.ip': '10.0.0.9' })])).toHaveLength(0);
    const a = c.feed([
      ev(1000, { 'event.action': 'x.y', 'event.reason': 'expired', 'destination.ip': '10.0.0.9' }),
    ]);
    expect(a.map((x) => x.groupBy)).toEqual([{ peer: '10.0.0.9' }]);
  });

  it('temporal state stays bounded per group whatever arrives', () => {
    const c = new Correlator(
      set('  type: temporal\n  rules: [base, base2]\n  group-by: [source.ip]\n  timespan: 1h\n'),
      {
        maxEntriesPerGroup: 1000,
        maxEntriesPerRule: 1000,
      },
    );
    for (let i = 0; i < 5000; i++) c.feed([ev(i)]);
    expect(c.stats().groups).toBe(1);
    expect(c.feed([ev(5000, { 'event.action': 'x.y', 'event.reason': 'expired' })])).toHaveLength(1);
  });
});

describe('the rule index', () => {
  const rule = (id: string, sel: string) =>
    `title: ${id}\nid: ${id}\nlogsource: { product: edgeward }\ndetection:\n  s: ${sel}\n  condition: s\n`;
  const rules = checkRuleFile(
    [
      rule('by-reason', '{ event.action: handshake.failure, event.reason: [Expired, revoked] }'),
      rule('by-action', '{ event.action: handshake.failure, source.port|gt: 1000 }'),
      rule('by-category', '{ event.category: network, source.ip|cidr: 10.0.0.0/8 }'),
      rule('keyword', '[unknown_ca]'),
    ].join('---\n'),
  );

  it('indexes each rule by its most selective constant predicate; the rest run on every event', () => {
    const c = new Correlator(rules);
    expect(c.indexStats()).toEqual({
      fields: { 'event.reason': 1, 'event.action': 1, 'event.category': 1 },
      unindexed: 1,
    });
  });

  it('finds the same matches as evaluating every rule, in rule order', () => {
    const c = new Correlator(rules);
    const got = c
      .feed([
        ev(0, { 'event.reason': 'EXPIRED', 'source.port': 2000, 'event.category': 'network' }),
        ev(1, { 'event.reason': 'unknown_ca', 'source.port': 10 }),
        ev(2, { 'event.action': 'connection.denied', 'event.category': ['network', 'iam'] }),
      ])
      .map((a) => `${a.time - T}:${a.ruleId}`);
    expect(got).toEqual(['0:by-reason', '0:by-action', '0:by-category', '1:keyword', '2:by-category']);
  });
});
