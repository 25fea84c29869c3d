// Long fuzz runs: `npm run fuzz [-- TARGET...] [--runs N] [--seconds S] [--seed S] [--no-coverage]`.
// Each target runs under V8 block-coverage feedback (inputs that reach new code join the corpus)
// and prints inputs, rate, refusals by code, coverage of its source files and any finding; a
// finding's input is written to test-artifacts/fuzz/<target>-<n>.bin and the exit status is 1.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BlockCoverage } from '../bench/fuzz/coverage.js';
import { repoRoot } from '../bench/fuzz/corpus.js';
import { runTarget } from '../bench/fuzz/engine.js';
import { TARGETS, targetByName } from '../bench/fuzz/targets/index.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    runs: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: '1' },
    seconds: { type: 'string' },
    'no-coverage': { type: 'boolean', default: false },
    list: { type: 'boolean', default: false },
  },
});

if (values.list) {
  for (const t of TARGETS) console.log(`${t.name.padEnd(20)} ${t.about}`);
  process.exit(0);
}

const runs = Number(values.runs);
if (!Number.isSafeInteger(runs) || runs < 1) {
  console.error('fuzz: --runs takes a positive integer');
  process.exit(2);
}
const names = positionals.length > 0 ? positionals : TARGETS.map((t) => t.name);
const unknown = names.filter((n) => !targetByName(n));
if (unknown.length > 0) {
  console.error(`fuzz: unknown target ${unknown.join(', ')} (npm run fuzz -- --list)`);
  process.exit(2);
}

let failed = false;
for (const name of names) {
  const target = targetByName(name)!;
  const cov = values['no-coverage'] ? undefined : new BlockCoverage(target.sources);
  let last = Date.now();
  const stats = await runTarget(target, {
    runs,
    seed: Number(values.seed),
    ...(values.seconds === undefined ? {} : { deadline: Date.now() + Number(values.seconds) * 1000 }),
    ...(cov ? { feedback: cov } : {}),
    progress(done, s) {
      if (Date.now() - last < 30_000) return;
      last = Date.now();
      console.log(`  ${name}: ${done} inputs, ${s.accepted} accepted, ${s.refused} refused`);
    },
  });
  const summary = cov?.summary();
  cov?.stop();
  const rate = stats.inputs / (stats.ms / 1000);
  console.log(
    `${name}: ${stats.inputs} inputs in ${(stats.ms / 1000).toFixed(1)} s (${rate.toFixed(0)}/s), ` +
      `${stats.accepted} accepted, ${stats.refused} refused, corpus ${stats.corpusSize}, ` +
      `slowest ${stats.slowestMs.toFixed(1)} ms, heap peak ${stats.heapPeakMb.toFixed(0)} MB, ` +
      `${stats.findings.length} findings`,
  );
  console.log(
    `  refusals: ${Object.entries(stats.codes)
      .sort((a, b) => b[1] - a[1])
      .map(([c, n]) => `${c} ${n}`)
      .join(', ')}`,
  );
  for (const f of summary?.files ?? []) {
    console.log(
      `  coverage ${f.file}: functions ${f.functionsHit}/${f.functions}, blocks ${f.blocksHit}/${f.blocks}`,
    );
  }
  if (stats.findings.length > 0) {
    failed = true;
    const dir = join(repoRoot(), 'test-artifacts', 'fuzz');
    mkdirSync(dir, { recursive: true });
    stats.findings.forEach((f, i) => {
      const file = join(dir, `${name}-${i}.bin`);
      writeFileSync(file, f.input);
      console.log(`  FINDING ${f.kind}: ${f.message}\n    input: ${file}`);
    });
  }
}
process.exit(failed ? 1 : 0);
