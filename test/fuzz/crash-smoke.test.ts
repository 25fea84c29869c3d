// The crash suites in short (docs/FUZZING.md, "Crash suites"), run as an operator runs them: the
// built script with a kill count, its exit status and its closing line. The long runs (50 kills
// each) are `node dist/bench/fuzz/crash-<part>.js 50`.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const DIR = join(import.meta.dirname, '..', '..', 'dist', 'bench', 'fuzz');
const KILLS = 3;

function crashSuite(part: string, kills: number): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(DIR, `crash-${part}.js`), String(kills)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, EDGEWARD_LOG_LEVEL: 'warn' },
    });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.once('error', reject);
    p.once('exit', (status) => resolve({ status, out }));
  });
}

describe('crash suites, three kills each', () => {
  it('kill -9 of ca serve under renewals: every acknowledged renewal stored, no serial twice, audit verifies', async () => {
    const r = await crashSuite('ca', KILLS);
    expect(r.out).toMatch(
      new RegExp(
        `^crash-ca: ${KILLS} kills, [1-9]\\d* renewals acknowledged, every one in the store, no serial twice`,
        'm',
      ),
    );
    expect(r.out).toMatch(/^ {2}kill 3: \d+ renewals acknowledged, audit chain of \d+ records OK$/m);
    expect(r.status, r.out).toBe(0);
  }, 300_000);

  it('kill -9 of siem serve under ingest and decisions: every acknowledged batch whole, none twice, decisions kept', async () => {
    const r = await crashSuite('siem', KILLS);
    expect(r.out).toMatch(
      new RegExp(
        `^crash-siem: ${KILLS} kills, [1-9]\\d* batches acknowledged \\(\\d+ events stored\\), every one whole`,
        'm',
      ),
    );
    expect(r.status, r.out).toBe(0);
  }, 300_000);

  it('kill -9 of the agent: back offline on its stored decisions and CRL, refusing from its first connection', async () => {
    const r = await crashSuite('agent', KILLS);
    expect(r.out).toMatch(
      new RegExp(
        `^crash-agent: ${KILLS} kills, \\d+ echoes through held connections, [1-9]\\d* decisions;`,
        'm',
      ),
    );
    expect(r.out).toMatch(/refused the quarantined and the revoked device from its first connection$/m);
    expect(r.status, r.out).toBe(0);
  }, 300_000);

  it('a kill count that is not a positive number is refused', async () => {
    const r = await crashSuite('ca', Number.NaN);
    expect(r.out).toContain('crash-ca: the kill count must be a positive integer (got "NaN")');
    expect(r.status).toBe(2);
  }, 60_000);
});
