// `npm run bench [-- NAME ...]`: runs the benchmarks one after another, each in its own process
// with its default settings, and prints each one's output and duration. With names, only those.
// Each benchmark's own options are in its header and in docs/BENCHMARKS.md.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ALL = [
  'ca-issuance',
  'tpm-verify',
  'tpm-enroll',
  'puf-eval',
  'puf-enroll',
  'puf-enroll-https',
  'agent-proxy',
  'siem-correlate',
  'siem-distribution',
  'siem-bus',
  'siem-bus-decisions',
  'dashboard',
  'rule-regex',
] as const;

const asked = process.argv.slice(2);
const unknown = asked.filter((a) => !(ALL as readonly string[]).includes(a));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')}; choose from: ${ALL.join(', ')}`);
  process.exit(2);
}
const failed: string[] = [];
for (const name of asked.length > 0 ? asked : ALL) {
  console.log(`\n=== ${name} (node dist/bench/${name}.js)`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [join(import.meta.dirname, `${name}.js`)], { stdio: 'inherit' });
  const s = ((performance.now() - t0) / 1000).toFixed(0);
  if (r.status !== 0) failed.push(name);
  console.log(
    `=== ${name}: ${r.status === 0 ? 'done' : `FAILED (exit ${String(r.status ?? r.signal)})`} in ${s} s`,
  );
}
if (failed.length > 0) {
  console.error(`failed: ${failed.join(', ')}`);
  process.exit(1);
}
