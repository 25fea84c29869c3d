// The SigmaHQ rule corpus through the shipped field-mapping pipelines: how many rules load, how many
// have a log source a pipeline covers, why the rest are refused, and how many of the rules that
// ship regression_data samples fire on their own sample. Not part of CI (needs a SigmaHQ/sigma
// checkout).
// Run: npm run build && node dist/bench/sigma-corpus.js --sigma /path/to/SigmaHQ/sigma [--json]
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { EdgewardError } from '../common/errors.js';
import { flattenEvent, type EdgeEvent } from '../common/events.js';
import {
  mappingsFor,
  parsePipeline,
  parseRuleText,
  resolveRules,
  type DetectionRule,
  type Pipeline,
} from '../policies/rules/index.js';

const RULE_DIRS = ['rules', 'rules-emerging-threats', 'rules-threat-hunting', 'rules-placeholder'];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
}

function walk(dir: string, ext: string, out: string[] = []): string[] {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return out;
  }
  for (const n of names) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) walk(p, ext, out);
    else if (n.endsWith(ext)) out.push(p);
  }
  return out;
}

/** The JSON values of a file holding one value, an array, or several objects one after another. */
function jsonValues(text: string): unknown[] {
  const out: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') {
      if (depth++ === 0) start = i;
    } else if ((c === '}' || c === ']') && --depth === 0) {
      const v = JSON.parse(text.slice(start, i + 1)) as unknown;
      if (Array.isArray(v)) out.push(...(v as unknown[]));
      else out.push(v);
    }
  }
  return out;
}

const sigma = arg('--sigma');
if (sigma === undefined) {
  console.error('usage: node dist/bench/sigma-corpus.js --sigma DIR (a SigmaHQ/sigma checkout) [--json]');
  process.exit(2);
}
const pipeDir = join(import.meta.dirname, '..', '..', 'policies', 'default', 'pipelines');
const pipelines: Pipeline[] = ['ecs.yaml', 'windows-eventlog.yaml'].map((f) =>
  parsePipeline(readFileSync(join(pipeDir, f), 'utf8'), f),
);

interface Tally {
  files: number;
  rules: number;
  loaded: number;
  covered: number;
  coveredLoaded: number;
  refused: Map<string, { count: number; example: string }>;
  byProduct: Map<string, { rules: number; loaded: number }>;
}
const t: Tally = {
  files: 0,
  rules: 0,
  loaded: 0,
  covered: 0,
  coveredLoaded: 0,
  refused: new Map(),
  byProduct: new Map(),
};
const byId = new Map<string, DetectionRule>();
const started = performance.now();
for (const d of RULE_DIRS) {
  for (const file of walk(join(sigma, d), '.yml')) {
    t.files++;
    const text = readFileSync(file, 'utf8');
    const rel = relative(sigma, file);
    let docs: unknown[] = [];
    try {
      docs = [parseYaml(text) as unknown];
    } catch {
      docs = [null];
    }
    const doc = docs[0] as Record<string, unknown> | null;
    const ls = (doc?.['logsource'] ?? {}) as Record<string, unknown>;
    const product =
      typeof ls['product'] === 'string'
        ? ls['product']
        : typeof ls['category'] === 'string'
          ? `(${ls['category']})`
          : '?';
    const covered = mappingsFor(pipelines, ls).length > 0;
    const p = t.byProduct.get(product) ?? { rules: 0, loaded: 0 };
    t.byProduct.set(product, p);
    p.rules++;
    t.rules++;
    if (covered) t.covered++;
    try {
      const set = resolveRules([parseRuleText(text, rel, { pipelines })]);
      for (const r of set.detections) byId.set(r.id, r);
      t.loaded++;
      p.loaded++;
      if (covered) t.coveredLoaded++;
    } catch (err) {
      const code = err instanceof EdgewardError ? err.code : 'thrown';
      const msg = err instanceof Error ? err.message : String(err);
      const key = `${code}: ${msg.replace(/^[^:]*: /, '').slice(0, 60)}`;
      const e = t.refused.get(key) ?? { count: 0, example: rel };
      e.count++;
      t.refused.set(key, e);
    }
  }
}
const loadMs = performance.now() - started;

// Regression samples: regression_data/**/info.yml names the rule; the .json beside each .evtx is
// the sample event as JSON.
let withData = 0;
let loadedWithData = 0;
let fired = 0;
const missed: string[] = [];
for (const info of walk(join(sigma, 'regression_data'), 'info.yml')) {
  const meta = parseYaml(readFileSync(info, 'utf8')) as {
    rule_metadata?: { id?: string }[];
    regression_tests_info?: { path?: string; type?: string }[];
  };
  const id = meta.rule_metadata?.[0]?.id;
  if (id === undefined) continue;
  withData++;
  const rule = byId.get(id);
  if (rule === undefined) continue;
  loadedWithData++;
  let hit = false;
  for (const test of meta.regression_tests_info ?? []) {
    if (test.path === undefined) continue;
    const json = join(sigma, test.path.replace(/\.evtx$/, '.json'));
    let events: unknown[];
    try {
      events = jsonValues(readFileSync(json, 'utf8'));
    } catch {
      continue;
    }
    for (const ev of events) {
      try {
        if (rule.match(flattenEvent(ev as Record<string, unknown>) as unknown as EdgeEvent)) hit = true;
      } catch {
        // an event beyond the open-ingest bounds would be refused at ingest
      }
    }
  }
  if (hit) fired++;
  else missed.push(`${id} ${rule.title}`);
}

const refused = [...t.refused.entries()].sort((a, b) => b[1].count - a[1].count);
const products = [...t.byProduct.entries()].sort((a, b) => b[1].rules - a[1].rules);
const summary = {
  files: t.files,
  rules: t.rules,
  loaded: t.loaded,
  covered: t.covered,
  coveredLoaded: t.coveredLoaded,
  loadMs: Math.round(loadMs),
  regression: { rulesWithData: withData, loaded: loadedWithData, fired },
  products: Object.fromEntries(products.slice(0, 12)),
  refusedByCode: Object.fromEntries([
    ...refused.reduce(
      (m, [k, v]) => m.set(k.split(':')[0] as string, (m.get(k.split(':')[0] as string) ?? 0) + v.count),
      new Map<string, number>(),
    ),
  ]),
  refused: refused.slice(0, 15).map(([k, v]) => ({ reason: k, count: v.count, example: v.example })),
  missed: missed.slice(0, 20),
};
if (process.argv.includes('--json')) console.log(JSON.stringify(summary, null, 2));
else {
  console.log(
    `SigmaHQ corpus: ${t.files} files, ${t.loaded} of ${t.rules} rules load (${(loadMs / 1000).toFixed(1)} s)`,
  );
  console.log(`  logsource covered by a shipped pipeline: ${t.covered}; of those loaded: ${t.coveredLoaded}`);
  console.log(
    `  regression_data: ${withData} rules with samples, ${loadedWithData} loaded, ${fired} fire on their own sample`,
  );
  console.log('  by product (rules / loaded):');
  for (const [k, v] of products.slice(0, 12)) console.log(`    ${k}: ${v.rules} / ${v.loaded}`);
  console.log('  refused:');
  for (const [k, v] of refused.slice(0, 15)) console.log(`    ${v.count}  ${k}  (e.g. ${v.example})`);
  if (missed.length > 0) console.log(`  not firing on their sample: ${missed.slice(0, 20).join('; ')}`);
}
