// Parses rule files (YAML, one or more Sigma-style documents each) into compiled rules and
// resolves correlation references. Every refusal is an ERR_POLICY_RULE_* code naming the place.
import { parseAllDocuments } from 'yaml';
import { parseDuration } from '../../common/clock.js';
import { EdgewardError } from '../../common/errors.js';
import { isEventField, validateEvent, type EdgeEvent, type EventField } from '../../common/events.js';
import { compileDetection } from './detection.js';
import {
  LEVELS,
  type CorrelationRule,
  type CorrelationType,
  type DetectionRule,
  type Level,
  type RuleSet,
  type RuleTest,
} from './types.js';

export const MAX_RULE_FILE = 256 * 1024;
const MAX_DOCS = 100;
const MAX_TIMESPAN = 7 * 86_400_000;
/** Upper bound on thresholds, so that per-group buffers stay bounded (see docs/rules.md). */
export const MAX_THRESHOLD = 1000;
const MAX_TEST_EVENTS = 10_000;
/** Test events' `at` offsets count from this instant. */
export const TEST_EPOCH = Date.UTC(2026, 0, 1);

const ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const POISON = new Set(['__proto__', 'constructor', 'prototype']);
const META = new Set([
  'title',
  'id',
  'name',
  'status',
  'description',
  'author',
  'date',
  'modified',
  'references',
  'tags',
  'falsepositives',
  'level',
  'license',
  'related',
  'taxonomy',
  'suppress',
  'tests',
]);
const DETECTION_KEYS = new Set([...META, 'logsource', 'detection', 'fields', 'suppress-by']);
const CORRELATION_KEYS = new Set([...META, 'correlation']);
const CORRELATION_INNER = new Set([
  'type',
  'rules',
  'group-by',
  'timespan',
  'condition',
  'generate',
  'aliases',
]);
const TYPES: readonly CorrelationType[] = ['event_count', 'value_count', 'temporal_ordered'];

type Rec = Readonly<Record<string, unknown>>;

function schema(where: string, msg: string): never {
  throw new EdgewardError('ERR_POLICY_RULE_SCHEMA', `${where}: ${msg}`);
}

function isRec(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown, where: string, max = 256): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max)
    schema(where, `must be text of 1..${max} characters`);
  return v;
}

function duration(v: unknown, where: string, max = MAX_TIMESPAN): number {
  let ms: number;
  try {
    ms = parseDuration(String(v));
  } catch (err) {
    throw new EdgewardError('ERR_POLICY_RULE_DURATION', `${where}: not a duration (use e.g. 90s, 5m, 1h)`, {
      cause: err,
    });
  }
  if ((typeof v !== 'string' && typeof v !== 'number') || ms > max) {
    throw new EdgewardError('ERR_POLICY_RULE_DURATION', `${where}: duration out of range`);
  }
  return ms;
}

function checkKeys(doc: Rec, allowed: ReadonlySet<string>, where: string): void {
  for (const k of Object.keys(doc)) {
    if (POISON.has(k)) schema(where, `forbidden key ${k}`);
    if (!allowed.has(k)) schema(where, `unknown key ${k.slice(0, 64)}`);
  }
}

function fieldList(v: unknown, where: string, min: number): EventField[] {
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length < min || list.length > 8)
    schema(where, `needs ${min}..8 field names`);
  return list.map((f) => {
    if (typeof f !== 'string' || !isEventField(f)) {
      throw new EdgewardError(
        'ERR_POLICY_RULE_FIELD',
        `${where}: ${String(f).slice(0, 64)} is not an event field`,
      );
    }
    return f;
  });
}

/** Expands a rule's `tests` (each event spec may repeat, with a step and cycling values). */
function parseTests(v: unknown, where: string): RuleTest[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > 50) schema(where, 'tests must be a list of at most 50 tests');
  return v.map((t, ti): RuleTest => {
    const w = `${where}[${ti}]`;
    if (!isRec(t)) schema(w, 'a test must be a map');
    checkKeys(t, new Set(['name', 'expect', 'events']), w);
    const name = str(t['name'], `${w}.name`);
    const expect = t['expect'];
    if (typeof expect !== 'number' || !Number.isInteger(expect) || expect < 0 || expect > 1000) {
      schema(`${w}.expect`, 'must be a count of alerts');
    }
    const specs = t['events'];
    if (!Array.isArray(specs) || specs.length === 0) schema(`${w}.events`, 'must be a non-empty list');
    const events: EdgeEvent[] = [];
    specs.forEach((s, si) => {
      const ws = `${w}.events[${si}]`;
      if (!isRec(s)) schema(ws, 'must be a map');
      checkKeys(s, new Set(['at', 'repeat', 'every', 'vary', 'event']), ws);
      const at = duration(s['at'] ?? 0, `${ws}.at`, 30 * 86_400_000);
      const repeat = s['repeat'] ?? 1;
      if (typeof repeat !== 'number' || !Number.isInteger(repeat) || repeat < 1 || repeat > 5000) {
        schema(`${ws}.repeat`, 'must be 1..5000');
      }
      const every = duration(s['every'] ?? 0, `${ws}.every`);
      const vary = s['vary'] ?? {};
      if (!isRec(vary)) schema(`${ws}.vary`, 'must be a map of field: [values]');
      const base = s['event'];
      if (!isRec(base)) schema(`${ws}.event`, 'must be a map');
      for (let k = 0; k < repeat; k++) {
        const raw: Record<string, unknown> = { ...base, '@timestamp': TEST_EPOCH + at + k * every };
        for (const [f, vals] of Object.entries(vary)) {
          if (!Array.isArray(vals) || vals.length === 0)
            schema(`${ws}.vary.${f}`, 'must be a non-empty list');
          raw[f] = vals[k % vals.length];
        }
        try {
          events.push(validateEvent(raw, { mode: 'stored' }));
        } catch (err) {
          throw new EdgewardError('ERR_POLICY_RULE_SCHEMA', `${ws}: test event invalid`, { cause: err });
        }
        if (events.length > MAX_TEST_EVENTS) schema(w, 'too many test events');
      }
    });
    return { name, expect, events };
  });
}

interface Common {
  id: string;
  name: string | undefined;
  title: string;
  description: string;
  level: Level;
  tests: RuleTest[];
}

function common(doc: Rec, where: string): Common {
  const id = doc['id'];
  if (typeof id !== 'string' || !ID.test(id))
    schema(`${where}.id`, 'must be a lower-case slug or UUID of 1..64 characters');
  const name = doc['name'];
  if (name !== undefined && (typeof name !== 'string' || !NAME.test(name)))
    schema(`${where}.name`, 'bad name');
  const level = doc['level'] ?? 'medium';
  if (typeof level !== 'string' || !LEVELS.includes(level as Level))
    schema(`${where}.level`, `must be one of ${LEVELS.join(', ')}`);
  const description = doc['description'] ?? '';
  if (typeof description !== 'string' || description.length > 4096)
    schema(`${where}.description`, 'must be text');
  return {
    id,
    name: name,
    title: str(doc['title'], `${where}.title`),
    description,
    level: level as Level,
    tests: parseTests(doc['tests'], `${where}.tests`),
  };
}

export interface RawCorrelation {
  readonly rule: Omit<CorrelationRule, 'rules'>;
  readonly refs: readonly string[];
  readonly generate: boolean;
}

export interface ParsedFile {
  readonly detections: DetectionRule[];
  readonly correlations: RawCorrelation[];
}

/** Parses one rule file's text into unresolved rules. */
export function parseRuleText(text: string, file = 'rules'): ParsedFile {
  if (typeof text !== 'string') throw new TypeError('rule text must be a string');
  if (text.length > MAX_RULE_FILE)
    throw new EdgewardError('ERR_POLICY_RULE_TOO_LARGE', `${file}: larger than 256 KiB`);
  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [docs];
  if (list.length > MAX_DOCS)
    throw new EdgewardError('ERR_POLICY_RULE_TOO_LARGE', `${file}: more than ${MAX_DOCS} documents`);
  const out: ParsedFile = { detections: [], correlations: [] };
  list.forEach((d, di) => {
    const where = `${file}#${di}`;
    if (d.errors.length > 0) {
      throw new EdgewardError(
        'ERR_POLICY_RULE_YAML',
        `${where}: ${d.errors[0]?.message.split('\n')[0] ?? 'bad YAML'}`,
      );
    }
    let doc: unknown;
    try {
      // No aliases: a rule file has no use for them and they enable "billion laughs".
      doc = d.toJS({ maxAliasCount: 0 });
    } catch (err) {
      throw new EdgewardError('ERR_POLICY_RULE_YAML', `${where}: YAML aliases are not allowed`, {
        cause: err,
      });
    }
    if (doc === null || doc === undefined) return;
    if (!isRec(doc)) schema(where, 'a rule must be a map');
    if (doc['correlation'] !== undefined) out.correlations.push(parseCorrelation(doc, where));
    else if (doc['detection'] !== undefined) out.detections.push(parseDetectionDoc(doc, where));
    else schema(where, 'a rule needs a detection or a correlation');
  });
  return out;
}

function suppressOf(doc: Rec, where: string, dflt: number): number {
  return doc['suppress'] === undefined ? dflt : duration(doc['suppress'], `${where}.suppress`);
}

function parseDetectionDoc(doc: Rec, where: string): DetectionRule {
  checkKeys(doc, DETECTION_KEYS, where);
  const c = common(doc, where);
  const logsource = doc['logsource'];
  if (logsource !== undefined && !isRec(logsource)) schema(`${where}.logsource`, 'must be a map');
  const det = compileDetection(doc['detection'], `${where}.detection`);
  return {
    kind: 'detection',
    ...c,
    match: det.match,
    actions: det.actions,
    generate: true,
    suppressMs: suppressOf(doc, where, 0),
    suppressBy:
      doc['suppress-by'] === undefined ? [] : fieldList(doc['suppress-by'], `${where}.suppress-by`, 1),
  };
}

function parseCorrelation(doc: Rec, where: string): RawCorrelation {
  checkKeys(doc, CORRELATION_KEYS, where);
  const c = common(doc, where);
  const corr = doc['correlation'];
  const w = `${where}.correlation`;
  if (!isRec(corr)) schema(w, 'must be a map');
  for (const k of Object.keys(corr)) {
    if (!CORRELATION_INNER.has(k) || POISON.has(k)) schema(w, `unknown key ${k.slice(0, 64)}`);
  }
  const bad: (msg: string) => never = (msg) => {
    throw new EdgewardError('ERR_POLICY_RULE_CORRELATION', `${w}: ${msg}`);
  };
  if (corr['aliases'] !== undefined)
    bad('aliases are not supported; use the same field names in the base rules');
  const type = corr['type'];
  if (typeof type !== 'string' || !TYPES.includes(type as CorrelationType)) {
    bad(`type must be one of ${TYPES.join(', ')} (temporal without order is not supported)`);
  }
  const refsRaw = corr['rules'];
  const refs = typeof refsRaw === 'string' ? [refsRaw] : refsRaw;
  if (
    !Array.isArray(refs) ||
    refs.length === 0 ||
    refs.length > 8 ||
    !refs.every((r) => typeof r === 'string')
  ) {
    bad('rules must list 1..8 rule names or ids');
  }
  if (type === 'temporal_ordered' && refs.length < 2) bad('temporal_ordered needs at least two rules');
  const groupBy = fieldList(corr['group-by'], `${w}.group-by`, 1);
  if (corr['timespan'] === undefined) bad('timespan is required');
  const timespanMs = duration(corr['timespan'], `${w}.timespan`);
  if (timespanMs <= 0) throw new EdgewardError('ERR_POLICY_RULE_DURATION', `${w}.timespan: must be positive`);
  const generate = corr['generate'] ?? false;
  if (typeof generate !== 'boolean') schema(`${w}.generate`, 'must be true or false');

  let threshold: CorrelationRule['threshold'] = { op: 'gte', value: refs.length };
  let field: EventField | undefined;
  const cond = corr['condition'];
  if (type === 'temporal_ordered') {
    if (cond !== undefined) bad('temporal_ordered takes no condition');
  } else {
    if (!isRec(cond)) bad('condition must be a map such as {gte: 5}');
    const ops = Object.keys(cond).filter((k) => k !== 'field');
    if (ops.length !== 1) bad('condition needs exactly one of gt, gte');
    const op = ops[0] as string;
    if (op === 'lt' || op === 'lte' || op === 'eq')
      bad(`${op} (absence or exact counts) is not supported; use gt or gte`);
    if (op !== 'gt' && op !== 'gte') bad(`unknown condition ${op.slice(0, 16)}`);
    const value = cond[op];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_THRESHOLD) {
      bad(`threshold must be an integer in 1..${MAX_THRESHOLD}`);
    }
    threshold = { op: op, value };
    if (type === 'value_count') {
      const f = cond['field'];
      if (typeof f !== 'string' || !isEventField(f)) {
        throw new EdgewardError(
          'ERR_POLICY_RULE_FIELD',
          `${w}.condition.field: value_count needs an event field`,
        );
      }
      field = f;
    } else if (cond['field'] !== undefined) bad('field only applies to value_count');
  }
  return {
    rule: {
      kind: 'correlation',
      ...c,
      type: type as CorrelationType,
      groupBy,
      timespanMs,
      threshold,
      field,
      suppressMs: suppressOf(doc, where, timespanMs),
    },
    refs: refs,
    generate,
  };
}

/** Resolves references across parsed files: ids unique, correlations point at detection rules. */
export function resolveRules(files: readonly ParsedFile[]): RuleSet {
  const byRef = new Map<string, DetectionRule>();
  const ids = new Set<string>();
  const claim = (key: string, what: string) => {
    if (ids.has(key)) throw new EdgewardError('ERR_POLICY_RULE_DUPLICATE', `${what} ${key} is used twice`);
    ids.add(key);
  };
  const detections = files.flatMap((f) => f.detections);
  const raws = files.flatMap((f) => f.correlations);
  for (const d of detections) {
    claim(d.id, 'id');
    if (d.name !== undefined && d.name !== d.id) claim(d.name, 'name');
    byRef.set(d.id, d);
    if (d.name !== undefined) byRef.set(d.name, d);
  }
  for (const r of raws) {
    claim(r.rule.id, 'id');
    if (r.rule.name !== undefined && r.rule.name !== r.rule.id) claim(r.rule.name, 'name');
  }
  const referenced = new Set<string>();
  const generating = new Set<string>();
  const correlations: CorrelationRule[] = raws.map((r) => {
    const rules = r.refs.map((ref) => {
      const d = byRef.get(ref);
      if (d === undefined) {
        const isCorr = raws.some((x) => x.rule.id === ref || x.rule.name === ref);
        throw new EdgewardError(
          'ERR_POLICY_RULE_REFERENCE',
          `${r.rule.id}: ${ref.slice(0, 64)} ${isCorr ? 'is a correlation (chaining is not supported)' : 'is not a rule in this set'}`,
        );
      }
      referenced.add(d.id);
      if (r.generate) generating.add(d.id);
      return d.id;
    });
    if (r.rule.type !== 'temporal_ordered' && new Set(rules).size !== rules.length) {
      throw new EdgewardError('ERR_POLICY_RULE_REFERENCE', `${r.rule.id}: a rule is listed twice`);
    }
    return { ...r.rule, rules };
  });
  const finalDetections = detections.map((d) =>
    referenced.has(d.id) && !generating.has(d.id) ? { ...d, generate: false } : d,
  );
  return { detections: finalDetections, correlations };
}
