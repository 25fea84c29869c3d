// The rule language: detection matchers and conditions, correlation parsing, and every refusal
// with its ERR_POLICY_RULE_* code.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EdgewardError } from '../../../common/errors.js';
import { validateEvent, type EdgeEvent } from '../../../common/events.js';
import { checkRuleFile, loadRules, type DetectionRule } from '../../../policies/rules/index.js';
import { tempDir } from '../../helpers/tmp.js';

const T = Date.UTC(2026, 0, 1);
const ev = (fields: Record<string, unknown>): EdgeEvent =>
  validateEvent({ '@timestamp': T, 'event.action': 'connection.accepted', ...fields });

function detection(det: string): DetectionRule {
  const text = `title: t\nid: r1\nlogsource: { product: edgeward }\ndetection:\n${det
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n')}\n`;
  const rules = checkRuleFile(text);
  return rules.detections[0] as DetectionRule;
}

function codeOf(text: string): string {
  try {
    checkRuleFile(text);
  } catch (err) {
    if (err instanceof EdgewardError) return err.code;
    throw err;
  }
  throw new Error('accepted');
}

describe('detection matchers', () => {
  it('equals, and a list means any of (in)', () => {
    const r = detection('sel:\n  event.action: [connection.accepted, connection.denied]\ncondition: sel');
    expect(r.match(ev({}))).toBe(true);
    expect(r.match(ev({ 'event.action': 'connection.denied' }))).toBe(true);
    expect(r.match(ev({ 'event.action': 'connection.closed' }))).toBe(false);
    expect([...(r.actions ?? [])].sort()).toEqual(['connection.accepted', 'connection.denied']);
  });

  it('equality ignores letter case, as Sigma says; cased makes it exact', () => {
    const r = detection('sel:\n  source.identity: spiffe://factory.example/device/D1\ncondition: sel');
    expect(r.match(ev({ 'source.identity': 'spiffe://factory.example/device/d1' }))).toBe(true);
    const c = detection('sel:\n  source.identity|cased: spiffe://factory.example/device/D1\ncondition: sel');
    expect(c.match(ev({ 'source.identity': 'spiffe://factory.example/device/d1' }))).toBe(false);
    expect(c.match(ev({ 'source.identity': 'spiffe://factory.example/device/D1' }))).toBe(true);
  });

  it('numbers match numeric fields, and gt/lte compare them', () => {
    const r = detection('sel:\n  source.port: 22\ncondition: sel');
    expect(r.match(ev({ 'source.port': 22 }))).toBe(true);
    expect(r.match(ev({ 'source.port': 23 }))).toBe(false);
    const g = detection('sel:\n  source.port|gt: 1023\n  destination.port|lte: 443\ncondition: sel');
    expect(g.match(ev({ 'source.port': 1024, 'destination.port': 443 }))).toBe(true);
    expect(g.match(ev({ 'source.port': 1023, 'destination.port': 443 }))).toBe(false);
  });

  it('prefix (and its Sigma name startswith), endswith, contains', () => {
    const p = detection('sel:\n  source.identity|prefix: spiffe://factory.example/device/\ncondition: sel');
    expect(p.match(ev({ 'source.identity': 'spiffe://factory.example/device/d1' }))).toBe(true);
    expect(p.match(ev({ 'source.identity': 'spiffe://factory.example/node/n1' }))).toBe(false);
    const s = detection('sel:\n  source.identity|startswith: spiffe://factory.example/node/\ncondition: sel');
    expect(s.match(ev({ 'source.identity': 'spiffe://factory.example/node/n1' }))).toBe(true);
    const e = detection('sel:\n  user_agent.original|endswith: /0.1\ncondition: sel');
    expect(e.match(ev({ 'user_agent.original': 'edgeward/0.1' }))).toBe(true);
    const c = detection('sel:\n  event.reason|contains|all: [expired, cert]\ncondition: sel');
    expect(c.match(ev({ 'event.reason': 'cert expired' }))).toBe(true);
    expect(c.match(ev({ 'event.reason': 'expired' }))).toBe(false);
  });

  it('CIDR over IPv4, IPv6 and IPv4-mapped IPv6', () => {
    const r = detection("sel:\n  source.ip|cidr: [10.0.0.0/8, '2001:db8::/32']\ncondition: sel");
    expect(r.match(ev({ 'source.ip': '10.200.3.4' }))).toBe(true);
    expect(r.match(ev({ 'source.ip': '11.0.0.1' }))).toBe(false);
    expect(r.match(ev({ 'source.ip': '2001:db8:ffff::1' }))).toBe(true);
    expect(r.match(ev({ 'source.ip': '2001:db9::1' }))).toBe(false);
    expect(r.match(ev({ 'source.ip': '::ffff:10.1.2.3' }))).toBe(true);
    expect(r.match(ev({}))).toBe(false);
    // A mapped block is the IPv4 block, as the allowlist and the agents read it.
    const m = detection("sel:\n  source.ip|cidr: '::ffff:10.0.0.0/104'\ncondition: sel");
    expect(m.match(ev({ 'source.ip': '10.9.9.9' }))).toBe(true);
    expect(m.match(ev({ 'source.ip': '11.0.0.1' }))).toBe(false);
  });

  it('regular expressions, case-insensitive with re|i', () => {
    const r = detection("sel:\n  source.identity|re: '^spiffe://[a-z.]+/device/d[0-9]+$'\ncondition: sel");
    expect(r.match(ev({ 'source.identity': 'spiffe://factory.example/device/d17' }))).toBe(true);
    expect(r.match(ev({ 'source.identity': 'spiffe://factory.example/device/dx' }))).toBe(false);
    const i = detection("sel:\n  event.reason|re|i: '^unknown'\ncondition: sel");
    expect(i.match(ev({ 'event.reason': 'UNKNOWN_CA' }))).toBe(true);
    // What the old star-height guard refused runs in linear time on RE2, so it is allowed.
    const n = detection("sel:\n  event.reason|re: '(a+)+$'\ncondition: sel");
    expect(n.match(ev({ 'event.reason': `${'a'.repeat(250)}!` }))).toBe(false);
    expect(n.match(ev({ 'event.reason': 'aaa' }))).toBe(true);
  });

  it('exists and null (field absent)', () => {
    const x = detection('sel:\n  source.identity|exists: true\ncondition: sel');
    expect(x.match(ev({ 'source.identity': 'spiffe://factory.example/node/n1' }))).toBe(true);
    expect(x.match(ev({}))).toBe(false);
    const n = detection('sel:\n  source.identity: null\ncondition: sel');
    expect(n.match(ev({}))).toBe(true);
    expect(n.match(ev({ 'source.identity': 'spiffe://factory.example/node/n1' }))).toBe(false);
  });

  it('a list of maps is OR; and/or/not/parentheses and 1 of / all of', () => {
    const r = detection(
      [
        'sel_a:',
        '  - { event.action: connection.denied }',
        '  - { event.action: handshake.failure }',
        'sel_b:',
        '  source.ip|cidr: 10.0.0.0/8',
        'filter:',
        '  source.ip: 10.0.0.1',
        'condition: (1 of sel_*) and not filter',
      ].join('\n'),
    );
    expect(r.match(ev({ 'event.action': 'handshake.failure' }))).toBe(true);
    expect(r.match(ev({ 'source.ip': '10.0.0.2' }))).toBe(true);
    expect(r.match(ev({ 'source.ip': '10.0.0.1' }))).toBe(false);
    expect(r.match(ev({}))).toBe(false);
    const all = detection(
      'a:\n  event.action: connection.accepted\nb:\n  source.port: 1\ncondition: all of them',
    );
    expect(all.match(ev({ 'source.port': 1 }))).toBe(true);
    expect(all.match(ev({ 'source.port': 2 }))).toBe(false);
    expect(all.actions).toEqual(new Set(['connection.accepted']));
  });

  it('a list of conditions is their disjunction', () => {
    const r = detection('a:\n  source.port: 1\nb:\n  source.port: 2\ncondition: [a, b]');
    expect(r.match(ev({ 'source.port': 2 }))).toBe(true);
    expect(r.match(ev({ 'source.port': 3 }))).toBe(false);
    expect(r.actions).toBeNull();
  });
});

describe('correlation rules', () => {
  const base =
    'title: b\nid: base\nname: base_rule\nlogsource: { product: edgeward }\ndetection:\n  s:\n    event.action: handshake.failure\n  condition: s\n---\n';
  /** A correlation rule over `base`: only what a case changes is spelled out. */
  const corr = (o: {
    type: string;
    rules?: string;
    extra?: string;
    by?: string;
    span?: string;
    cond?: string;
  }): string =>
    `${base}title: c\nid: c\ncorrelation:\n  type: ${o.type}\n  rules: [${o.rules ?? 'base'}]\n${o.extra ?? ''}` +
    `  group-by: [${o.by ?? 'source.ip'}]\n  timespan: ${o.span ?? '5m'}\n` +
    (o.cond === undefined ? '' : `  condition: ${o.cond}\n`);

  it('parses an event_count rule, resolving the base rule by name', () => {
    const r = checkRuleFile(
      `${base}title: c\nid: corr\ncorrelation:\n  type: event_count\n  rules: [base_rule]\n  group-by: [source.ip]\n  timespan: 5m\n  condition: { gt: 4 }\n`,
    );
    const c = r.correlations[0];
    expect(c?.rules).toEqual(['base']);
    expect(c?.timespanMs).toBe(300_000);
    expect(c?.condition).toEqual([{ op: 'gt', value: 4 }]);
    expect(c?.suppressMs).toBe(300_000);
    expect(r.detections[0]?.generate).toBe(false);
  });

  it('generate: true keeps the base rule alerting', () => {
    const r = checkRuleFile(
      `${base}title: c\nid: corr\ncorrelation:\n  type: event_count\n  rules: [base]\n  group-by: source.ip\n  timespan: 5m\n  generate: true\n  condition: { gte: 5 }\n`,
    );
    expect(r.detections[0]?.generate).toBe(true);
  });

  const cases: [string, string, string][] = [
    [
      'prototype key',
      'title: t\nid: r\n__proto__: { x: 1 }\nlogsource: { product: edgeward }\ndetection:\n  s: { source.port: 1 }\n  condition: s\n',
      'ERR_POLICY_RULE_SCHEMA',
    ],
    [
      'missing title',
      'id: r\nlogsource: { product: edgeward }\ndetection:\n  s: { source.port: 1 }\n  condition: s\n',
      'ERR_POLICY_RULE_SCHEMA',
    ],
    [
      'bad id',
      'title: t\nid: R 1\nlogsource: { product: edgeward }\ndetection:\n  s: { source.port: 1 }\n  condition: s\n',
      'ERR_POLICY_RULE_SCHEMA',
    ],
    [
      'text modifier on a numeric schema field',
      'title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { source.port|contains: 1 }\n  condition: s\n',
      'ERR_POLICY_RULE_MODIFIER',
    ],
    [
      'unknown modifier',
      'title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { source.ip|base46: x }\n  condition: s\n',
      'ERR_POLICY_RULE_MODIFIER',
    ],
    [
      'cidr on a non-IP field',
      'title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { event.reason|cidr: 10.0.0.0/8 }\n  condition: s\n',
      'ERR_POLICY_RULE_MODIFIER',
    ],
    [
      'prefix on a number field',
      'title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { source.port|prefix: "1" }\n  condition: s\n',
      'ERR_POLICY_RULE_MODIFIER',
    ],
    [
      'bad CIDR',
      'title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { source.ip|cidr: 10.0.0.0/33 }\n  condition: s\n',
      'ERR_POLICY_RULE_CIDR',
    ],
    [
      'invalid regex',
      "title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { event.reason|re: '(' }\n  condition: s\n",
      'ERR_POLICY_RULE_REGEX',
    ],
    [
      'too long regex',
      `title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { event.reason|re: '${'a'.repeat(300)}' }\n  condition: s\n`,
      'ERR_POLICY_RULE_REGEX',
    ],
    [
      'lookahead',
      "title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { event.reason|re: 'a(?=b)' }\n  condition: s\n",
      'ERR_POLICY_RULE_REGEX_UNSAFE',
    ],
    [
      'lookbehind',
      "title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { event.reason|re: '(?<!a)b' }\n  condition: s\n",
      'ERR_POLICY_RULE_REGEX_UNSAFE',
    ],
    [
      'repetition beyond RE2',
      "title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { event.reason|re: 'a{1001}' }\n  condition: s\n",
      'ERR_POLICY_RULE_REGEX',
    ],
    [
      'CIDR with host bits',
      'title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { source.ip|cidr: 10.0.0.1/8 }\n  condition: s\n',
      'ERR_POLICY_RULE_CIDR',
    ],
    [
      'CIDR with a zone',
      "title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { source.ip|cidr: 'fe80::%eth0/64' }\n  condition: s\n",
      'ERR_POLICY_RULE_CIDR',
    ],
    [
      'CIDR with leading zeros',
      'title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { source.ip|cidr: 010.0.0.0/8 }\n  condition: s\n',
      'ERR_POLICY_RULE_CIDR',
    ],
    [
      'backreference',
      "title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { event.reason|re: '(a)\\1' }\n  condition: s\n",
      'ERR_POLICY_RULE_REGEX_UNSAFE',
    ],
    [
      'unknown identifier in condition',
      'title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { source.port: 1 }\n  condition: s and x\n',
      'ERR_POLICY_RULE_CONDITION',
    ],
    [
      'dangling operator',
      'title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { source.port: 1 }\n  condition: s and\n',
      'ERR_POLICY_RULE_CONDITION',
    ],
    [
      'unbalanced parenthesis',
      'title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { source.port: 1 }\n  condition: (s\n',
      'ERR_POLICY_RULE_CONDITION',
    ],
    [
      'Sigma pipe aggregation',
      'title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { source.port: 1 }\n  condition: s | count() > 5\n',
      'ERR_POLICY_RULE_CONDITION',
    ],
    [
      'no condition',
      'title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { source.port: 1 }\n',
      'ERR_POLICY_RULE_CONDITION',
    ],
    ['invalid YAML', 'title: [\n', 'ERR_POLICY_RULE_YAML'],
    ['duplicate YAML key', 'title: a\ntitle: b\nid: r\n', 'ERR_POLICY_RULE_YAML'],
    [
      'YAML alias',
      'title: &x t\nid: r\ndescription: *x\nlogsource: { product: edgeward }\ndetection:\n  s: { source.port: 1 }\n  condition: s\n',
      'ERR_POLICY_RULE_YAML',
    ],
    [
      'duplicate id',
      'title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { source.port: 1 }\n  condition: s\n---\ntitle: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { source.port: 1 }\n  condition: s\n',
      'ERR_POLICY_RULE_DUPLICATE',
    ],
    ['unknown correlation type', corr({ type: 'count' }), 'ERR_POLICY_RULE_CORRELATION'],
    [
      'unknown condition operator',
      corr({ type: 'event_count', cond: '{ ge: 3 }' }),
      'ERR_POLICY_RULE_CORRELATION',
    ],
    [
      'threshold too big',
      corr({ type: 'event_count', cond: '{ gte: 5000 }' }),
      'ERR_POLICY_RULE_CORRELATION',
    ],
    [
      'value_count without field',
      corr({ type: 'value_count', cond: '{ gte: 3 }' }),
      'ERR_POLICY_RULE_CORRELATION',
    ],
    [
      'poisoned group-by field',
      corr({ type: 'event_count', by: '__proto__', cond: '{ gte: 3 }' }),
      'ERR_POLICY_RULE_FIELD',
    ],
    [
      'bad timespan',
      corr({ type: 'event_count', span: 'soon', cond: '{ gte: 3 }' }),
      'ERR_POLICY_RULE_DURATION',
    ],
    [
      'timespan over a week',
      corr({ type: 'event_count', span: '30d', cond: '{ gte: 3 }' }),
      'ERR_POLICY_RULE_DURATION',
    ],
    [
      'unknown reference',
      corr({ type: 'event_count', rules: 'nope', cond: '{ gte: 3 }' }),
      'ERR_POLICY_RULE_REFERENCE',
    ],
    [
      'aliases that are not a map',
      corr({ type: 'event_count', extra: '  aliases: []\n', cond: '{ gte: 3 }' }),
      'ERR_POLICY_RULE_CORRELATION',
    ],
    ['temporal_ordered with one rule', corr({ type: 'temporal_ordered' }), 'ERR_POLICY_RULE_CORRELATION'],
    [
      'invalid test event',
      'title: t\nid: r\nlogsource: { product: edgeward }\ndetection:\n  s: { source.port: 1 }\n  condition: s\ntests:\n  - name: x\n    expect: 1\n    events:\n      - event: { event.action: x, source.port: -1 }\n',
      'ERR_POLICY_RULE_SCHEMA',
    ],
    ['neither detection nor correlation', 'title: t\nid: r\n', 'ERR_POLICY_RULE_SCHEMA'],
  ];
  for (const [name, text, code] of cases) {
    it(`refuses: ${name} (${code})`, () => {
      expect(codeOf(text)).toBe(code);
    });
  }

  it('refuses a file over 256 KiB before parsing it', () => {
    expect(codeOf(`# ${'x'.repeat(300 * 1024)}\n`)).toBe('ERR_POLICY_RULE_TOO_LARGE');
  });
});

describe('loadRules', () => {
  it('loads a folder and resolves references across files', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'sub'));
    writeFileSync(
      join(dir, 'a.yaml'),
      'title: b\nid: base\nlogsource: { product: edgeward }\ndetection:\n  s: { event.action: x }\n  condition: s\n',
    );
    writeFileSync(
      join(dir, 'sub', 'b.yml'),
      'title: c\nid: corr\ncorrelation:\n  type: event_count\n  rules: [base]\n  group-by: [source.ip]\n  timespan: 1m\n  condition: { gte: 2 }\n',
    );
    writeFileSync(join(dir, 'ignored.txt'), 'not yaml');
    const rules = await loadRules(dir);
    expect(rules.correlations.map((c) => c.id)).toEqual(['corr']);
  });

  it('reports an unreadable folder with ERR_POLICY_RULE_READ', async () => {
    await expect(loadRules('/nonexistent/edgeward-rules')).rejects.toMatchObject({
      code: 'ERR_POLICY_RULE_READ',
    });
  });
});
