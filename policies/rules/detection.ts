// Compiles a Sigma `detection` block into one predicate over EdgeEvents, once, at load time:
// field lookups, value sets, CIDR masks and regexes are all prepared here, not per event.
import { EdgewardError } from '../../common/errors.js';
import { FIELDS, isEventField, type EdgeEvent, type FieldSpec } from '../../common/events.js';
import { compileCidrMatcher, parseIpOrCidr, type Cidr } from '../../common/ip.js';
import { parseCondition, type Cond } from './condition.js';
import { compileRuleRegex, type RuleRegex } from './linear-regex.js';

type Pred = (e: EdgeEvent) => boolean;
type Rec = Readonly<Record<string, unknown>>;

const COMPARE = new Set([
  'startswith',
  'prefix',
  'endswith',
  'contains',
  'cidr',
  're',
  'exists',
  'gt',
  'gte',
  'lt',
  'lte',
]);
const MAX_VALUES = 1000;
const MAX_SEARCHES = 64;
const MAX_ENTRIES = 64;
const MAX_VALUE_LENGTH = 1024;
const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const POISON = new Set(['__proto__', 'constructor', 'prototype']);

export interface CompiledDetection {
  readonly match: Pred;
  readonly actions: ReadonlySet<string> | null;
}

function schemaError(where: string, msg: string): EdgewardError {
  return new EdgewardError('ERR_POLICY_RULE_SCHEMA', `${where}: ${msg}`);
}

function isPlainObject(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNumeric(spec: FieldSpec): boolean {
  return spec.type === 'int' || spec.type === 'time';
}

interface Entry {
  readonly pred: Pred;
  /** The literal event.action values this entry requires, if it is a plain equality on it. */
  readonly actions: ReadonlySet<string> | null;
}

function compileEntry(key: string, raw: unknown, where: string): Entry {
  const parts = key.split('|');
  const field = parts[0] ?? '';
  if (!isEventField(field)) {
    throw new EdgewardError('ERR_POLICY_RULE_FIELD', `${where}: ${field.slice(0, 64)} is not an event field`);
  }
  const spec: FieldSpec = FIELDS[field];
  const mods = parts.slice(1);
  let cmp: string | null = null;
  let all = false;
  let ci = false;
  for (const m of mods) {
    if (m === 'all') all = true;
    else if (m === 'i' && cmp === 're') ci = true;
    else if (COMPARE.has(m) && cmp === null) cmp = m === 'prefix' ? 'startswith' : m;
    else
      throw new EdgewardError(
        'ERR_POLICY_RULE_MODIFIER',
        `${where}: modifier ${m.slice(0, 32)} unknown or misplaced`,
      );
  }
  const list = Array.isArray(raw) ? (raw as unknown[]) : [raw];
  if (list.length === 0 || list.length > MAX_VALUES)
    throw schemaError(where, `${key} needs 1..${MAX_VALUES} values`);
  const get = (e: EdgeEvent): unknown => (e as Rec)[field];

  if (cmp === 'exists') {
    if (list.length !== 1 || typeof list[0] !== 'boolean')
      throw schemaError(where, `${key} takes true or false`);
    const want = list[0];
    return { pred: (e) => (get(e) !== undefined) === want, actions: null };
  }

  const allowNull = cmp === null;
  const values = list.filter((v) => v !== null);
  const wantsAbsent = values.length !== list.length;
  if (wantsAbsent && !allowNull) throw schemaError(where, `${key}: null is only allowed without modifiers`);

  let one: ((v: unknown) => boolean) | null = null;
  let many: Pred | null = null;
  let actions: ReadonlySet<string> | null = null;

  const strings = (): string[] =>
    values.map((v) => {
      if (typeof v === 'number' && Number.isFinite(v)) return String(v);
      if (typeof v !== 'string' || v.length > MAX_VALUE_LENGTH)
        throw schemaError(where, `${key} values must be strings`);
      return v;
    });
  const numbers = (): number[] =>
    values.map((v) => {
      if (typeof v !== 'number' || !Number.isFinite(v))
        throw schemaError(where, `${key} values must be numbers`);
      return v;
    });

  switch (cmp) {
    case null: {
      if (isNumeric(spec)) {
        const set = new Set(numbers());
        one = (v) => typeof v === 'number' && set.has(v);
      } else {
        const set = new Set(strings());
        one = (v) => typeof v === 'string' && set.has(v);
        if (field === 'event.action' && !wantsAbsent && !all) actions = set;
      }
      break;
    }
    case 'startswith':
    case 'endswith':
    case 'contains': {
      if (isNumeric(spec))
        throw new EdgewardError('ERR_POLICY_RULE_MODIFIER', `${where}: ${cmp} needs a text field`);
      const ss = strings();
      const f =
        cmp === 'startswith'
          ? (s: string, x: string) => s.startsWith(x)
          : cmp === 'endswith'
            ? (s: string, x: string) => s.endsWith(x)
            : (s: string, x: string) => s.includes(x);
      if (all) many = (e) => ss.every((x) => typeof get(e) === 'string' && f(get(e) as string, x));
      else one = (v) => typeof v === 'string' && ss.some((x) => f(v, x));
      break;
    }
    case 'cidr': {
      if (spec.type !== 'ip')
        throw new EdgewardError('ERR_POLICY_RULE_MODIFIER', `${where}: cidr needs an IP field`);
      // The one IP module (common/ip.ts): blocks canonical, host bits refused, a bare address is
      // its host block, mapped prefixes are IPv4, so the rule, the allowlist and agents agree.
      const blocks: Cidr[] = strings().map((s) => {
        try {
          return parseIpOrCidr(s);
        } catch (err) {
          throw new EdgewardError(
            'ERR_POLICY_RULE_CIDR',
            `${where}: ${key}: ${s.slice(0, 64)} is not a CIDR`,
            {
              cause: err,
            },
          );
        }
      });
      if (all) {
        const ms = blocks.map((b) => compileCidrMatcher([b]));
        many = (e) => typeof get(e) === 'string' && ms.every((m) => m(get(e) as string));
      } else {
        const m = compileCidrMatcher(blocks);
        one = (v) => typeof v === 'string' && m(v);
      }
      break;
    }
    case 're': {
      if (isNumeric(spec))
        throw new EdgewardError('ERR_POLICY_RULE_MODIFIER', `${where}: re needs a text field`);
      const res = values.map((v) => compileRuleRegex(v, ci ? ['i'] : [], `${where}: ${key}`));
      const test = (s: string, r: RuleRegex) => r.test(s);
      if (all) many = (e) => typeof get(e) === 'string' && res.every((r) => test(get(e) as string, r));
      else one = (v) => typeof v === 'string' && res.some((r) => test(v, r));
      break;
    }
    default: {
      if (!isNumeric(spec))
        throw new EdgewardError('ERR_POLICY_RULE_MODIFIER', `${where}: ${cmp} needs a numeric field`);
      const ns = numbers();
      const op =
        cmp === 'gt'
          ? (a: number, b: number) => a > b
          : cmp === 'gte'
            ? (a: number, b: number) => a >= b
            : cmp === 'lt'
              ? (a: number, b: number) => a < b
              : (a: number, b: number) => a <= b;
      if (all) many = (e) => typeof get(e) === 'number' && ns.every((x) => op(get(e) as number, x));
      else one = (v) => typeof v === 'number' && ns.some((x) => op(v, x));
    }
  }
  if (all && one !== null) {
    // `all` over plain equality: every listed value must equal the field (one value can).
    const o = one;
    const vs = values;
    many = (e) => vs.every((x) => get(e) === x) && o(get(e));
    one = null;
  }
  if (many !== null) return { pred: many, actions: null };
  const o = one as (v: unknown) => boolean;
  if (wantsAbsent) {
    if (values.length === 0) return { pred: (e) => get(e) === undefined, actions: null };
    return { pred: (e) => (get(e) === undefined ? true : o(get(e))), actions: null };
  }
  return { pred: (e) => o(get(e)), actions };
}

function compileMap(map: Rec, where: string): Entry {
  const keys = Object.keys(map);
  if (keys.length === 0 || keys.length > MAX_ENTRIES)
    throw schemaError(where, `a selection needs 1..${MAX_ENTRIES} fields`);
  const entries = keys.map((k) => {
    if (POISON.has(k)) throw schemaError(where, `forbidden key ${k}`);
    return compileEntry(k, map[k], where);
  });
  let actions: ReadonlySet<string> | null = null;
  for (const e of entries) if (e.actions !== null) actions = e.actions;
  // Cheapest first: the event.action equality rejects most events on its own.
  const preds = [...entries]
    .sort((a, b) => (b.actions !== null ? 1 : 0) - (a.actions !== null ? 1 : 0))
    .map((e) => e.pred);
  if (preds.length === 1) return { pred: preds[0] as Pred, actions };
  if (preds.length === 2) {
    const [a, b] = preds as [Pred, Pred];
    return { pred: (e) => a(e) && b(e), actions };
  }
  return { pred: (e) => preds.every((p) => p(e)), actions };
}

function compileSearch(raw: unknown, where: string): Entry {
  if (isPlainObject(raw)) return compileMap(raw, where);
  if (Array.isArray(raw)) {
    if (raw.length === 0 || raw.length > MAX_ENTRIES)
      throw schemaError(where, 'a list of selections needs 1..64 items');
    const alts = raw.map((m, i) => {
      if (!isPlainObject(m))
        throw schemaError(`${where}[${i}]`, 'keyword searches are not supported; use field: value');
      return compileMap(m, `${where}[${i}]`);
    });
    let actions: Set<string> | null = new Set();
    for (const a of alts) {
      if (a.actions === null) {
        actions = null;
        break;
      }
      for (const x of a.actions) actions.add(x);
    }
    const preds = alts.map((a) => a.pred);
    return { pred: (e) => preds.some((p) => p(e)), actions };
  }
  throw schemaError(where, 'a search must be a map of fields or a list of maps');
}

function union(sets: (ReadonlySet<string> | null)[]): ReadonlySet<string> | null {
  const out = new Set<string>();
  for (const s of sets) {
    if (s === null) return null;
    for (const x of s) out.add(x);
  }
  return out;
}

function intersect(sets: (ReadonlySet<string> | null)[]): ReadonlySet<string> | null {
  let acc: Set<string> | null = null;
  for (const s of sets) {
    if (s === null) continue;
    const keep: ReadonlySet<string> = s;
    const prev: Set<string> | null = acc;
    acc =
      prev === null ? new Set<string>(keep) : new Set<string>([...prev].filter((x: string) => keep.has(x)));
  }
  return acc;
}

function build(c: Cond, searches: ReadonlyMap<string, Entry>): Entry {
  switch (c.op) {
    case 'id':
      return searches.get(c.name) as Entry;
    case 'not': {
      const a = build(c.a, searches).pred;
      return { pred: (e) => !a(e), actions: null };
    }
    case 'and': {
      const items = c.items.map((x) => build(x, searches));
      const preds = items.map((x) => x.pred);
      const actions = intersect(items.map((x) => x.actions));
      if (preds.length === 2) {
        const [a, b] = preds as [Pred, Pred];
        return { pred: (e) => a(e) && b(e), actions };
      }
      return { pred: (e) => preds.every((p) => p(e)), actions };
    }
    case 'or': {
      const items = c.items.map((x) => build(x, searches));
      const preds = items.map((x) => x.pred);
      return { pred: (e) => preds.some((p) => p(e)), actions: union(items.map((x) => x.actions)) };
    }
  }
}

/** Compiles a Sigma detection block: named searches plus `condition`. */
export function compileDetection(raw: unknown, where: string): CompiledDetection {
  if (!isPlainObject(raw)) throw schemaError(where, 'detection must be a map');
  const searches = new Map<string, Entry>();
  let condition: unknown;
  const keys = Object.keys(raw);
  if (keys.length > MAX_SEARCHES + 1) throw schemaError(where, 'too many searches');
  for (const k of keys) {
    if (k === 'condition') {
      condition = raw[k];
      continue;
    }
    if (k === 'timeframe')
      throw schemaError(where, 'detection timeframe is not supported; use a correlation rule');
    if (!IDENT.test(k) || POISON.has(k)) throw schemaError(where, `bad search identifier ${k.slice(0, 64)}`);
    searches.set(k, compileSearch(raw[k], `${where}.${k}`));
  }
  if (searches.size === 0) throw schemaError(where, 'detection needs at least one search');
  const names = [...searches.keys()];
  let cond: Cond;
  if (typeof condition === 'string') cond = parseCondition(condition, names);
  else if (Array.isArray(condition) && condition.length > 0 && condition.length <= 16) {
    // Sigma: a list of conditions is their disjunction.
    cond = {
      op: 'or',
      items: condition.map((c) => {
        if (typeof c !== 'string')
          throw new EdgewardError('ERR_POLICY_RULE_CONDITION', `${where}: condition must be text`);
        return parseCondition(c, names);
      }),
    };
  } else throw new EdgewardError('ERR_POLICY_RULE_CONDITION', `${where}: detection needs a condition`);
  const built = build(cond, searches);
  return { match: built.pred, actions: built.actions };
}
