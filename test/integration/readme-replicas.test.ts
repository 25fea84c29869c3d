// The README's "Replicas" block, run as written by bash: `edgeward` is the built CLI, the database
// URL and the two ports are replaced by a test database and two free ports, and `curl` retries
// while the replicas start (the README's reader runs the lines by hand, slower than the servers).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EDGEWARD } from '../helpers/cli.js';
import { freePortRange } from '../helpers/ports.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

const README = join(import.meta.dirname, '..', '..', 'README.md');

function replicaBlock(): string {
  const text = readFileSync(README, 'utf8');
  const at = text.indexOf('### Replicas');
  const m = /```sh\n([\s\S]*?)```/.exec(text.slice(at));
  if (at < 0 || !m?.[1]) throw new Error('README.md has no sh block under "### Replicas"');
  return m[1];
}

const PREAMBLE = `set -euo pipefail
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
curl() {
  for _ in $(seq 100); do command curl -sS --fail "$@" 2>/dev/null && { echo; return 0; }; sleep 0.1; done
  command curl -sS --fail "$@"
}
`;

let db: TestDatabase | undefined;
afterAll(async () => {
  await db?.drop();
});

describe('README: two CA replicas on one PostgreSQL', () => {
  it('runs as written: both replicas answer /healthz, verified against the copied root', async () => {
    db = await createTestDatabase();
    const block = replicaBlock();
    expect(block).toMatch(/^URL=postgres:\/\/\S+$/m);
    expect(block).toContain('127.0.0.1:8443');
    expect(block).toContain('127.0.0.1:8453');
    const base = await freePortRange(2);
    const script = block
      .replace(/^URL=postgres:\/\/\S+$/m, `URL=${db.url}`)
      .replaceAll('127.0.0.1:8443', `127.0.0.1:${base}`)
      .replaceAll('127.0.0.1:8453', `127.0.0.1:${base + 1}`);
    const cwd = tempDir('edgeward-readme-replicas-');
    // `edgeward` on PATH execs the built CLI, so `kill $(jobs -p)` reaches the servers themselves.
    const bin = join(cwd, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'edgeward'), `#!/bin/sh\nexec "${process.execPath}" "${EDGEWARD}" "$@"\n`, {
      mode: 0o755,
    });
    const proc = spawn('bash', ['-c', PREAMBLE + script], {
      cwd,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, EDGEWARD_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => process.kill(-(proc.pid ?? 0), 'SIGKILL'), 60_000);
    const status = await new Promise<number | null>((resolve) => proc.on('close', resolve)).finally(() =>
      clearTimeout(timer),
    );
    expect({ status, stderr }).toMatchObject({ status: 0 });
    expect(stdout).toMatch(/fingerprint/i);
    const health = stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { status?: string; trustDomain?: string });
    expect(health).toEqual([
      expect.objectContaining({ status: 'ok', trustDomain: 'factory.example' }),
      expect.objectContaining({ status: 'ok', trustDomain: 'factory.example' }),
    ]);
  }, 90_000);
});
