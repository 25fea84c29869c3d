// Runs the Sigma conformance vectors (test/vectors/sigma/*.yaml, README.md there) on the real
// engine: the rule parser (`checkRuleFile`) and the correlation engine (`Correlator`). Each case is
// one test named by its file and id; the few cases the engine does not meet are listed below with
// the reason, and must fail (so the list cannot go stale).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { EdgewardError } from '../../common/errors.js';
import { flattenEvent, type EdgeEvent } from '../../common/events.js';
import { checkRuleFile, type RuleSet } from '../../policies/rules/index.js';
import { Correlator, type Alert } from '../../siem/correlate/index.js';

const DIR = join(import.meta.dirname, 'sigma');

/** Cases the engine does not meet, each with the reason (docs/rules.md, differences). */
const KNOWN: Readonly<Record<string, string>> = {};

type Rec = Record<string, unknown>;

interface Case {
  readonly id: string;
  readonly about: string;
  readonly from: { readonly doc: string; readonly section: string; readonly basis: string };
  readonly rule: string;
  readonly placeholders?: Readonly<Record<string, string[]>>;
  readonly events?: readonly Rec[];
  readonly expect: Rec;
}

const FILES = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((name) => ({
    name,
    cases: (parseYaml(readFileSync(join(DIR, name), 'utf8')) as { cases: Case[] }).cases,
  }));

function load(c: Case, file: string): RuleSet {
  const ph = c.placeholders;
  return checkRuleFile(c.rule, file, ph === undefined ? {} : { placeholders: new Map(Object.entries(ph)) });
}

function asEvent(raw: Rec): EdgeEvent {
  const flat = flattenEvent(raw);
  const t = flat['@timestamp'];
  if (typeof t === 'string') flat['@timestamp'] = Date.parse(t);
  return flat as unknown as EdgeEvent;
}

/** Ids of rules by the name or id the case uses. */
function refIndex(rules: RuleSet): Map<string, string> {
  const m = new Map<string, string>();
  for (const r of [...rules.detections, ...rules.correlations]) {
    m.set(r.id, r.id);
    if (r.name !== undefined) m.set(r.name, r.id);
  }
  return m;
}

function runMatches(c: Case, file: string): void {
  const rules = load(c, file);
  expect(rules.detections).toHaveLength(1);
  const det = rules.detections[0]!;
  const got = (c.events ?? []).flatMap((e, i) => (det.match(asEvent(e)) ? [i] : []));
  expect(got).toEqual(c.expect['matches']);
}

function runRefused(c: Case, file: string): void {
  const r = c.expect['refused'] as { doc: number; path: (string | number)[]; kind: string };
  let err: unknown;
  try {
    load(c, file);
  } catch (e) {
    err = e;
  }
  expect(err, 'the rule must be refused').toBeInstanceOf(EdgewardError);
  const e = err as EdgewardError;
  const want = `ERR_POLICY_RULE_${r.kind.toUpperCase()}`;
  const codes = r.kind === 'regex' ? [want, 'ERR_POLICY_RULE_REGEX_UNSAFE'] : [want];
  expect(codes, e.message).toContain(e.code);
  // The message leads with file#document.key.path (an engine may point deeper).
  const place = `${file}#${r.doc}.${r.path.join('.')}`;
  expect(e.message.startsWith(place), `${e.message} should start with ${place}`).toBe(true);
}

function sameGroup(alert: Alert, group: Rec): boolean {
  const keys = Object.keys(group);
  if (keys.length !== Object.keys(alert.groupBy).length) return false;
  return keys.every((k) => alert.groupBy[k] === String(group[k]));
}

function runRuleSet(c: Case, file: string): void {
  const loaded = load(c, file);
  // Suppression off: the cases bound where alerts may be, not how repeats are thinned.
  const rules: RuleSet = {
    detections: loaded.detections.map((d) => ({ ...d, suppressMs: 0 })),
    correlations: loaded.correlations.map((r) => ({ ...r, suppressMs: 0 })),
  };
  const ids = refIndex(rules);
  const engine = new Correlator(rules);
  const events = (c.events ?? []).map(asEvent);
  const alerts: { at: number; alert: Alert }[] = [];
  events.forEach((e, at) => {
    for (const alert of engine.feed([e])) alerts.push({ at, alert });
  });
  const alerting = (c.expect['alerting'] as string[]).map((a) => ids.get(a));
  for (const a of alerts) expect(alerting, `unexpected alert of ${a.alert.ruleId}`).toContain(a.alert.ruleId);
  const dets = (c.expect['detections'] ?? {}) as Record<string, number[]>;
  for (const [name, idx] of Object.entries(dets)) {
    const det = rules.detections.find((d) => d.id === ids.get(name))!;
    expect(
      events.flatMap((e, i) => (det.match(e) ? [i] : [])),
      `detection ${name}`,
    ).toEqual(idx);
    if (alerting.includes(det.id)) {
      expect(
        alerts.filter((a) => a.alert.ruleId === det.id).map((a) => a.at),
        `alerts of ${name}`,
      ).toEqual(idx);
    }
  }
  const corrs = c.expect['correlations'] as Record<
    string,
    { group: Rec; holds_at: number[]; must_alert_at?: number[] }[]
  >;
  for (const [name, groups] of Object.entries(corrs)) {
    const id = ids.get(name);
    if (!alerting.includes(id)) continue;
    const mine = alerts.filter((a) => a.alert.ruleId === id);
    for (const a of mine) {
      const g = groups.find((x) => sameGroup(a.alert, x.group));
      expect(g, `${name} alerted at event ${a.at} for ${JSON.stringify(a.alert.groupBy)}`).toBeDefined();
      expect(g!.holds_at, `${name} alerted at event ${a.at}, where its condition does not hold`).toContain(
        a.at,
      );
    }
    for (const g of groups) {
      for (const at of g.must_alert_at ?? [g.holds_at[0]!]) {
        expect(
          mine.some((a) => a.at === at && sameGroup(a.alert, g.group)),
          `${name} must alert at event ${at} for ${JSON.stringify(g.group)}`,
        ).toBe(true);
      }
    }
  }
}

function run(c: Case, file: string): void {
  const ex = c.expect;
  if ('matches' in ex) runMatches(c, file);
  else if ('accepted' in ex) load(c, file);
  else if ('refused' in ex) runRefused(c, file);
  else runRuleSet(c, file);
}

describe('Sigma conformance vectors on the real engine', () => {
  for (const f of FILES) {
    describe(f.name, () => {
      for (const c of f.cases) {
        const title = `${c.id} (${c.from.section}, ${c.from.basis})`;
        if (KNOWN[c.id] !== undefined) it.fails(`${title} - known: ${KNOWN[c.id]}`, () => run(c, f.name));
        else it(title, () => run(c, f.name));
      }
    });
  }

  it('every known failure names a case of the vectors', () => {
    const all = new Set(FILES.flatMap((f) => f.cases.map((c) => c.id)));
    for (const id of Object.keys(KNOWN)) expect(all.has(id), id).toBe(true);
  });
});
