// The README's "Replicas" blocks (two CA replicas, then two SIEM replicas), run as written by bash:
// `edgeward` is the built CLI, the database URL and the ports are replaced by a test database and
// free ports, `curl` retries while the replicas start (the README's reader runs the lines by
// hand, slower than the servers), and the dashboard password comes from EDGEWARD_PASSWORD (the
// reader types it at the prompt).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'nats';
import { afterAll, describe, expect, it } from 'vitest';
import { busLayout, deleteBusLayout, parseBusDecision } from '../../siem/bus/index.js';
import { EDGEWARD } from '../helpers/cli.js';
import { freePortRange } from '../helpers/ports.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

const NATS = process.env['EDGEWARD_TEST_NATS'] ?? 'nats://127.0.0.1:4222';
const README = join(import.meta.dirname, '..', '..', 'README.md');

/** The sh blocks of the README's "### Replicas" section, in order. */
function replicaBlocks(): string[] {
  const text = readFileSync(README, 'utf8');
  const at = text.indexOf('### Replicas');
  const section = text.slice(at, text.indexOf('\n### ', at + 1));
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  if (at < 0 || blocks.length < 2) throw new Error('README.md has no two sh blocks under "### Replicas"');
  return blocks;
}

/** The ports the README uses, each replaced by a free one. */
const PORTS = ['8443', '8453', '8444', '8454', '9444', '9454'];

// The servers run in the background on the same stdout as curl, and print their own lines
// ("listening on ...") when they are ready, which is when curl's first try succeeds: each answer
// is printed whole, body and newline in one write, or a server's line lands in the middle of it.
const PREAMBLE = `set -euo pipefail
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
curl() {
  local body
  for _ in $(seq 100); do body=$(command curl -sS --fail "$@" 2>/dev/null) && { printf '%s\\n' "$body"; return 0; }; sleep 0.1; done
  body=$(command curl -sS --fail "$@")
  printf '%s\\n' "$body"
}
`;

/** The JSON answers in the script's output (the lines that start with `{`), each one whole. */
function jsonLines(stdout: string): { status?: string; trustDomain?: string }[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l) as { status?: string; trustDomain?: string };
      } catch {
        throw new Error(`not one JSON answer per line: ${JSON.stringify(l)}`);
      }
    });
}

let db: TestDatabase | undefined;
/** The README's `--bus-prefix factory`, made this run's own on the shared nats-server. */
const prefix = `readme${randomBytes(4).toString('hex')}`;
afterAll(async () => {
  await db?.drop();
  const nc = await connect({ servers: NATS });
  await deleteBusLayout(await nc.jetstreamManager(), busLayout(prefix, 4));
  await nc.close();
});

describe('README: two CA replicas and two SIEM replicas on one PostgreSQL', () => {
  it('prints each answer of curl as one line while a server prints its own', async () => {
    // A curl that answers, then takes a while to exit; a "server" prints its line meanwhile.
    const cwd = tempDir('edgeward-readme-curl-');
    const bin = join(cwd, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'curl'), `#!/bin/sh\nprintf '{"status":"ok"}'\nsleep 0.4\n`, { mode: 0o755 });
    const script =
      '(sleep 0.2; echo "edgeward SIEM listening on https://127.0.0.1:1") &\ncurl https://x/healthz\nwait\n';
    const out = await new Promise<string>((resolve, reject) => {
      const p = spawn('bash', ['-c', PREAMBLE + script], {
        cwd,
        env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let text = '';
      p.stdout.on('data', (d: Buffer) => (text += d.toString()));
      p.on('error', reject);
      p.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`bash exited ${code}`))));
    });
    expect(jsonLines(out)).toEqual([{ status: 'ok' }]);
    expect(out.split('\n')).toContain('edgeward SIEM listening on https://127.0.0.1:1');
  }, 20_000);

  it('runs as written: every replica answers /healthz, a quarantine made on one SIEM is listed by the other', async () => {
    db = await createTestDatabase();
    const block = replicaBlocks().join('');
    expect(block).toMatch(/^URL=postgres:\/\/\S+$/m);
    for (const p of PORTS) expect(block).toContain(`127.0.0.1:${p}`);
    const base = await freePortRange(PORTS.length);
    expect(block).toContain('--bus nats://127.0.0.1:4222 --bus-prefix factory');
    let script = block
      .replace(/^URL=postgres:\/\/\S+$/m, `URL=${db.url}`)
      .replaceAll('--bus-prefix factory', `--bus-prefix ${prefix}`);
    PORTS.forEach((p, i) => (script = script.replaceAll(`127.0.0.1:${p}`, `127.0.0.1:${base + i}`)));
    const cwd = tempDir('edgeward-readme-replicas-');
    // `edgeward` on PATH execs the built CLI, so `kill $(jobs -p)` reaches the servers themselves.
    const bin = join(cwd, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'edgeward'), `#!/bin/sh\nexec "${process.execPath}" "${EDGEWARD}" "$@"\n`, {
      mode: 0o755,
    });
    const proc = spawn('bash', ['-c', PREAMBLE + script], {
      cwd,
      env: {
        ...process.env,
        PATH: `${bin}:${process.env.PATH ?? ''}`,
        EDGEWARD_LOG_LEVEL: 'warn',
        EDGEWARD_PASSWORD: 'correct horse battery',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => process.kill(-(proc.pid ?? 0), 'SIGKILL'), 150_000);
    const status = await new Promise<number | null>((resolve) => proc.on('close', resolve)).finally(() =>
      clearTimeout(timer),
    );
    expect({ status, stderr }).toMatchObject({ status: 0 });
    expect(stdout).toMatch(/fingerprint/i);
    const health = jsonLines(stdout);
    expect(health.slice(0, 2)).toEqual([
      expect.objectContaining({ status: 'ok', trustDomain: 'factory.example' }),
      expect.objectContaining({ status: 'ok', trustDomain: 'factory.example' }),
    ]);
    expect(health).toHaveLength(4);
    expect(stdout).toContain(`added dashboard user alice (analyst) to ${db.url}`);
    // The list is replica B's answer: the quarantine made through replica A.
    expect(stdout.slice(stdout.lastIndexOf('added dashboard user'))).toMatch(
      /quarantine\s+identity=spiffe:\/\/factory\.example\/device\/d1[\s\S]*quarantine\s+identity=spiffe:\/\/factory\.example\/device\/d1/,
    );
    // Decisions went through the bus: the quarantine's signed delta is on the decisions stream.
    const nc = await connect({ servers: NATS });
    try {
      const jsm = await nc.jetstreamManager();
      const layout = busLayout(prefix, 4);
      const info = await jsm.streams.info(layout.decisionsStream);
      expect(info.state.messages).toBeGreaterThanOrEqual(1);
      const last = await jsm.streams.getMessage(layout.decisionsStream, {
        last_by_subj: layout.decisionsSubject,
      });
      const doc = parseBusDecision(last.data);
      expect(doc.jws).toContain('.');
      expect(doc.revision).toBeGreaterThanOrEqual(1);
    } finally {
      await nc.close();
    }
  }, 180_000);
});
