// The fuzz smoke: every target, about 10,000 inputs each (mutated real samples and generated
// ones), held to the oracles of bench/fuzz/engine.ts. Long runs: `npm run fuzz` (docs/FUZZING.md).
import { describe, expect, it } from 'vitest';
import { runTarget } from '../../bench/fuzz/engine.js';
import { TARGETS } from '../../bench/fuzz/targets/index.js';

const RUNS = 10_000;

describe.each(TARGETS.map((t) => [t.name, t] as const))('fuzz target %s', (_name, target) => {
  it(`ends ${RUNS} inputs in a success or a documented refusal, within the time bound`, async () => {
    // The bound is the documented 50 ms; a loaded machine gets each slow input timed again.
    const stats = await runTarget(target, { runs: RUNS, seed: 0x5eed });
    expect(stats.findings.map((f) => `${f.kind}: ${f.message}`)).toEqual([]);
    expect(stats.refused).toBeGreaterThan(0);
    expect(stats.accepted).toBeGreaterThan(0);
    // `rules` checks each file's embedded tests (1-22 ms a file): 10,000 of them on a loaded
    // machine took 73 s; the limit is for a hang, not a speed goal.
  }, 300_000);
});
