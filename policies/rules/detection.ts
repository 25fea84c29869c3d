// Compiles a Sigma `detection` block into one predicate over events, once, at load time: value
// patterns, CIDR masks, regexes and placeholder expansions are all prepared here, not per event.
// Semantics: the Sigma specification v2.1 (docs/rules.md lists where edgeward differs).
import { EdgewardError } from '../../common/errors.js';
import { POISON_KEYS } from '../../common/schema.js';
import { FIELDS, isEventField, type EdgeEvent, type FieldSpec } from '../../common/events.js';
import { canonicalIp, compileCidrMatcher, parseIpOrCidr, type Cidr } from '../../common/ip.js';
import { parseCondition, type Cond } from './condition.js';
import { compileRuleRegex, type RuleRegexFlag } from './linear-regex.js';
import {
  base64,
  base64offset,
  compileTextTest,
  concat,
  hasWildcards,
  literal,
  parseSigmaString,
  placeholders as splitPlaceholders,
  utf16,
  windash,
  wrap,
  type SigmaString,
  type TextTest,
} from './sigma-string.js';

type Pred = (e: EdgeEvent) => boolean;
type Rec = Readonly<Record<string, unknown>>;
type Code =
  | 'ERR_POLICY_RULE_SCHEMA'
  | 'ERR_POLICY_RULE_MODIFIER'
  | 'ERR_POLICY_RULE_FIELD'
  | 'ERR_POLICY_RULE_CIDR'
  | 'ERR_POLICY_RULE_PLACEHOLDER';

const MAX_VALUES = 4096;
const MAX_SEARCHES = 64;
const MAX_ENTRIES = 64;
const MAX_VALUE_LENGTH = 4096;
const IDENT = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
const TRANSFORMS = new Set([
  'contains',
  'startswith',
  'prefix',
  'endswith',
  'base64',
  'base64offset',
  'utf16le',
  'utf16be',
  'utf16',
  'wide',
  'windash',
  'expand',
]);
const COMPARE = new Set(['re', 'cidr', 'gt', 'gte', 'lt', 'lte', 'exists', 'fieldref']);
const TIME_PARTS = new Set(['minute', 'hour', 'day', 'week', 'month', 'year']);

/** Values of `%name%` placeholders for `expand` (each a Sigma string, wildcards allowed). */
export type Placeholders = ReadonlyMap<string, readonly string[]>;

export interface DetectionOptions {
  readonly placeholders?: Placeholders;
}

/**
 * Constant predicates a rule requires: field -> the values (as lower-case text) one of which the
 * field must hold for the rule to match. Empty: no such constraint. Used to index rules.
 */
export type IndexKeys = ReadonlyMap<string, ReadonlySet<string>>;
const NO_KEYS: IndexKeys = new Map();

export interface CompiledDetection {
  readonly match: Pred;
  /** Values of `event.action` the rule can possibly match (lower case), or null for any. */
  readonly actions: ReadonlySet<string> | null;
  readonly index: IndexKeys;
}

/** Both constraints hold: per field, the intersection. */
function allKeys(items: readonly IndexKeys[]): IndexKeys {
  const out = new Map<string, ReadonlySet<string>>();
  for (const k of items) {
    for (const [f, vs] of k) {
      const prev = out.get(f);
      out.set(f, prev === undefined ? vs : new Set([...prev].filter((x) => vs.has(x))));
    }
  }
  return out;
}

/** One of the constraints holds: only fields every item constrains, with the union of values. */
function anyKeys(items: readonly IndexKeys[]): IndexKeys {
  const first = items[0];
  if (first === undefined) return NO_KEYS;
  const out = new Map<string, ReadonlySet<string>>();
  for (const f of first.keys()) {
    if (!items.every((k) => k.has(f))) continue;
    const u = new Set<string>();
    for (const k of items) for (const x of k.get(f) as ReadonlySet<string>) u.add(x);
    out.set(f, u);
  }
  return out;
}

function fail(code: Code, where: string, msg: string): never {
  throw new EdgewardError(code, `${where}: ${msg}`);
}

function isPlainObject(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const specOf = (field: string): FieldSpec | undefined => (isEventField(field) ? FIELDS[field] : undefined);
const isNumericSpec = (s: FieldSpec | undefined) =>
  s !== undefined && (s.type === 'int' || s.type === 'time');

/** The event's value of a field: flat dotted keys (ingest flattens nested objects). */
function getter(field: string): (e: EdgeEvent) => unknown {
  return (e) => (e as Rec)[field];
}

/** Every scalar of a value, a list's elements included. */
function scalars(v: unknown, f: (x: string | number | boolean) => boolean): boolean {
  if (Array.isArray(v)) return v.some((x) => scalars(x, f));
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return f(v);
  return false;
}

const textOf = (x: string | number | boolean): string => (typeof x === 'string' ? x : String(x));

const NUMERIC_TEXT = /^\s*-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$/;
function numberOf(x: unknown): number | null {
  if (typeof x === 'number') return Number.isFinite(x) ? x : null;
  if (typeof x === 'string' && NUMERIC_TEXT.test(x)) return Number(x);
  return null;
}

function timeOf(x: unknown): Date | null {
  if (typeof x === 'number' && Number.isFinite(x)) return new Date(x);
  if (typeof x === 'string' && x.length <= 40) {
    const t = Date.parse(x);
    return Number.isNaN(t) ? null : new Date(t);
  }
  return null;
}

function isoWeek(d: Date): number {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() === 0 ? 7 : t.getUTCDay();
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  return Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7);
}

function timePart(part: string, d: Date): number {
  switch (part) {
    case 'minute':
      return d.getUTCMinutes();
    case 'hour':
      return d.getUTCHours();
    case 'day':
      return d.getUTCDate();
    case 'week':
      return isoWeek(d);
    case 'month':
      return d.getUTCMonth() + 1;
    default:
      return d.getUTCFullYear();
  }
}

interface Entry {
  readonly pred: Pred;
  /** The constant values this entry requires (plain equality, lower case). */
  readonly keys: IndexKeys;
}

interface Mods {
  transforms: string[];
  compare: string | null;
  reFlags: RuleRegexFlag[];
  time: string | null;
  all: boolean;
  cased: boolean;
  neq: boolean;
}

function readModifiers(mods: readonly string[], where: string): Mods {
  const m: Mods = {
    transforms: [],
    compare: null,
    reFlags: [],
    time: null,
    all: false,
    cased: false,
    neq: false,
  };
  for (const raw of mods) {
    const x = raw;
    const bad: (why: string) => never = (why) =>
      fail('ERR_POLICY_RULE_MODIFIER', where, `${x.slice(0, 32)} ${why}`);
    if (x === 'all' || x === 'cased' || x === 'neq') {
      if (m[x]) bad('given twice');
      m[x] = true;
    } else if ((x === 'i' || x === 'm' || x === 's') && m.compare === 're') {
      if (m.reFlags.includes(x)) bad('given twice');
      m.reFlags.push(x);
    } else if (TRANSFORMS.has(x)) {
      if (m.compare !== null && m.compare !== 'fieldref')
        bad(`cannot follow ${m.compare}: transformations come first`);
      m.transforms.push(x === 'prefix' ? 'startswith' : x === 'wide' ? 'utf16le' : x);
    } else if (COMPARE.has(x)) {
      if (m.compare !== null) bad(`cannot be combined with ${m.compare}`);
      m.compare = x;
    } else if (TIME_PARTS.has(x)) {
      if (m.time !== null || m.transforms.length > 0 || m.compare !== null)
        bad('must come first and once (time modifiers extract a number from a date)');
      m.time = x;
    } else bad('is not a Sigma modifier');
  }
  // Placeholders are replaced before anything else, wherever expand is written.
  const at = m.transforms.indexOf('expand');
  if (at > 0) m.transforms.unshift(...m.transforms.splice(at, 1));
  return m;
}

/** Applies the value-transforming modifiers in their order; a value may become several. */
function transformValues(
  raws: readonly (string | number | boolean)[],
  m: Mods,
  where: string,
  opts: DetectionOptions,
): SigmaString[] {
  let values: SigmaString[] = [];
  for (const raw of raws) {
    if (typeof raw !== 'string') {
      values.push(literal(String(raw)));
      continue;
    }
    if (raw.length > MAX_VALUE_LENGTH) fail('ERR_POLICY_RULE_SCHEMA', where, 'value too long');
    if (m.transforms[0] === 'expand') values.push(...expand(raw, where, opts.placeholders));
    else values.push(parseSigmaString(raw));
  }
  for (const t of m.transforms) {
    if (t === 'expand') continue;
    const next: SigmaString[] = [];
    for (const v of values) {
      const encoding = t.startsWith('base64') || t.startsWith('utf16');
      if (encoding && hasWildcards(v))
        fail('ERR_POLICY_RULE_MODIFIER', where, `${t} cannot encode a value with wildcards`);
      switch (t) {
        case 'contains':
          next.push(wrap(v, true, true));
          break;
        case 'startswith':
          next.push(wrap(v, false, true));
          break;
        case 'endswith':
          next.push(wrap(v, true, false));
          break;
        case 'base64':
          next.push(base64(v));
          break;
        case 'base64offset':
          next.push(...base64offset(v));
          break;
        case 'utf16le':
          next.push(utf16(v, 'le'));
          break;
        case 'utf16be':
          next.push(utf16(v, 'be'));
          break;
        case 'utf16':
          next.push(utf16(v, 'bom'));
          break;
        case 'windash': {
          const w = windash(v, MAX_VALUES);
          if (w === null)
            fail('ERR_POLICY_RULE_MODIFIER', where, `windash gives more than ${MAX_VALUES} values`);
          next.push(...w);
          break;
        }
      }
    }
    if (next.length > MAX_VALUES) fail('ERR_POLICY_RULE_MODIFIER', where, `more than ${MAX_VALUES} values`);
    values = next;
  }
  return values;
}

function expand(raw: string, where: string, config: Placeholders | undefined): SigmaString[] {
  let acc: SigmaString[] = [literal('')];
  for (const piece of splitPlaceholders(raw)) {
    if ('text' in piece) {
      // The text between placeholders keeps its wildcards and escapes.
      const s = parseSigmaString(piece.text);
      acc = acc.map((a) => concat(a, s));
      continue;
    }
    const vals = config?.get(piece.name);
    if (vals === undefined || vals.length === 0)
      fail('ERR_POLICY_RULE_PLACEHOLDER', where, `placeholder %${piece.name}% has no configured values`);
    const parsed = vals.map((v) => parseSigmaString(v));
    acc = acc.flatMap((a) => parsed.map((p) => concat(a, p)));
    if (acc.length > MAX_VALUES) fail('ERR_POLICY_RULE_PLACEHOLDER', where, 'placeholders expand too far');
  }
  return acc;
}

function combine(tests: readonly ((v: unknown) => boolean)[], all: boolean): (v: unknown) => boolean {
  if (tests.length === 1) return tests[0] as (v: unknown) => boolean;
  // Loops, not every/some with a closure: this runs per rule per event.
  if (all)
    return (v) => {
      for (let i = 0; i < tests.length; i++) if (!(tests[i] as (v: unknown) => boolean)(v)) return false;
      return true;
    };
  return (v) => {
    for (let i = 0; i < tests.length; i++) if ((tests[i] as (v: unknown) => boolean)(v)) return true;
    return false;
  };
}

/** A value test over texts: strings directly, numbers and booleans as text, lists element-wise. */
function onText(tests: readonly TextTest[]): (v: unknown) => boolean {
  const any = (t: string): boolean => {
    for (let i = 0; i < tests.length; i++) if ((tests[i] as TextTest)(t)) return true;
    return false;
  };
  const one = tests.length === 1 ? (tests[0] as TextTest) : any;
  return (v) => (typeof v === 'string' ? one(v) : scalars(v, (x) => one(textOf(x))));
}

function compileEntry(key: string, raw: unknown, where: string, opts: DetectionOptions): Entry {
  const at = `${where}.${key}`;
  const parts = key.split('|');
  const field = parts[0] ?? '';
  if (field.length > 256 || POISON_KEYS.has(field)) fail('ERR_POLICY_RULE_FIELD', at, 'bad field name');
  const m = readModifiers(parts.slice(1), at);
  if (field === '') return compileKeywords(raw, m, at, opts);
  const spec = specOf(field);
  const get = getter(field);
  const list = Array.isArray(raw) ? (raw as unknown[]) : [raw];
  if (list.length === 0 || list.length > MAX_VALUES)
    fail('ERR_POLICY_RULE_SCHEMA', at, `needs 1..${MAX_VALUES} values`);
  if (m.all && list.length < 2)
    fail('ERR_POLICY_RULE_MODIFIER', at, 'all needs a list of at least two values');

  if (m.compare === 'exists') {
    if (list.length !== 1 || typeof list[0] !== 'boolean' || m.transforms.length > 0 || m.neq || m.all)
      fail('ERR_POLICY_RULE_MODIFIER', at, 'exists takes true or false alone');
    const want = list[0];
    return { pred: (e) => (get(e) !== undefined) === want, keys: NO_KEYS };
  }

  // null: the field is absent or null; never inside a list (it shares no type with values).
  if (list.some((v) => v === null)) {
    if (Array.isArray(raw)) fail('ERR_POLICY_RULE_SCHEMA', at, 'null cannot be part of a list of values');
    if (m.transforms.length > 0 || m.compare !== null || m.time !== null || m.neq || m.all)
      fail('ERR_POLICY_RULE_MODIFIER', at, 'null takes no modifiers');
    return { pred: (e) => get(e) === undefined || get(e) === null, keys: NO_KEYS };
  }
  const scal = list.map((v) => {
    if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)))
      return v;
    return fail('ERR_POLICY_RULE_SCHEMA', at, 'values must be text, numbers or booleans');
  });

  if (m.compare === 'fieldref') {
    if (m.transforms.length > 0 || m.time !== null)
      fail('ERR_POLICY_RULE_MODIFIER', at, 'fieldref takes no other modifiers but neq and cased');
    const refs = scal.map((v) => {
      if (typeof v !== 'string' || v === '' || v.length > 256 || /[*?|]/.test(v))
        fail('ERR_POLICY_RULE_MODIFIER', at, 'fieldref names one field (no wildcards)');
      return getter(v);
    });
    const fold = (x: unknown) => (m.cased ? textOf(x as string) : textOf(x as string).toLowerCase());
    const ok = (x: unknown) => typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean';
    const tests = refs.map((r) => (e: EdgeEvent) => {
      const a = get(e);
      const b = r(e);
      if (!ok(a) || !ok(b)) return false;
      return (fold(a) === fold(b)) !== m.neq;
    });
    return {
      pred: m.all || m.neq ? (e) => tests.every((t) => t(e)) : (e) => tests.some((t) => t(e)),
      keys: NO_KEYS,
    };
  }

  let one: (v: unknown) => boolean;
  let keys: IndexKeys = NO_KEYS;
  const numericCompare =
    m.compare === 'gt' || m.compare === 'gte' || m.compare === 'lt' || m.compare === 'lte';

  if (m.time !== null) {
    if (spec !== undefined && spec.type !== 'time' && spec.type !== 'string' && spec.type !== 'keyword')
      fail('ERR_POLICY_RULE_MODIFIER', at, `${m.time} needs a date field`);
    if (m.compare !== null && !numericCompare)
      fail('ERR_POLICY_RULE_MODIFIER', at, `${m.time} compares numbers (plain, neq, gt, gte, lt, lte)`);
    const ns = scal.map(
      (v) => numberOf(v) ?? fail('ERR_POLICY_RULE_MODIFIER', at, `${m.time} values must be numbers`),
    );
    const part = m.time;
    const op = compareOp(m.compare ?? 'eq');
    const tests = ns.map((n) => (v: unknown) => {
      const d = timeOf(v);
      return d !== null && op(timePart(part, d), n);
    });
    one = combine(tests, m.all);
  } else if (numericCompare) {
    if (spec !== undefined && !isNumericSpec(spec))
      fail('ERR_POLICY_RULE_MODIFIER', at, `${m.compare} needs a numeric field`);
    if (m.transforms.length > 0)
      fail('ERR_POLICY_RULE_MODIFIER', at, `${m.compare} takes no transformations`);
    const ns = scal.map(
      (v) => numberOf(v) ?? fail('ERR_POLICY_RULE_MODIFIER', at, `${m.compare} needs numbers`),
    );
    const op = compareOp(m.compare as string);
    one = combine(
      ns.map((n) => (v: unknown) => {
        const x = numberOf(v);
        return x !== null && op(x, n);
      }),
      m.all,
    );
  } else if (m.compare === 'cidr') {
    if (spec !== undefined && spec.type !== 'ip')
      fail('ERR_POLICY_RULE_MODIFIER', at, 'cidr needs an IP field');
    if (m.transforms.length > 0) fail('ERR_POLICY_RULE_MODIFIER', at, 'cidr takes no transformations');
    // The one IP module (common/ip.ts): blocks canonical, host bits refused, a bare address is
    // its host block, mapped prefixes are IPv4, so the rule, the allowlist and agents agree.
    const blocks: Cidr[] = scal.map((s) => {
      try {
        return parseIpOrCidr(String(s));
      } catch (err) {
        throw new EdgewardError('ERR_POLICY_RULE_CIDR', `${at}: ${String(s).slice(0, 64)} is not a CIDR`, {
          cause: err,
        });
      }
    });
    const canonical = spec?.type === 'ip';
    const ipOf = (v: unknown): string | null => {
      if (typeof v !== 'string') return null;
      if (canonical) return v;
      try {
        return canonicalIp(v);
      } catch {
        return null;
      }
    };
    const matchers = m.all ? blocks.map((b) => compileCidrMatcher([b])) : [compileCidrMatcher(blocks)];
    one = (v) => {
      const ip = ipOf(v);
      return (
        ip !== null && (m.all ? matchers.every((x) => x(ip)) : (matchers[0] as (s: string) => boolean)(ip))
      );
    };
  } else if (m.compare === 're') {
    if (m.transforms.length > 0) fail('ERR_POLICY_RULE_MODIFIER', at, 're takes no transformations');
    if (m.cased)
      fail('ERR_POLICY_RULE_MODIFIER', at, 'cased applies to strings; a regex is cased unless re|i');
    const res = scal.map((v) => compileRuleRegex(v, m.reFlags, at));
    one = combine(
      res.map((r) => onText([(t) => r.test(t)])),
      m.all,
    );
  } else {
    if (spec !== undefined && isNumericSpec(spec) && m.transforms.some((t) => t !== 'expand'))
      fail('ERR_POLICY_RULE_MODIFIER', at, `${m.transforms.join('|')} needs a text field`);
    if (m.transforms.includes('windash') && scal.some((v) => typeof v !== 'string'))
      fail('ERR_POLICY_RULE_MODIFIER', at, 'windash applies to text values');
    const values = transformValues(scal, m, at, opts);
    // Encoded values are bytes: their letter case is part of the encoding.
    const encoded = m.transforms.some((t) => t.startsWith('base64') || t.startsWith('utf16'));
    const cased = m.cased || encoded;
    const tests: TextTest[] = values.map((v) => compileTextTest(v, cased));
    // base64offset gives alternatives for one value: OR inside, whatever `all` says across values.
    const groups: TextTest[][] =
      m.transforms.includes('base64offset') ||
      m.transforms.includes('windash') ||
      m.transforms[0] === 'expand'
        ? groupByOrigin(scal, values.length, tests)
        : tests.map((t) => [t]);
    const textTests = groups.map((g) => onText(g));
    one = combine(textTests, m.all);
    if (!m.all && !m.neq && !hasAnyWildcard(values) && m.transforms.length === 0)
      keys = new Map([
        [field, new Set(values.map((v) => ((v.parts[0] as string | undefined) ?? '').toLowerCase()))],
      ]);
  }

  if (m.neq) {
    const o = one;
    return {
      pred: (e) => {
        const v = get(e);
        return v !== undefined && v !== null && !o(v);
      },
      keys: NO_KEYS,
    };
  }
  return { pred: (e) => one(get(e)), keys };
}

function hasAnyWildcard(values: readonly SigmaString[]): boolean {
  return values.some((v) => hasWildcards(v) || v.parts.length > 1 || v.bytes);
}

/**
 * Splits the transformed tests back into one group per rule value, when a transformation made
 * several alternatives of one value (all then needs each rule value, any of its alternatives).
 * The counts are even per value for base64offset (3 or fewer) and windash; when they are not,
 * everything is one group of alternatives.
 */
function groupByOrigin(raws: readonly unknown[], n: number, tests: TextTest[]): TextTest[][] {
  if (raws.length === 1 || n % raws.length !== 0) return [tests];
  const k = n / raws.length;
  const out: TextTest[][] = [];
  for (let i = 0; i < raws.length; i++) out.push(tests.slice(i * k, (i + 1) * k));
  return out;
}

function compareOp(op: string): (a: number, b: number) => boolean {
  switch (op) {
    case 'gt':
      return (a, b) => a > b;
    case 'gte':
      return (a, b) => a >= b;
    case 'lt':
      return (a, b) => a < b;
    case 'lte':
      return (a, b) => a <= b;
    default:
      return (a, b) => a === b;
  }
}

/** Every value of an event, for keyword searches (field names are not searched). */
function anyValue(e: EdgeEvent, f: (x: string | number | boolean) => boolean): boolean {
  for (const k in e) {
    if (scalars((e as Rec)[k], f)) return true;
  }
  return false;
}

/** A keyword search: each value is looked for inside any value of the event. */
function compileKeywords(raw: unknown, m: Mods, where: string, opts: DetectionOptions): Entry {
  const list = Array.isArray(raw) ? (raw as unknown[]) : [raw];
  if (list.length === 0 || list.length > MAX_VALUES) fail('ERR_POLICY_RULE_SCHEMA', where, 'needs keywords');
  if (m.all && list.length < 2) fail('ERR_POLICY_RULE_MODIFIER', where, 'all needs at least two keywords');
  if (m.compare !== null || m.time !== null || m.neq)
    fail('ERR_POLICY_RULE_MODIFIER', where, 'keywords take only transformations, all and cased');
  const scal = list.map((v) =>
    typeof v === 'string' || typeof v === 'number'
      ? v
      : fail('ERR_POLICY_RULE_SCHEMA', where, 'keywords must be text or numbers'),
  );
  const mods: Mods = { ...m, transforms: [...m.transforms] };
  if (!mods.transforms.some((t) => t === 'contains' || t === 'startswith' || t === 'endswith'))
    mods.transforms.push('contains');
  const values = transformValues(scal, mods, where, opts);
  const tests = values.map((v) => compileTextTest(v, m.cased));
  const groups = tests.length === scal.length ? tests.map((t) => [t]) : [tests];
  const preds = groups.map((g) => (e: EdgeEvent) => anyValue(e, (x) => g.some((t) => t(textOf(x)))));
  return { pred: m.all ? (e) => preds.every((p) => p(e)) : (e) => preds.some((p) => p(e)), keys: NO_KEYS };
}

function compileMap(map: Rec, where: string, opts: DetectionOptions): Entry {
  const names = Object.keys(map);
  if (names.length === 0 || names.length > MAX_ENTRIES)
    fail('ERR_POLICY_RULE_SCHEMA', where, `a selection needs 1..${MAX_ENTRIES} fields`);
  const entries = names.map((k) => {
    if (POISON_KEYS.has(k)) fail('ERR_POLICY_RULE_SCHEMA', where, `forbidden key ${k}`);
    return compileEntry(k, map[k], where, opts);
  });
  const keys = allKeys(entries.map((e) => e.keys));
  // Cheapest first: a constant equality rejects most events on its own.
  const preds = [...entries]
    .sort((a, b) => (b.keys.size > 0 ? 1 : 0) - (a.keys.size > 0 ? 1 : 0))
    .map((e) => e.pred);
  if (preds.length === 1) return { pred: preds[0] as Pred, keys };
  if (preds.length === 2) {
    const [a, b] = preds as [Pred, Pred];
    return { pred: (e) => a(e) && b(e), keys };
  }
  return { pred: (e) => preds.every((p) => p(e)), keys };
}

function compileSearch(raw: unknown, where: string, opts: DetectionOptions): Entry {
  if (isPlainObject(raw)) return compileMap(raw, where, opts);
  if (Array.isArray(raw)) {
    if (raw.length === 0 || raw.length > MAX_VALUES)
      fail('ERR_POLICY_RULE_SCHEMA', where, `a list needs 1..${MAX_VALUES} items`);
    if (raw.every((x) => typeof x === 'string' || typeof x === 'number'))
      return compileKeywords(raw, readModifiers([], where), where, opts);
    if (raw.length > MAX_ENTRIES)
      fail('ERR_POLICY_RULE_SCHEMA', where, 'a list of selections needs 1..64 maps');
    const alts = raw.map((m, i) => {
      if (!isPlainObject(m))
        fail('ERR_POLICY_RULE_SCHEMA', `${where}.${i}`, 'a list holds either keywords or maps, not both');
      return compileMap(m, `${where}.${i}`, opts);
    });
    const keys = anyKeys(alts.map((a) => a.keys));
    const preds = alts.map((a) => a.pred);
    return { pred: (e) => preds.some((p) => p(e)), keys };
  }
  if (typeof raw === 'string' || typeof raw === 'number')
    return compileKeywords([raw], readModifiers([], where), where, opts);
  return fail('ERR_POLICY_RULE_SCHEMA', where, 'a search must be a map, a list of maps or keywords');
}

function build(c: Cond, searches: ReadonlyMap<string, Entry>): Entry {
  switch (c.op) {
    case 'id':
      return searches.get(c.name) as Entry;
    case 'not': {
      const a = build(c.a, searches).pred;
      return { pred: (e) => !a(e), keys: NO_KEYS };
    }
    case 'and': {
      const items = c.items.map((x) => build(x, searches));
      const preds = items.map((x) => x.pred);
      const keys = allKeys(items.map((x) => x.keys));
      if (preds.length === 2) {
        const [a, b] = preds as [Pred, Pred];
        return { pred: (e) => a(e) && b(e), keys };
      }
      return { pred: (e) => preds.every((p) => p(e)), keys };
    }
    case 'or': {
      const items = c.items.map((x) => build(x, searches));
      const preds = items.map((x) => x.pred);
      return { pred: (e) => preds.some((p) => p(e)), keys: anyKeys(items.map((x) => x.keys)) };
    }
  }
}

/** Compiles a Sigma detection block: named searches plus `condition`. */
export function compileDetection(
  raw: unknown,
  where: string,
  opts: DetectionOptions = {},
): CompiledDetection {
  if (!isPlainObject(raw)) fail('ERR_POLICY_RULE_SCHEMA', where, 'detection must be a map');
  const searches = new Map<string, Entry>();
  let condition: unknown;
  const keys = Object.keys(raw);
  if (keys.length > MAX_SEARCHES + 1) fail('ERR_POLICY_RULE_SCHEMA', where, 'too many searches');
  for (const k of keys) {
    if (k === 'condition') {
      condition = raw[k];
      continue;
    }
    if (k === 'timeframe')
      fail(
        'ERR_POLICY_RULE_SCHEMA',
        `${where}.timeframe`,
        'detection timeframe is Sigma v1; use a correlation rule',
      );
    if (!IDENT.test(k) || POISON_KEYS.has(k))
      fail('ERR_POLICY_RULE_SCHEMA', `${where}.${k.slice(0, 64)}`, 'bad search identifier');
    searches.set(k, compileSearch(raw[k], `${where}.${k}`, opts));
  }
  if (searches.size === 0) fail('ERR_POLICY_RULE_SCHEMA', where, 'detection needs at least one search');
  const names = [...searches.keys()];
  const at = `${where}.condition`;
  let cond: Cond;
  if (typeof condition === 'string') cond = parseCondition(condition, names, at);
  else if (Array.isArray(condition) && condition.length > 0 && condition.length <= 16) {
    // Sigma: a list of conditions is their disjunction.
    cond = {
      op: 'or',
      items: condition.map((c, i) => {
        if (typeof c !== 'string')
          throw new EdgewardError('ERR_POLICY_RULE_CONDITION', `${at}.${i}: condition must be text`);
        return parseCondition(c, names, `${at}.${i}`);
      }),
    };
  } else throw new EdgewardError('ERR_POLICY_RULE_CONDITION', `${at}: detection needs a condition`);
  const built = build(cond, searches);
  return { match: built.pred, actions: built.keys.get('event.action') ?? null, index: built.keys };
}

/** Both detections must match; the event.action index is the intersection of theirs. */
export function andDetections(a: CompiledDetection, b: CompiledDetection): CompiledDetection {
  const ma = a.match;
  const mb = b.match;
  const index = allKeys([a.index, b.index]);
  return { match: (e) => mb(e) && ma(e), actions: index.get('event.action') ?? null, index };
}
