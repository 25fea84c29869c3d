// Parses rule files (YAML, one or more Sigma-style documents each) into compiled rules and
// resolves correlation references. Every refusal is an ERR_POLICY_RULE_* code naming the place.
import { isMap, isScalar, isSeq, parseAllDocuments } from 'yaml';
import { parseDuration } from '../../common/clock.js';
import { EdgewardError } from '../../common/errors.js';
import { compileSchema, POISON_KEYS, type SchemaContext } from '../../common/schema.js';
import { createHash } from 'node:crypto';
import { validateEvent, type EdgeEvent } from '../../common/events.js';
import { andDetections, compileDetection, type Placeholders } from './detection.js';
import { mapDetection, mappingsFor, type Pipeline } from './pipeline.js';
import {
  CORRELATION_TYPES,
  LEVELS,
  type CompareOp,
  type Criterion,
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

const ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const STATUSES = ['stable', 'test', 'experimental', 'deprecated', 'unsupported'];
const RELATED = ['derived', 'obsolete', 'merged', 'renamed', 'similar'];
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const MAX_KEYS = 64;
const OPS: readonly CompareOp[] = ['gt', 'gte', 'lt', 'lte', 'eq', 'neq'];
const METRICS: readonly CorrelationType[] = ['value_sum', 'value_avg', 'value_percentile'];

type Rec = Readonly<Record<string, unknown>>;

function schema(where: string, msg: string): never {
  throw new EdgewardError('ERR_POLICY_RULE_SCHEMA', `${where}: ${msg}`);
}

function isRec(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
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

/** A Sigma timespan: a whole number and one of s, m, h, d, in lower case (`90m`). */
function timespan(v: unknown, where: string): number {
  const m = typeof v === 'string' ? /^([1-9]\d{0,8})([smhd])$/.exec(v) : null;
  if (m === null)
    throw new EdgewardError(
      'ERR_POLICY_RULE_DURATION',
      `${where}: a timespan is a whole number and s, m, h or d (e.g. 90s, 5m, 1h, 7d)`,
    );
  const ms = Number(m[1]) * ({ s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as string] ?? 1000);
  if (ms > MAX_TIMESPAN) throw new EdgewardError('ERR_POLICY_RULE_DURATION', `${where}: at most 7 days`);
  return ms;
}

/** Custom attributes are allowed (Sigma); only the count and the poisoned names are bounded. */
function checkKeys(doc: Rec, where: string, allowed?: ReadonlySet<string>): void {
  const keys = Object.keys(doc);
  if (keys.length > MAX_KEYS) schema(where, `more than ${MAX_KEYS} keys`);
  for (const k of keys) {
    if (POISON_KEYS.has(k)) schema(`${where}.${k}`, 'forbidden key');
    if (allowed !== undefined && !allowed.has(k)) schema(`${where}.${k.slice(0, 64)}`, 'unknown key');
  }
}

function fieldName(f: unknown, where: string): string {
  if (typeof f !== 'string' || f.length === 0 || f.length > 256 || POISON_KEYS.has(f))
    throw new EdgewardError(
      'ERR_POLICY_RULE_FIELD',
      `${where}: ${String(f).slice(0, 64)} is not a field name`,
    );
  return f;
}

function fieldList(v: unknown, where: string, min: number): string[] {
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length < min || list.length > 8)
    schema(where, `needs ${min}..8 field names`);
  return list.map((f, i) => fieldName(f, `${where}.${i}`));
}

const ruleTests = compileSchema<RawTest[]>(
  {
    type: 'array',
    maxItems: 50,
    must: 'a list of at most 50 tests',
    items: {
      type: 'object',
      must: 'a map of name, expect and events',
      required: ['name', 'expect', 'events'],
      additionalProperties: false,
      properties: {
        name: { type: 'string', minLength: 1, maxLength: 256, must: 'text of 1..256 characters' },
        expect: { type: 'integer', minimum: 0, maximum: 1000, must: 'a count of alerts' },
        events: {
          type: 'array',
          minItems: 1,
          must: 'a non-empty list',
          items: {
            type: 'object',
            must: 'a map of at, repeat, every, vary and event',
            required: ['event'],
            additionalProperties: false,
            properties: {
              at: {},
              every: {},
              repeat: { type: 'integer', minimum: 1, maximum: 5000, must: '1..5000' },
              vary: {
                type: 'object',
                must: 'a map of field: [values]',
                additionalProperties: { type: 'array', minItems: 1, must: 'a non-empty list' },
              },
              event: { type: 'object', must: 'a map' },
            },
          },
        },
      },
    },
  },
  'ERR_POLICY_RULE_SCHEMA',
  'rule tests',
  { prefix: 'sigma' },
);

interface RawTest {
  readonly name: string;
  readonly expect: number;
  readonly events: readonly {
    readonly at?: unknown;
    readonly repeat?: number;
    readonly every?: unknown;
    readonly vary?: Readonly<Record<string, readonly unknown[]>>;
    readonly event: Rec;
  }[];
}

/** Expands a rule's `tests` (each event spec may repeat, with a step and cycling values). */
function parseTests(v: unknown, ctx: SchemaContext): RuleTest[] {
  if (v === undefined) return [];
  const where = `${ctx.file ?? 'rules'}#${ctx.document ?? 0}.tests`;
  return ruleTests(v, { ...ctx, at: 'tests' }).map((t, ti): RuleTest => {
    const w = `${where}.${ti}`;
    const events: EdgeEvent[] = [];
    t.events.forEach((s, si) => {
      const ws = `${w}.events.${si}`;
      const at = duration(s.at ?? 0, `${ws}.at`, 30 * 86_400_000);
      const repeat = s.repeat ?? 1;
      const every = duration(s.every ?? 0, `${ws}.every`);
      const vary = Object.entries(s.vary ?? {});
      for (let k = 0; k < repeat; k++) {
        const raw: Record<string, unknown> = { ...s.event, '@timestamp': TEST_EPOCH + at + k * every };
        for (const [f, vals] of vary) raw[f] = vals[k % vals.length];
        try {
          events.push(validateEvent(raw, { mode: 'stored', open: true }));
        } catch (err) {
          throw new EdgewardError('ERR_POLICY_RULE_SCHEMA', `${ws}: test event invalid`, { cause: err });
        }
        if (events.length > MAX_TEST_EVENTS) schema(w, 'too many test events');
      }
    });
    return { name: t.name, expect: t.expect, events };
  });
}

interface Common {
  id: string;
  name: string | undefined;
  title: string;
  description: string;
  level: Level;
  tests: RuleTest[];
  source: string;
}

const TEXT_LIST = {
  anyOf: [{ type: 'string' }, { type: 'array' }, { type: 'null' }],
  must: 'a list',
};

/** What a detection and a correlation document share (Sigma's metadata); custom keys are allowed. */
const ruleMeta = compileSchema<RuleMeta>(
  {
    type: 'object',
    properties: {
      title: { type: 'string', minLength: 1, maxLength: 256, must: 'text of 1..256 characters' },
      id: {
        type: 'string',
        pattern: ID.source,
        must: 'a UUID or a slug of 1..128 characters',
      },
      name: { type: 'string', pattern: NAME.source, must: '[A-Za-z0-9_.-]{1,64}' },
      status: { enum: STATUSES, must: `one of ${STATUSES.join(', ')}` },
      level: { enum: LEVELS, must: `one of ${LEVELS.join(', ')}` },
      description: {
        type: 'string',
        maxLength: 65_535,
        must: 'text of at most 65,535 characters',
      },
      // YAML reads an unquoted 2024-01-31 as text here (core schema), so a date is text.
      date: { type: 'string', pattern: DATE.source, must: 'a date YYYY-MM-DD' },
      modified: { type: 'string', pattern: DATE.source, must: 'a date YYYY-MM-DD' },
      related: {
        type: 'array',
        maxItems: 64,
        must: 'a list',
        items: {
          type: 'object',
          required: ['id', 'type'],
          properties: {
            id: { type: 'string', must: 'an id' },
            type: { enum: RELATED, must: `one of ${RELATED.join(', ')}` },
          },
          must: 'a map with an id and a type',
        },
      },
      tags: TEXT_LIST,
      references: TEXT_LIST,
      falsepositives: TEXT_LIST,
      fields: TEXT_LIST,
      scope: TEXT_LIST,
    },
    required: ['title'],
  },
  'ERR_POLICY_RULE_SCHEMA',
  'rule',
  { prefix: 'sigma' },
);

interface RuleMeta {
  readonly title: string;
  readonly id?: string;
  readonly name?: string;
  readonly level?: Level;
  readonly description?: string;
  readonly date?: string;
  readonly modified?: string;
}

function common(doc: Rec, ctx: SchemaContext): Common {
  const meta = ruleMeta(doc, ctx);
  for (const k of ['date', 'modified'] as const) {
    const d = meta[k];
    if (d !== undefined && Number.isNaN(Date.parse(d)))
      schema(`${place(ctx)}.${k}`, 'must be a date YYYY-MM-DD');
  }
  // Sigma makes id optional: a rule without one is known by its name, else by its place.
  const id =
    meta.id ??
    meta.name ??
    `rule-${createHash('sha256').update(`${ctx.file}#${ctx.document}`).digest('hex').slice(0, 16)}`;
  return {
    id,
    name: meta.name,
    title: meta.title,
    description: meta.description ?? '',
    level: meta.level ?? 'medium',
    tests: parseTests(doc['tests'], ctx),
    source: place(ctx),
  };
}

function place(ctx: SchemaContext): string {
  return `${ctx.file ?? 'rules'}#${ctx.document ?? 0}`;
}

export interface RawCorrelation {
  readonly rule: Omit<CorrelationRule, 'rules' | 'groupFields' | 'generate'>;
  readonly refs: readonly string[];
  /** alias -> (rule name or id -> field). */
  readonly aliases: ReadonlyMap<string, ReadonlyMap<string, string>>;
  readonly generate: boolean;
}

export interface ParsedFile {
  readonly detections: DetectionRule[];
  readonly correlations: RawCorrelation[];
}

export interface ParseOptions {
  /** Values of `expand` placeholders (`%name%` -> Sigma strings, OR-ed). */
  readonly placeholders?: Placeholders;
  /** Field-mapping pipelines applied to detection rules by their logsource (pipeline.ts). */
  readonly pipelines?: readonly Pipeline[];
}

/** Parses one rule file's text into unresolved rules. */
export function parseRuleText(text: string, file = 'rules', opts: ParseOptions = {}): ParsedFile {
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
    const first = d.errors[0];
    if (first !== undefined) {
      const path = yamlPath(d.contents, first.pos[0]);
      throw new EdgewardError(
        'ERR_POLICY_RULE_YAML',
        `${where}${path.map((p) => `.${p}`).join('')}: ${first.message.split('\n')[0] ?? 'bad YAML'}`,
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
    if (doc['correlation'] !== undefined) out.correlations.push(parseCorrelation(doc, where, di, file));
    else if (doc['detection'] !== undefined)
      out.detections.push(parseDetectionDoc(doc, where, di, file, opts));
    else schema(`${where}.detection`, 'a rule needs a detection or a correlation');
  });
  return out;
}

/** The key path of the node at text offset `pos` (where a YAML error is), as far as it can be read. */
function yamlPath(node: unknown, pos: number): (string | number)[] {
  const out: (string | number)[] = [];
  const within = (n: unknown) => {
    const r = (n as { range?: [number, number, number] } | null)?.range;
    return r !== undefined && pos >= r[0] && pos <= r[2];
  };
  let cur: unknown = node;
  for (let depth = 0; depth < 64 && cur !== null && cur !== undefined; depth++) {
    if (isMap(cur)) {
      const pair = cur.items.find((p) => within(p.key) || within(p.value));
      if (pair === undefined) break;
      out.push(isScalar(pair.key) ? String(pair.key.value) : '?');
      if (within(pair.key)) break;
      cur = pair.value;
    } else if (isSeq(cur)) {
      const i = cur.items.findIndex((x) => within(x));
      if (i < 0) break;
      out.push(i);
      cur = cur.items[i];
    } else break;
  }
  return out;
}

function suppressOf(doc: Rec, where: string, dflt: number): number {
  return doc['suppress'] === undefined ? dflt : duration(doc['suppress'], `${where}.suppress`);
}

function parseDetectionDoc(
  doc: Rec,
  where: string,
  di: number,
  file: string,
  opts: ParseOptions,
): DetectionRule {
  checkKeys(doc, where);
  const c = common(doc, { file, document: di });
  const dopts = opts.placeholders === undefined ? {} : { placeholders: opts.placeholders };
  const ls = doc['logsource'];
  const mappings = isRec(ls) && opts.pipelines !== undefined ? mappingsFor(opts.pipelines, ls) : [];
  let det = compileDetection(mapDetection(mappings, doc['detection']), `${where}.detection`, dopts);
  if (!isRec(ls)) schema(`${where}.logsource`, 'is required: a map of category, product, service');
  for (const k of ['category', 'product', 'service']) {
    const v = ls[k];
    if (v !== undefined && v !== null && typeof v !== 'string')
      schema(`${where}.logsource.${k}`, 'must be text');
  }
  // The mapped log source's own conditions select its events (an AND with the detection).
  for (const m of mappings) {
    if (m.conditions === null) continue;
    const sel = compileDetection(
      { logsource: m.conditions, condition: 'logsource' },
      `${where}.logsource`,
      dopts,
    );
    det = andDetections(det, sel);
  }
  return {
    kind: 'detection',
    ...c,
    match: det.match,
    actions: det.actions,
    index: det.index,
    generate: true,
    suppressMs: suppressOf(doc, where, 0),
    suppressBy:
      doc['suppress-by'] === undefined ? [] : fieldList(doc['suppress-by'], `${where}.suppress-by`, 1),
  };
}

/** The keys of a correlation block and the shapes of those that are not checked further below. */
const correlationShape = compileSchema<{
  readonly type: CorrelationType;
  readonly rules: string | readonly string[];
  readonly 'group-by': unknown;
  readonly timespan: unknown;
  readonly condition?: unknown;
  readonly generate?: boolean;
  readonly aliases?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}>(
  {
    type: 'object',
    must: 'a map',
    required: ['type', 'rules', 'group-by', 'timespan'],
    additionalProperties: false,
    properties: {
      type: { enum: CORRELATION_TYPES, must: `one of ${CORRELATION_TYPES.join(', ')}` },
      rules: {
        anyOf: [{ type: 'string' }, { type: 'array', minItems: 1, maxItems: 8, items: { type: 'string' } }],
        must: 'a list of 1..8 rule names or ids',
      },
      'group-by': {},
      timespan: {},
      condition: {},
      generate: { type: 'boolean', must: 'true or false' },
      aliases: {
        type: 'object',
        must: 'a map of alias names to { rule name: field }',
        additionalProperties: { type: 'object', must: 'a map of rule names to fields' },
      },
    },
  },
  'ERR_POLICY_RULE_CORRELATION',
  'correlation',
  { prefix: 'sigma', unknownKey: 'ERR_POLICY_RULE_SCHEMA' },
);

function parseCorrelation(doc: Rec, where: string, di: number, file: string): RawCorrelation {
  checkKeys(doc, where);
  const c = common(doc, { file, document: di });
  const w = `${where}.correlation`;
  const corr = correlationShape(doc['correlation'], { file, document: di, at: 'correlation' });
  const bad: (at: string, msg: string) => never = (at, msg) => {
    throw new EdgewardError('ERR_POLICY_RULE_CORRELATION', `${w}${at}: ${msg}`);
  };
  const t = corr.type;
  const refs = typeof corr.rules === 'string' ? [corr.rules] : corr.rules;
  if (t === 'temporal_ordered' && refs.length < 2) bad('.rules', 'temporal_ordered needs at least two rules');
  const groupBy = fieldList(corr['group-by'], `${w}.group-by`, 1);
  const timespanMs = timespan(corr.timespan, `${w}.timespan`);
  const generateRaw = corr.generate ?? doc['generate'] ?? false;
  if (typeof generateRaw !== 'boolean') bad('.generate', 'must be true or false');

  const aliases = new Map<string, Map<string, string>>();
  for (const [alias, m] of Object.entries(corr.aliases ?? {})) {
    const inner = new Map<string, string>();
    for (const [r, f] of Object.entries(m)) inner.set(r, fieldName(f, `${w}.aliases.${alias}.${r}`));
    aliases.set(alias, inner);
  }

  const condition: Criterion[] = [];
  let fields: string[] = [];
  let percentile = 50;
  const cond = corr['condition'];
  const temporal = t === 'temporal' || t === 'temporal_ordered';
  if (cond === undefined && !temporal) bad('.condition', `${t} needs a condition such as {gte: 5}`);
  if (cond !== undefined) {
    if (!isRec(cond)) bad('.condition', 'must be a map such as {gte: 5}');
    for (const [k, v] of Object.entries(cond)) {
      if (k === 'field' || (k === 'percentile' && t === 'value_percentile')) continue;
      if (!OPS.includes(k as CompareOp))
        bad(`.condition.${k.slice(0, 16)}`, 'is not gt, gte, lt, lte, eq or neq');
      const whole = t === 'event_count' || t === 'value_count' || temporal;
      if (typeof v !== 'number' || !Number.isFinite(v) || (whole && !Number.isInteger(v)) || v < 0)
        bad(`.condition.${k}`, whole ? 'must be a whole number' : 'must be a number');
      if (whole && v > MAX_THRESHOLD) bad(`.condition.${k}`, `must be at most ${MAX_THRESHOLD}`);
      condition.push({ op: k as CompareOp, value: v });
    }
    if (condition.length === 0) bad('.condition', 'needs one of gt, gte, lt, lte, eq, neq');
    const needsField = t === 'value_count' || METRICS.includes(t);
    if (needsField) {
      if (cond['field'] === undefined) bad('.condition.field', `${t} needs the field it measures`);
      fields = fieldList(cond['field'], `${w}.condition.field`, 1);
    } else if (cond['field'] !== undefined)
      bad('.condition.field', `only applies to value_count and value_*`);
    if (t === 'value_percentile' && cond['percentile'] !== undefined) {
      const p = cond['percentile'];
      if (typeof p !== 'number' || !(p >= 0 && p <= 100)) bad('.condition.percentile', 'must be 0..100');
      percentile = p;
    }
  }
  // temporal: every listed rule by default; temporal_ordered: the whole sequence.
  if (condition.length === 0) condition.push({ op: 'gte', value: refs.length });
  return {
    rule: {
      kind: 'correlation',
      ...c,
      type: t,
      groupBy,
      timespanMs,
      condition,
      fields,
      percentile,
      suppressMs: suppressOf(doc, where, timespanMs),
    },
    refs: refs,
    aliases,
    generate: generateRaw,
  };
}

/** Resolves references across parsed files: ids unique, correlations point at rules, no cycles. */
export function resolveRules(files: readonly ParsedFile[]): RuleSet {
  const byRef = new Map<string, DetectionRule | RawCorrelation>();
  const ids = new Set<string>();
  const claim = (key: string, what: string, where: string) => {
    if (ids.has(key))
      throw new EdgewardError('ERR_POLICY_RULE_DUPLICATE', `${where}.${what}: ${key} is used twice`);
    ids.add(key);
  };
  const detections = files.flatMap((f) => f.detections);
  const raws = files.flatMap((f) => f.correlations);
  for (const d of [...detections, ...raws.map((r) => r.rule)]) {
    if (d.name !== d.id) claim(d.id, 'id', d.source);
    if (d.name !== undefined) claim(d.name, 'name', d.source);
  }
  for (const d of detections) {
    byRef.set(d.id, d);
    if (d.name !== undefined) byRef.set(d.name, d);
  }
  for (const r of raws) {
    byRef.set(r.rule.id, r);
    if (r.rule.name !== undefined) byRef.set(r.rule.name, r);
  }
  const idOf = (x: DetectionRule | RawCorrelation) => ('kind' in x ? x.id : x.rule.id);
  const resolved = new Map<string, string[]>();
  for (const r of raws) {
    resolved.set(
      r.rule.id,
      r.refs.map((ref, i) => {
        const d = byRef.get(ref);
        if (d === undefined)
          throw new EdgewardError(
            'ERR_POLICY_RULE_REFERENCE',
            `${r.rule.source}.correlation.rules.${i}: ${ref.slice(0, 64)} is not a rule in this set`,
          );
        return idOf(d);
      }),
    );
  }
  // Chains must end at detection rules: a correlation never reaches itself. A cycle is reported
  // at the first correlation of the file order on it, at the reference that leads into it.
  const corrIds = new Set(raws.map((r) => r.rule.id));
  const done = new Set<string>();
  for (const root of raws) {
    (resolved.get(root.rule.id) ?? []).forEach((first, index) => {
      const onPath = new Set<string>([root.rule.id]);
      const visit = (id: string): void => {
        if (!corrIds.has(id) || done.has(id)) return;
        if (onPath.has(id))
          throw new EdgewardError(
            'ERR_POLICY_RULE_REFERENCE',
            `${root.rule.source}.correlation.rules.${index}: the chain of correlations refers back to ${id}`,
          );
        onPath.add(id);
        for (const ref of resolved.get(id) ?? []) visit(ref);
        onPath.delete(id);
      };
      visit(first);
    });
    done.add(root.rule.id);
  }

  const referenced = new Set<string>();
  const generating = new Set<string>();
  const correlations: CorrelationRule[] = raws.map((r) => {
    const rules = resolved.get(r.rule.id) as string[];
    for (const id of rules) {
      referenced.add(id);
      if (r.generate) generating.add(id);
    }
    if (r.rule.type !== 'temporal_ordered' && new Set(rules).size !== rules.length) {
      throw new EdgewardError(
        'ERR_POLICY_RULE_REFERENCE',
        `${r.rule.source}.correlation.rules: a rule is listed twice`,
      );
    }
    // Aliases name rules by name (or id); each group-by name resolves per referenced rule.
    const aliasById = new Map<string, ReadonlyMap<string, string>>();
    for (const [alias, m] of r.aliases) {
      const inner = new Map<string, string>();
      for (const [ref, field] of m) {
        const d = byRef.get(ref);
        if (d === undefined || !rules.includes(idOf(d)))
          throw new EdgewardError(
            'ERR_POLICY_RULE_REFERENCE',
            `${r.rule.source}.correlation.aliases.${alias}.${ref.slice(0, 64)}: not a rule of this correlation`,
          );
        inner.set(idOf(d), field);
      }
      aliasById.set(alias, inner);
    }
    const groupFields = new Map<string, string[]>();
    for (const id of rules) {
      groupFields.set(
        id,
        r.rule.groupBy.map((g) => aliasById.get(g)?.get(id) ?? g),
      );
    }
    return { ...r.rule, rules, groupFields, generate: true };
  });
  const finalDetections = detections.map((d) =>
    referenced.has(d.id) && !generating.has(d.id) ? { ...d, generate: false } : d,
  );
  const finalCorrelations = correlations.map((c) =>
    referenced.has(c.id) && !generating.has(c.id) ? { ...c, generate: false } : c,
  );
  return { detections: finalDetections, correlations: finalCorrelations };
}
