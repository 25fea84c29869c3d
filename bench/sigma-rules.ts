// Many rules: the default pack alone, and with 1,000 and 3,000 generated rules of the shapes a
// SOC's Sigma rules take once mapped (a constant predicate plus string, wildcard, regex and
// numeric matchers, a tenth of them correlations), on the mesh workload of bench/siem-correlate.
// Measures the engine alone (correlate) and ingest + correlate + persist (validate, stamp, SQLite
// batch insert, correlate, alert insert).
// Run: npm run build && node dist/bench/sigma-rules.js [events] [counts, e.g. 0,1000,3000]
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEventIdFactory, stampEvent, validateEvent, type EdgeEvent } from '../common/events.js';
import { parseRuleText, resolveRules, type RuleSet } from '../policies/rules/index.js';
import { Correlator } from '../siem/correlate/index.js';
import { measure, measurePipeline, syntheticEvents } from './siem-correlate.js';

const TD = 'factory.example';
const RULES = join(import.meta.dirname, '..', '..', 'policies', 'default', 'rules');

/** One generated rule document (k decides its shape; see the file comment). */
function generated(k: number): string {
  const head = `title: generated ${k}\nid: gen-${k}\nlogsource: { product: edgeward, service: generated }\n`;
  const det = (sel: string) => `${head}detection:\n  selection:\n${sel}  condition: selection\n`;
  switch (k % 10) {
    case 0:
    case 1:
    case 2:
    case 3:
      return det(
        `    event.action: connection.accepted\n    destination.identity: spiffe://${TD}/node/n${k % 200}\n    source.port|lt: 1030\n`,
      );
    case 4:
    case 5:
      return det(`    event.action: handshake.failure\n    event.reason: gen_reason_${k}\n`);
    case 6:
      return det(`    event.category: network\n    source.identity|endswith: '/d${k % 5000}x'\n`);
    case 7:
      return det(`    event.action: rotation\n    source.identity: '*/d${k % 5000}'\n`);
    case 8:
      return det(
        `    event.action: connection.denied\n    source.identity|re: '^spiffe://factory\\.example/device/d${k}$'\n`,
      );
    default:
      return (
        `title: generated ${k}\nid: gen-${k}\ncorrelation:\n  type: event_count\n  rules: [gen-${k - 9}]\n` +
        `  group-by: [source.identity]\n  timespan: 1m\n  condition: { gte: 3 }\n`
      );
  }
}

function ruleSet(extra: number): RuleSet {
  const files = readdirSync(RULES)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => parseRuleText(readFileSync(join(RULES, f), 'utf8'), f));
  const gen: string[] = [];
  for (let k = 0; k < extra; k++) gen.push(generated(k));
  // 100 documents per file, as a rule folder would hold them.
  for (let i = 0; i < gen.length; i += 100)
    files.push(parseRuleText(gen.slice(i, i + 100).join('---\n'), `gen-${i}.yaml`));
  return resolveRules(files);
}

const n = Number(process.argv[2] ?? 200_000);
const counts = (process.argv[3] ?? '0,1000,3000').split(',').map(Number);
const batch = 1000;
const raw = syntheticEvents(n);
const observer = `spiffe://${TD}/node/n1`;
const ids = createEventIdFactory(randomBytes);
const stamped: EdgeEvent[] = raw.map((e) => {
  const v = validateEvent(e);
  return stampEvent(v, { id: ids(v['@timestamp']), observer, ingested: v['@timestamp'] });
});

const results = [];
for (const extra of counts) {
  const t0 = performance.now();
  const rules = ruleSet(extra);
  const loadMs = Math.round(performance.now() - t0);
  const engine = new Correlator(rules);
  let alerts = 0;
  const correlate = measure(n, () => {
    for (let i = 0; i < n; i += batch) alerts += engine.feed(stamped.slice(i, i + batch)).length;
  });
  const pipeline = measurePipeline(rules, raw, { batch, observer, synchronous: 'FULL', dataDir: tmpdir() });
  results.push({
    rules: rules.detections.length + rules.correlations.length,
    generated: extra,
    loadMs,
    index: engine.indexStats(),
    correlate,
    pipeline,
    alerts,
  });
}
console.log(
  JSON.stringify({ events: n, batch, results, loadAverage: loadavg(), cpus: cpus().length }, null, 2),
);
