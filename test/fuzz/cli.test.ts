// `npm run fuzz` as the user sees it: the built script's printed summary and exit status.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const FUZZ = join(import.meta.dirname, '..', '..', 'dist', 'scripts', 'fuzz.js');

function fuzz(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [FUZZ, ...args], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('npm run fuzz', () => {
  it('lists every target with what it reads', () => {
    const r = fuzz('--list');
    expect(r.status).toBe(0);
    for (const t of [
      'tpm2b-public',
      'quote',
      'der',
      'csr',
      'crl',
      'proxy-v2',
      'sse',
      'batch-json',
      'decision-jws',
      'session',
      'puf-record',
      'rules',
      'agent-config',
    ])
      expect(r.out).toMatch(new RegExp(`^${t} +\\S`, 'm'));
  });

  it('runs a target and prints inputs, refusals by code and coverage of its sources', () => {
    const r = fuzz('pcr-selection', '--runs', '3000');
    expect(r.status).toBe(0);
    expect(r.out).toMatch(
      /^pcr-selection: 3000 inputs in [\d.]+ s \(\d+\/s\), \d+ accepted, \d+ refused, corpus \d+, .* 0 findings$/m,
    );
    expect(r.out).toMatch(/refusals: ERR_ATT_TPM_STRUCTURE_MALFORMED \d+/);
    expect(r.out).toMatch(
      /coverage attestation\/tpm\/structures\/attest\.ts: functions \d+\/\d+, blocks \d+\/\d+/,
    );
  });

  it('refuses an unknown target and a bad --runs with status 2', () => {
    const unknown = fuzz('no-such-target');
    expect(unknown.status).toBe(2);
    expect(unknown.out).toContain('unknown target no-such-target');
    const bad = fuzz('der', '--runs', '0');
    expect(bad.status).toBe(2);
    expect(bad.out).toContain('--runs takes a positive integer');
  });
});
