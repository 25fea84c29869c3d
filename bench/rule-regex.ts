// Rule regexes on RE2 beside V8's backtracking engine: how match time grows with the subject for
// a pathological pattern, and the per-match cost of an ordinary rule pattern.
// Run: npm run build && node dist/bench/rule-regex.js
import { compileRuleRegex } from '../policies/rules/index.js';

const PATHOLOGICAL = '.*.*.*.*.*x';
const ORDINARY = '^spiffe://[a-z0-9.-]+/device/';

function timeMs(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

console.log(`pathological pattern ${PATHOLOGICAL} on 'a' * n (no match):`);
const v8 = new RegExp(PATHOLOGICAL);
const re2 = compileRuleRegex(PATHOLOGICAL, [], 'bench');
for (const n of [10, 20, 30, 40, 50, 60, 80, 100]) {
  const s = 'a'.repeat(n);
  // V8 grows as about n^5 here: stop once a run passes 0.6 s (the next would take seconds).
  const v = timeMs(() => v8.test(s));
  const r = timeMs(() => re2.test(s));
  console.log(`  n=${String(n).padStart(4)}  V8 ${v.toFixed(2).padStart(9)} ms   RE2 ${r.toFixed(3)} ms`);
  if (v > 600) break;
}
for (const n of [256, 512, 1024]) {
  const s = 'a'.repeat(n);
  console.log(
    `  n=${String(n).padStart(4)}  V8 (not run)     RE2 ${timeMs(() => re2.test(s)).toFixed(3)} ms`,
  );
}

console.log(`ordinary pattern ${ORDINARY} on a device identity, 1,000,000 matches:`);
const id = 'spiffe://factory.example/device/d1234';
const v8o = new RegExp(ORDINARY);
const re2o = compileRuleRegex(ORDINARY, [], 'bench');
for (const [name, test] of [
  ['V8', (x: string) => v8o.test(x)],
  ['RE2', (x: string) => re2o.test(x)],
] as const) {
  let hits = 0;
  const ms = timeMs(() => {
    for (let i = 0; i < 1_000_000; i++) if (test(id)) hits++;
  });
  console.log(`  ${name.padEnd(4)} ${((ms * 1e6) / 1_000_000).toFixed(0)} ns per match (${hits} hits)`);
}
