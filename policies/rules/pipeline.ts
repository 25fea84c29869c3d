// Field-mapping pipelines (as pySigma's processing pipelines, reduced to what a streaming engine
// needs): YAML that maps a rule's logsource and field names onto the fields events carry.
// A mapping whose logsource matches the rule's renames the rule's fields and adds the constant
// conditions that select that log source's events. Checked by `edgeward policy check`.
import { parseAllDocuments } from 'yaml';
import { EdgewardError } from '../../common/errors.js';
import { POISON_KEYS } from '../../common/schema.js';

const MAX_PIPELINE = 256 * 1024;
const MAX_MAPPINGS = 200;
const MAX_FIELDS = 500;
const LOGSOURCE_KEYS = new Set(['category', 'product', 'service']);
const FIELD = /^[^|\s]{1,256}$/;

type Rec = Readonly<Record<string, unknown>>;

export interface Mapping {
  /** Logsource keys that must equal the rule's (letter case ignored); empty matches every rule. */
  readonly logsource: Readonly<Record<string, string>>;
  /** Constant conditions (a Sigma selection) the events of that log source satisfy. */
  readonly conditions: Rec | null;
  /** Rule field -> event field. */
  readonly fields: ReadonlyMap<string, string>;
  /** Prefix for fields no mapping renames (e.g. `Event.EventData.` for Windows event logs). */
  readonly prefix: string;
}

export interface Pipeline {
  readonly id: string;
  readonly mappings: readonly Mapping[];
}

function fail(where: string, msg: string): never {
  throw new EdgewardError('ERR_POLICY_PIPELINE_INVALID', `${where}: ${msg}`);
}

function isRec(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function keysOf(r: Rec, where: string, allowed: ReadonlySet<string>): void {
  for (const k of Object.keys(r)) {
    if (POISON_KEYS.has(k) || !allowed.has(k)) fail(`${where}.${k.slice(0, 64)}`, 'unknown key');
  }
}

/** Parses one pipeline file (`kind: field-mapping`). */
export function parsePipeline(text: string, file = 'pipeline'): Pipeline {
  if (typeof text !== 'string' || text.length > MAX_PIPELINE) fail(file, 'larger than 256 KiB');
  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [docs];
  if (list.length !== 1) fail(file, 'a pipeline is one YAML document');
  const d = list[0] as (typeof list)[number];
  if (d.errors.length > 0) fail(`${file}#0`, d.errors[0]?.message.split('\n')[0] ?? 'bad YAML');
  const doc = d.toJS({ maxAliasCount: 0 }) as unknown;
  const w = `${file}#0`;
  if (!isRec(doc)) fail(w, 'must be a map');
  keysOf(doc, w, new Set(['kind', 'id', 'description', 'mappings']));
  if (doc['kind'] !== 'field-mapping') fail(`${w}.kind`, 'must be field-mapping');
  const id = doc['id'];
  if (typeof id !== 'string' || !/^[a-z0-9][a-z0-9-]{0,63}$/.test(id)) fail(`${w}.id`, 'must be a slug');
  const raw = doc['mappings'];
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_MAPPINGS)
    fail(`${w}.mappings`, `needs 1..${MAX_MAPPINGS} mappings`);
  const mappings = raw.map((m: unknown, i): Mapping => {
    const at = `${w}.mappings.${i}`;
    if (!isRec(m)) fail(at, 'must be a map');
    keysOf(m, at, new Set(['logsource', 'conditions', 'fields', 'prefix']));
    const ls = m['logsource'] ?? {};
    if (!isRec(ls)) fail(`${at}.logsource`, 'must be a map of category, product, service');
    const logsource: Record<string, string> = {};
    for (const [k, v] of Object.entries(ls)) {
      if (!LOGSOURCE_KEYS.has(k))
        fail(`${at}.logsource.${k.slice(0, 64)}`, 'must be category, product or service');
      if (typeof v !== 'string' || v === '' || v.length > 128) fail(`${at}.logsource.${k}`, 'must be text');
      logsource[k] = v.toLowerCase();
    }
    const cond = m['conditions'] ?? null;
    if (cond !== null && (!isRec(cond) || Object.keys(cond).length === 0 || Object.keys(cond).length > 16))
      fail(`${at}.conditions`, 'must be a selection of 1..16 field: value entries');
    const fr = m['fields'] ?? {};
    if (!isRec(fr) || Object.keys(fr).length > MAX_FIELDS)
      fail(`${at}.fields`, `must map up to ${MAX_FIELDS} fields`);
    const fields = new Map<string, string>();
    for (const [k, v] of Object.entries(fr)) {
      if (POISON_KEYS.has(k) || !FIELD.test(k)) fail(`${at}.fields.${k.slice(0, 64)}`, 'bad rule field name');
      if (typeof v !== 'string' || !FIELD.test(v) || POISON_KEYS.has(v))
        fail(`${at}.fields.${k}`, 'must be an event field name');
      fields.set(k, v);
    }
    const prefix = m['prefix'] ?? '';
    if (typeof prefix !== 'string' || prefix.length > 64 || !/^[^|\s]*$/.test(prefix))
      fail(`${at}.prefix`, 'must be a field-name prefix');
    return { logsource, conditions: cond, fields, prefix };
  });
  return { id, mappings };
}

/** The mappings of `pipelines` that apply to a rule's logsource, in order. */
export function mappingsFor(pipelines: readonly Pipeline[], logsource: Rec): Mapping[] {
  const out: Mapping[] = [];
  for (const p of pipelines) {
    for (const m of p.mappings) {
      const ok = Object.entries(m.logsource).every(([k, v]) => {
        const r = logsource[k];
        return typeof r === 'string' && r.toLowerCase() === v;
      });
      if (ok) out.push(m);
    }
  }
  return out;
}

/** The event field a rule field reads through the applicable mappings (the first that names it). */
export function mapField(mappings: readonly Mapping[], field: string): string {
  for (const m of mappings) {
    const f = m.fields.get(field);
    if (f !== undefined) return f;
  }
  for (const m of mappings) if (m.prefix !== '') return m.prefix + field;
  return field;
}

function mapSelection(mappings: readonly Mapping[], sel: Rec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(sel)) {
    const bar = key.indexOf('|');
    const field = bar < 0 ? key : key.slice(0, bar);
    const mods = bar < 0 ? '' : key.slice(bar);
    // Keyword maps (`'|all': [...]`) have no field; fieldref values name fields too.
    const mapped = field === '' ? '' : mapField(mappings, field);
    let v = value;
    if (/\|fieldref(\||$)/.test(mods)) {
      v = Array.isArray(value)
        ? value.map((x: unknown) => (typeof x === 'string' ? mapField(mappings, x) : x))
        : typeof value === 'string'
          ? mapField(mappings, value)
          : value;
    }
    out[mapped + mods] = v;
  }
  return out;
}

/** A rule's `detection` with its fields mapped (searches renamed; keywords and the condition kept). */
export function mapDetection(mappings: readonly Mapping[], detection: unknown): unknown {
  if (mappings.length === 0 || !isRec(detection)) return detection;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(detection)) {
    if (k === 'condition') out[k] = v;
    else if (isRec(v)) out[k] = mapSelection(mappings, v);
    else if (Array.isArray(v)) out[k] = v.map((x: unknown) => (isRec(x) ? mapSelection(mappings, x) : x));
    else out[k] = v;
  }
  return out;
}

/**
 * Parses a placeholder file (`kind: placeholders`, `values: { Administrators: [admin, root] }`):
 * the values `expand` substitutes, each a Sigma string (wildcards allowed).
 */
export function parsePlaceholders(text: string, file = 'placeholders'): Map<string, string[]> {
  if (typeof text !== 'string' || text.length > MAX_PIPELINE) fail(file, 'larger than 256 KiB');
  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [docs];
  const d = list[0];
  if (list.length !== 1 || d === undefined) fail(file, 'a placeholder file is one YAML document');
  if (d.errors.length > 0) fail(`${file}#0`, d.errors[0]?.message.split('\n')[0] ?? 'bad YAML');
  const doc = d.toJS({ maxAliasCount: 0 }) as unknown;
  const w = `${file}#0`;
  if (!isRec(doc)) fail(w, 'must be a map');
  keysOf(doc, w, new Set(['kind', 'description', 'values']));
  if (doc['kind'] !== 'placeholders') fail(`${w}.kind`, 'must be placeholders');
  const values = doc['values'];
  if (!isRec(values) || Object.keys(values).length > 1000)
    fail(`${w}.values`, 'must map up to 1000 names to lists');
  const out = new Map<string, string[]>();
  for (const [k, v] of Object.entries(values)) {
    if (POISON_KEYS.has(k) || !/^[A-Za-z0-9_.-]{1,64}$/.test(k))
      fail(`${w}.values.${k.slice(0, 64)}`, 'bad placeholder name');
    const vs = typeof v === 'string' ? [v] : v;
    if (
      !Array.isArray(vs) ||
      vs.length === 0 ||
      vs.length > 1000 ||
      !vs.every((x) => typeof x === 'string' && x.length <= 1024)
    )
      fail(`${w}.values.${k}`, 'must be text or a list of up to 1000 texts');
    out.set(k, vs as string[]);
  }
  return out;
}
