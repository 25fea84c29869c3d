// Checks the shape and provenance of the Sigma conformance vectors (README.md in this folder):
// every case names its source, parses, and has a well-formed expectation. It evaluates nothing.
import { parseAllDocuments } from 'yaml';

/** The specification's commit the vectors were written against. */
export const SPEC_COMMIT = 'ba9251aa834b11a70dbf80836b453dba99c5159e';

const RULES = 'specification/sigma-rules-specification.md';
const MODIFIERS = 'specification/sigma-appendix-modifiers.md';
const CORRELATION = 'specification/sigma-correlation-rules-specification.md';
const TAXONOMY = 'specification/sigma-appendix-taxonomy.md';
const V2 = 'other/version-1.0-2.0.md';
const DETECTION_SCHEMA = 'json-schema/sigma-detection-rule-schema.json';
const CORRELATION_SCHEMA = 'json-schema/sigma-correlation-rules-schema.json';

// The headings of each document at SPEC_COMMIT, so that a case's `section` names a real one.
const HEADINGS: Readonly<Record<string, readonly string[]>> = {
  [RULES]: [
    'File Structure',
    'Yaml File',
    'Schema',
    'Components',
    'Title',
    'Identification',
    'Name',
    'Taxonomy',
    'Status',
    'Description',
    'License',
    'Author',
    'References',
    'Date',
    'Modified',
    'LogSource',
    'Detection',
    'Search-Identifier',
    'General',
    'String Wildcard',
    'Escape Character',
    'Lists',
    'Maps',
    'Field Usage',
    'Special Field Values',
    'Field Existence',
    'Value Modifiers',
    'Modifier Types',
    'Placeholders',
    'Standard Placeholders',
    'Keywords search',
    'Condition',
    'Fields',
    'FalsePositives',
    'Level',
    'Tags',
    'Scope',
    'Rule Correlation',
    'Sigma Filters',
  ],
  [MODIFIERS]: [
    'Generic Modifiers',
    'String Modifiers',
    'Regular Expression',
    'Encoding',
    'Numeric Modifiers',
    'Time Modifiers',
    'IP (Internet Protocol) Modifiers',
    'Specific Modifiers',
  ],
  [CORRELATION]: [
    'Introduction',
    'Compatibility',
    'Type of Correlation rules',
    'Correlation rules',
    'File Structure',
    'YAML File',
    'Schema',
    'Syntax',
    'Components',
    'Title',
    'Identification',
    'Status',
    'Description',
    'Author',
    'References',
    'Date',
    'Modified',
    'Taxonomy',
    'Correlation section',
    'Correlation type',
    'Related rules',
    'Aliases',
    'Grouping',
    'Time Selection',
    'Condition',
    'FalsePositives',
    'Level',
    'Generate',
    'Correlation Types',
    'Event Count (event_count)',
    'Value Count (value_count)',
    'Temporal Proximity (temporal)',
    'Ordered Temporal Proximity (temporal_ordered)',
    'Value Sum (value_sum)',
    'Value Average (value_avg)',
    'Value Percentile (value_percentile)',
    'Field Name Aliases',
    'Field Name Aliases Example',
    'Example',
    'Failed Logins Followed by Successful Login',
  ],
  [TAXONOMY]: ['Log Sources', 'Network Events', 'Fields', 'Generic', 'Specific', 'Network category'],
  [V2]: [
    'Sigmac',
    'Date & Modified Field',
    'Tags Field',
    'Related Field',
    'Rx Schema',
    'Modifiers',
    'Correlation',
  ],
};
const SCHEMAS = new Set([DETECTION_SCHEMA, CORRELATION_SCHEMA]);
const BASES = new Set(['spec', 'spec-reading', 'pysigma', 'rsigma', 'choice']);
const KINDS = new Set([
  'yaml',
  'schema',
  'modifier',
  'regex',
  'cidr',
  'condition',
  'correlation',
  'reference',
  'duplicate',
  'duration',
  'placeholder',
]);
const CASE_KEYS = new Set(['id', 'about', 'from', 'rule', 'placeholders', 'events', 'expect']);
const FROM_KEYS = new Set(['doc', 'section', 'basis', 'tool', 'note', 'commit']);
const EXPECT_SHAPES = [['matches'], ['accepted'], ['refused'], ['alerting', 'detections', 'correlations']];
const ID = /^[a-z0-9][a-z0-9-]*$/;
const COMMIT = /^[0-9a-f]{40}$/;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

type Rec = Record<string, unknown>;

export interface CheckedCase {
  readonly id: string;
  readonly basis: string;
  /** matches | accepted | refused | rule-set */
  readonly shape: string;
}

export interface CheckedFile {
  readonly area: string;
  readonly cases: readonly CheckedCase[];
  /** Everything wrong, each prefixed with the file and case; empty when the file is good. */
  readonly problems: readonly string[];
}

function isRec(v: unknown): v is Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isText(v: unknown): v is string {
  return typeof v === 'string' && v.trim().length > 0;
}

/** Sorted, distinct, in-range event indices. */
function isIndexList(v: unknown, events: number): v is number[] {
  return (
    Array.isArray(v) &&
    v.every((x, i) => Number.isInteger(x) && x >= 0 && x < events && (i === 0 || x > (v[i - 1] as number)))
  );
}

/** The name and the id of each document of a rule set, with what kind of rule it is. */
function ruleDocs(
  docs: readonly unknown[],
): { keys: string[]; kind: 'detection' | 'correlation' | 'other' }[] {
  return docs.map((d) => {
    const keys: string[] = [];
    let kind: 'detection' | 'correlation' | 'other' = 'other';
    if (isRec(d)) {
      for (const k of ['name', 'id']) if (typeof d[k] === 'string') keys.push(d[k]);
      if (d['correlation'] !== undefined) kind = 'correlation';
      else if (d['detection'] !== undefined) kind = 'detection';
    }
    return { keys, kind };
  });
}

function checkFrom(from: unknown, bad: (msg: string) => void): string {
  if (!isRec(from)) {
    bad('from must be a map');
    return '';
  }
  for (const k of Object.keys(from)) if (!FROM_KEYS.has(k)) bad(`from: unknown key ${k}`);
  const { doc, section, basis, tool, note, commit } = from;
  if (typeof doc !== 'string' || (!(doc in HEADINGS) && !SCHEMAS.has(doc)))
    bad(`from.doc ${String(doc)} is not a known document`);
  else if (!isText(section)) bad('from.section is missing');
  else if (
    SCHEMAS.has(doc) ? !/^properties(\.[A-Za-z-]+)+$/.test(section) : !HEADINGS[doc]?.includes(section)
  )
    bad(`from.section "${section}" is not a heading of ${doc}`);
  if (typeof basis !== 'string' || !BASES.has(basis))
    bad(`from.basis ${String(basis)} is not one of ${[...BASES].join(', ')}`);
  if (basis !== 'spec' && !isText(note)) bad(`from.note is required for basis ${String(basis)}`);
  if (note !== undefined && !isText(note)) bad('from.note must be text');
  if ((basis === 'rsigma' || basis === 'pysigma') && !isText(tool))
    bad(`from.tool is required for basis ${basis}`);
  if (commit !== undefined && (typeof commit !== 'string' || !COMMIT.test(commit)))
    bad('from.commit must be 40 hex digits');
  return typeof basis === 'string' ? basis : '';
}

function checkEvents(events: unknown, needTime: boolean, bad: (msg: string) => void): number {
  if (events === undefined) return 0;
  if (!Array.isArray(events) || events.length === 0) {
    bad('events must be a non-empty list');
    return 0;
  }
  let last = -Infinity;
  events.forEach((e, i) => {
    if (!isRec(e)) return bad(`events[${i}] must be a map`);
    if (!needTime) return;
    const t = e['@timestamp'];
    if (typeof t !== 'string' || !ISO_UTC.test(t) || Number.isNaN(Date.parse(t)))
      return bad(`events[${i}] needs an @timestamp in ISO 8601 UTC`);
    if (Date.parse(t) < last) bad(`events[${i}] is older than the event before it`);
    last = Date.parse(t);
  });
  return events.length;
}

function checkRefusal(r: unknown, docs: readonly unknown[], bad: (msg: string) => void): void {
  if (!isRec(r)) return bad('expect.refused must be a map');
  const doc = r['doc'];
  if (!Number.isInteger(doc) || (doc as number) < 0 || (doc as number) >= docs.length)
    return bad(`expect.refused.doc ${String(doc)} is not a document of the rule`);
  const path = r['path'];
  if (!Array.isArray(path) || path.length === 0 || !path.every((p) => isText(p) || Number.isInteger(p)))
    return bad('expect.refused.path must be a non-empty list of keys and indices');
  // All but the last step must exist: the last may name what is missing.
  let node: unknown = docs[doc as number];
  for (const step of (path as (string | number)[]).slice(0, -1)) {
    let next: unknown;
    if (typeof step === 'number') next = Array.isArray(node) ? (node as unknown[])[step] : undefined;
    else next = isRec(node) ? node[step] : undefined;
    if (next === undefined) return bad(`expect.refused.path: ${String(step)} is not in the rule`);
    node = next;
  }
  if (typeof r['kind'] !== 'string' || !KINDS.has(r['kind']))
    bad(`expect.refused.kind ${String(r['kind'])} is unknown`);
  if (!isText(r['about'])) bad('expect.refused.about is missing');
}

function checkRuleSet(ex: Rec, docs: readonly unknown[], events: number, bad: (msg: string) => void): void {
  const rules = ruleDocs(docs);
  const find = (ref: string) => rules.find((r) => r.keys.includes(ref));
  const alerting = ex['alerting'];
  if (!Array.isArray(alerting) || !alerting.every((a) => typeof a === 'string' && find(a) !== undefined))
    bad('expect.alerting must list names or ids of rules of the set');
  const dets = ex['detections'] ?? {};
  if (!isRec(dets)) bad('expect.detections must be a map');
  else
    for (const [name, idx] of Object.entries(dets)) {
      if (find(name)?.kind !== 'detection')
        bad(`expect.detections: ${name} is not a detection rule of the set`);
      if (!isIndexList(idx, events)) bad(`expect.detections.${name}: sorted distinct event indices`);
    }
  const corrs = ex['correlations'];
  if (!isRec(corrs) || Object.keys(corrs).length === 0)
    return bad('expect.correlations must name a correlation');
  for (const [name, groups] of Object.entries(corrs)) {
    if (find(name)?.kind !== 'correlation')
      bad(`expect.correlations: ${name} is not a correlation rule of the set`);
    if (!Array.isArray(groups)) {
      bad(`expect.correlations.${name} must be a list of groups`);
      continue;
    }
    groups.forEach((g, gi) => {
      const w = `expect.correlations.${name}[${gi}]`;
      if (!isRec(g)) return bad(`${w} must be a map`);
      for (const k of Object.keys(g))
        if (!['group', 'holds_at', 'must_alert_at'].includes(k)) bad(`${w}: unknown key ${k}`);
      const group = g['group'];
      if (
        !isRec(group) ||
        Object.keys(group).length === 0 ||
        !Object.values(group).every((v) => ['string', 'number'].includes(typeof v))
      )
        bad(`${w}.group must map group-by fields to values`);
      const holds = g['holds_at'];
      if (!isIndexList(holds, events) || holds.length === 0)
        return bad(`${w}.holds_at: sorted distinct event indices, at least one`);
      const must = g['must_alert_at'];
      if (must !== undefined && (!isIndexList(must, events) || !must.every((m) => holds.includes(m))))
        bad(`${w}.must_alert_at must be indices taken from holds_at`);
    });
  }
}

function checkCase(c: unknown, file: string, problems: string[]): CheckedCase | null {
  const id = isRec(c) && typeof c['id'] === 'string' ? c['id'] : '?';
  const bad = (msg: string) => {
    problems.push(`${file} ${id}: ${msg}`);
  };
  if (!isRec(c)) {
    bad('a case must be a map');
    return null;
  }
  for (const k of Object.keys(c)) if (!CASE_KEYS.has(k)) bad(`unknown key ${k}`);
  if (!ID.test(id)) bad('id must be lower-case letters, digits and dashes');
  if (!isText(c['about'])) bad('about is missing');
  const basis = checkFrom(c['from'], bad);
  if (!isText(c['rule'])) {
    bad('rule must be YAML text');
    return null;
  }
  // Lenient parse: a case about duplicate keys must still be readable here.
  const parsed = parseAllDocuments(c['rule'], { uniqueKeys: false });
  const list = Array.isArray(parsed) ? parsed : [parsed];
  for (const d of list)
    if (d.errors.length > 0) bad(`rule is not YAML: ${d.errors[0]?.message.split('\n')[0] ?? ''}`);
  const docs = list.map((d) => d.toJS() as unknown);
  const ph = c['placeholders'];
  if (
    ph !== undefined &&
    (!isRec(ph) || !Object.values(ph).every((v) => Array.isArray(v) && v.every((x) => typeof x === 'string')))
  )
    bad('placeholders must map names to lists of strings');
  const ex = c['expect'];
  if (!isRec(ex)) {
    bad('expect must be a map');
    return null;
  }
  const shape = EXPECT_SHAPES.find(
    (s) => Object.keys(ex).every((k) => s.includes(k)) && Object.keys(ex).length > 0,
  );
  if (shape === undefined) {
    bad(`expect has an unknown shape (${Object.keys(ex).join(', ')})`);
    return null;
  }
  const ruleSet = shape.length > 1;
  const events = checkEvents(c['events'], ruleSet, bad);
  const kinds = ruleDocs(docs).map((r) => r.kind);
  if (shape[0] === 'matches') {
    if (kinds.length !== 1 || kinds[0] !== 'detection')
      bad('expect.matches needs exactly one detection rule');
    if (events === 0) bad('expect.matches needs events');
    if (!isIndexList(ex['matches'], events)) bad('expect.matches: sorted distinct event indices');
  } else if (shape[0] === 'accepted') {
    if (ex['accepted'] !== true) bad('expect.accepted must be true');
  } else if (shape[0] === 'refused') {
    checkRefusal(ex['refused'], docs, bad);
  } else {
    if (events === 0) bad('a rule set expectation needs events');
    checkRuleSet(ex, docs, events, bad);
  }
  return { id, basis, shape: ruleSet ? 'rule-set' : (shape[0] as string) };
}

/** Checks one case file's text; `file` is its name (area + `.yaml`). */
export function checkCaseFile(text: string, file: string): CheckedFile {
  const problems: string[] = [];
  const doc = parseAllDocuments(text);
  const list = Array.isArray(doc) ? doc : [doc];
  const first = list[0];
  if (list.length !== 1 || first === undefined || first.errors.length > 0) {
    return { area: '', cases: [], problems: [`${file}: not one YAML document`] };
  }
  const data = first.toJS() as unknown;
  if (!isRec(data)) return { area: '', cases: [], problems: [`${file}: must be a map`] };
  const area = typeof data['area'] === 'string' ? data['area'] : '';
  if (`${area}.yaml` !== file) problems.push(`${file}: area must be the file name without .yaml`);
  const spec = data['spec'];
  if (
    !isRec(spec) ||
    spec['repo'] !== 'SigmaHQ/sigma-specification' ||
    typeof spec['commit'] !== 'string' ||
    !COMMIT.test(spec['commit'])
  )
    problems.push(`${file}: spec must name SigmaHQ/sigma-specification and a commit`);
  const raw = data['cases'];
  if (!Array.isArray(raw) || raw.length === 0) {
    problems.push(`${file}: cases must be a non-empty list`);
    return { area, cases: [], problems };
  }
  const cases = raw.map((c) => checkCase(c, file, problems)).filter((c): c is CheckedCase => c !== null);
  return { area, cases, problems };
}

/** Checks a whole set of files: each file, plus ids unique across all of them. */
export function checkCaseFiles(files: readonly { name: string; text: string }[]): CheckedFile[] {
  const out = files.map((f) => checkCaseFile(f.text, f.name));
  const seen = new Map<string, string>();
  out.forEach((f, i) => {
    const name = files[i]?.name ?? '';
    for (const c of f.cases) {
      const other = seen.get(c.id);
      if (other !== undefined) (f.problems as string[]).push(`${name} ${c.id}: id also used in ${other}`);
      seen.set(c.id, name);
    }
  });
  return out;
}
