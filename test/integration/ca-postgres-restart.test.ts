// A `ca serve` while its PostgreSQL restarts under a stream of renewals (`pg_ctl restart -m fast`,
// then `-m immediate`, a crash and WAL recovery): during the outage only 503 ERR_STORE_UNAVAILABLE
// with Retry-After, the process never exits, renewals succeed again by themselves, every
// acknowledged renewal is in the store and the audit chain verifies. The cluster is the test's
// own (test/helpers/private-postgres.ts); the machine's shared one is never restarted.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenProver } from '../../attestation/index.js';
import { enroll } from '../../client/index.js';
import { edgeward, edgewardServe, stop } from '../helpers/cli.js';
import { customCsr } from '../helpers/csr.js';
import { rawRequest } from '../helpers/https.js';
import { startPrivatePostgres, type PrivatePostgres } from '../helpers/private-postgres.js';
import { tempDir } from '../helpers/tmp.js';

const TD = 'restart.example';
const DB = 'edgeward_restart';
const dir = tempDir('edgeward-pg-restart-');
const data = join(dir, 'ca');
let server: PrivatePostgres | undefined;
let proc: ChildProcess | undefined;
let url = '';
let store = '';
const devices: { id: string; key: string; cert: string }[] = [];

beforeAll(async () => {
  server = await startPrivatePostgres();
  await server.createDatabase(DB);
  store = server.url(DB);
  const init = edgeward(['ca', 'init', '--data', data, '--trust-domain', TD, '--store', store]);
  expect(init.status, init.stderr).toBe(0);
  const fingerprint = /fingerprint \(SHA-256\): ([0-9a-f]{64})/.exec(init.stdout)?.[1] ?? '';
  const served = await edgewardServe(
    ['ca', 'serve', '--data', data, '--store', store, '--listen', '127.0.0.1:0',
      '--rate-ip', '100000', '--rate-identity', '100000'], // prettier-ignore
    /listening on (https:\/\/\S+)/,
  );
  proc = served.proc;
  url = served.match[1] ?? '';
  for (let i = 0; i < 4; i++) {
    const id = `spiffe://${TD}/node/load${i}`;
    const tok = edgeward(['ca', 'token', '--data', data, '--store', store, '--id', id, '--ttl', '10m']);
    expect(tok.status, tok.stderr).toBe(0);
    const out = join(dir, `id${i}`);
    await enroll({ ca: url, fingerprint, id, prover: createTokenProver(tok.stdout.trim()), out });
    devices.push({
      id,
      key: readFileSync(join(out, 'key.pem'), 'utf8'),
      cert: readFileSync(join(out, 'cert.pem'), 'utf8'),
    });
  }
}, 120_000);

afterAll(async () => {
  if (proc) await stop(proc, 'SIGKILL');
  server?.destroy();
});

interface Refusal {
  readonly status: number;
  readonly code: unknown;
  readonly retryAfter: unknown;
}

async function storedSerials(): Promise<Set<string>> {
  const c = new pg.Client({ connectionString: store });
  await c.connect();
  try {
    const r = await c.query<{ serial: string }>('SELECT serial FROM ca_certificates');
    return new Set(r.rows.map((x) => x.serial));
  } finally {
    await c.end();
  }
}

describe('the private PostgreSQL helper', () => {
  it('fails with what to install when initdb is missing', async () => {
    await expect(startPrivatePostgres('edgeward-pg-missing-', join(dir, 'no-such-bin'))).rejects.toThrow(
      /initdb not found: a private PostgreSQL needs the server binaries \(apt-get install -y postgresql-15/,
    );
  });
});

describe('a CA while its PostgreSQL restarts under renewals', () => {
  for (const mode of ['fast', 'immediate'] as const) {
    it(`pg_ctl restart -m ${mode}: 503 with Retry-After during the outage, then renewals resume; nothing acknowledged lost`, async () => {
      const pgServer = server as PrivatePostgres;
      const acknowledged: string[] = [];
      const refusals: Refusal[] = [];
      let phase: 'before' | 'restarting' | 'after' = 'before';
      let afterRestart = 0;
      const deadline = Date.now() + 60_000;
      const worker = async (d: (typeof devices)[number]): Promise<void> => {
        while (Date.now() < deadline && afterRestart < 40) {
          const csr = customCsr({ uris: [d.id] }).pem;
          let r;
          try {
            r = await rawRequest(`${url}/v1/renew`, {
              method: 'POST',
              body: JSON.stringify({ csr }),
              key: d.key,
              cert: d.cert,
            });
          } catch (err) {
            // The CA itself must stay reachable: a socket error is a failure of the test.
            refusals.push({ status: 0, code: (err as Error).message, retryAfter: undefined });
            continue;
          }
          if (r.status === 200) {
            acknowledged.push(String(r.json?.['serial']));
            if (phase === 'after') afterRestart++;
          } else {
            refusals.push({ status: r.status, code: r.json?.['code'], retryAfter: r.headers['retry-after'] });
            await new Promise((res) => setTimeout(res, 20));
          }
        }
      };
      const running = devices.map((d) => worker(d));
      while (acknowledged.length < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const before = acknowledged.length;
      phase = 'restarting';
      await pgServer.restart(mode);
      phase = 'after';
      await Promise.all(running);

      expect(before, 'renewals before the restart').toBeGreaterThanOrEqual(20);
      expect(afterRestart, 'renewals resumed after the restart without any help').toBeGreaterThanOrEqual(40);
      expect(refusals.length, 'the outage was seen by the load').toBeGreaterThan(0);
      for (const r of refusals)
        expect(r).toEqual({ status: 503, code: 'ERR_STORE_UNAVAILABLE', retryAfter: '1' });
      expect(proc?.exitCode, 'the CA process exited').toBeNull();
      expect(proc?.signalCode).toBeNull();
      expect((await rawRequest(`${url}/healthz`)).status).toBe(200);

      const stored = await storedSerials();
      for (const s of acknowledged) expect(stored.has(s), `acknowledged serial ${s} missing`).toBe(true);
      const av = edgeward(['ca', 'audit', 'verify', '--data', data, '--store', store]);
      expect(av.status, av.stdout + av.stderr).toBe(0);
      expect(av.stdout).toMatch(/audit chain OK: \d+ records/);
    }, 120_000);
  }
});
