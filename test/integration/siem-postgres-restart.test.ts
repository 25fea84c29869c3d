// A `siem serve --store postgres://…` while its PostgreSQL restarts under a steady stream of event
// batches from a reporter over mTLS and an analyst making decisions (`pg_ctl restart -m fast`,
// then `-m immediate`, a crash and WAL recovery): while it is away the SIEM answers only 503
// with a coded error and Retry-After, the process never exits nor prints a stack trace, ingest
// and decisions resume by themselves, every acknowledged batch is in the store exactly once and
// the analyst API serves the decisions at the database's revision. The cluster is the test's own
// (test/helpers/private-postgres.ts); the machine's shared one is never restarted.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceId } from '../../common/identity.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { EDGEWARD, stop } from '../helpers/cli.js';
import { startPrivatePostgres, type PrivatePostgres } from '../helpers/private-postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { adminCreds, call, enrollAs, waitFor, type Creds } from '../siem/service/setup.js';

const TD = 'factory.example';
const DB = 'edgeward_siem_restart';
const BATCH = 50;
const dir = tempDir('edgeward-siem-pg-restart-');
let server: PrivatePostgres | undefined;
let ca: TestCa | undefined;
let proc: ChildProcess | undefined;
let url = '';
let store = '';
let output = '';
let node: Creds;
let admin: Creds;
/** Batch numbers are unique over the whole file (each test's batches are its own devices). */
let nextBatch = 0;

async function serveSiem(args: string[]): Promise<{ proc: ChildProcess; url: string }> {
  const p = spawn(process.execPath, [EDGEWARD, 'siem', 'serve', ...args], {
    env: { ...process.env, EDGEWARD_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`SIEM not ready:\n${output}`)), 60_000);
    const seen = (c: Buffer): void => {
      output += c.toString();
      const m = /listening on (https:\/\/\S+)/.exec(output);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve({ proc: p, url: m[1] });
      }
    };
    p.stdout?.on('data', seen);
    p.stderr?.on('data', seen);
    p.on('exit', (code, signal) => {
      output += `\n[exited: ${code ?? signal}]\n`;
      clearTimeout(timer);
      reject(new Error(`SIEM exited with ${code}:\n${output}`));
    });
  });
}

async function query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: store });
  await c.connect();
  try {
    return (await c.query<R>(text, values)).rows;
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  [server, ca] = await Promise.all([startPrivatePostgres(), startTestCa()]);
  await server.createDatabase(DB);
  store = server.url(DB);
  const served = await serveSiem([
    '--data', join(dir, 'siem'), '--store', store, '--listen', '127.0.0.1:0', '--ca', ca.url,
    '--fingerprint', ca.fingerprint, '--token-file', await ca.tokenFile(serviceId(TD, 'siem')),
  ]); // prettier-ignore
  proc = served.proc;
  url = served.url;
  node = await enrollAs(ca, `spiffe://${TD}/node/reporter`, join(dir, 'reporter'));
  admin = adminCreds(ca);
}, 120_000);

afterAll(async () => {
  if (proc) await stop(proc, 'SIGTERM');
  await ca?.stop();
  server?.destroy();
});

interface Refusal {
  readonly what: string;
  readonly status: number;
  readonly code: unknown;
  readonly retryAfter: unknown;
}

const device = (k: number): string => `spiffe://${TD}/device/pgr${k}`;

describe('a SIEM while its PostgreSQL restarts under ingest and decisions', () => {
  for (const mode of ['fast', 'immediate'] as const) {
    it(`pg_ctl restart -m ${mode}: 503 with a code and Retry-After while it is away, then everything resumes; nothing acknowledged lost or doubled`, async () => {
      const pgServer = server as PrivatePostgres;
      const acked: number[] = [];
      const decisions: { id: string; revision: number }[] = [];
      const refusals: Refusal[] = [];
      let phase: 'before' | 'restarting' | 'after' = 'before';
      let ackedAfter = 0;
      let decidedAfter = 0;
      const deadline = Date.now() + 60_000;
      const done = (): boolean => Date.now() > deadline || (ackedAfter >= 40 && decidedAfter >= 3);
      const refused = (what: string, r: { status: number; json?: Record<string, unknown> | undefined; headers: Record<string, unknown> }): void => {
        refusals.push({ what, status: r.status, code: r.json?.['code'], retryAfter: r.headers['retry-after'] });
      }; // prettier-ignore

      // The reporter: two loops of batches, each batch the events of a device of its own.
      const report = async (): Promise<void> => {
        while (!done()) {
          const k = nextBatch++;
          const t0 = Date.now() - 5_000;
          const batch = Array.from({ length: BATCH }, (_, i) => ({
            '@timestamp': t0 + i,
            'event.action': 'connection.accepted',
            'source.identity': device(k),
            'source.port': 1024 + i,
          }));
          let r;
          try {
            r = await call(`${url}/v1/events`, node, { body: batch });
          } catch (err) {
            // The SIEM itself must stay reachable: a socket error is a failure of the test.
            refusals.push({ what: 'events', status: 0, code: (err as Error).message, retryAfter: undefined });
            continue;
          }
          if (r.status === 200 || r.status === 202) {
            acked.push(k);
            if (phase === 'after') ackedAfter++;
          } else refused('events', r);
          // A steady stream, well inside the reporter's event budget.
          await new Promise((res) => setTimeout(res, 25));
        }
      };
      // The analyst: a quarantine now and then, and the decision list in between.
      const analyst = async (): Promise<void> => {
        for (let i = 0; !done(); i++) {
          try {
            const made = await call(`${url}/v1/decisions`, admin, {
              body: {
                scope: { type: 'identity', value: `spiffe://${TD}/device/q-${mode}-${i}` },
                action: 'quarantine',
                ttl: '1h',
                reason: `restart ${mode}`,
              },
            });
            if (made.status === 201) {
              decisions.push(made.json?.['decision'] as { id: string; revision: number });
              if (phase === 'after') decidedAfter++;
            } else refused('make decision', made);
            const listed = await call(`${url}/v1/decisions`, admin);
            if (listed.status !== 200) refused('list decisions', listed);
          } catch (err) {
            refusals.push({
              what: 'decisions',
              status: 0,
              code: (err as Error).message,
              retryAfter: undefined,
            });
          }
          await new Promise((res) => setTimeout(res, 100));
        }
      };
      const running = [report(), report(), analyst()];
      await waitFor('batches before the restart', () => acked.length >= 20 && decisions.length >= 2, 30_000);
      phase = 'restarting';
      await pgServer.restart(mode);
      phase = 'after';
      await Promise.all(running);

      expect(ackedAfter, 'batches acknowledged after the restart without any help').toBeGreaterThanOrEqual(
        40,
      );
      expect(decidedAfter, 'decisions made after the restart without any help').toBeGreaterThanOrEqual(3);
      expect(refusals.length, 'the outage was seen by the load').toBeGreaterThan(0);
      for (const r of refusals)
        expect({ status: r.status, retryAfter: r.retryAfter, coded: typeof r.code === 'string' && /^ERR_[A-Z_]+$/.test(r.code) }, JSON.stringify(r)).toEqual({ status: 503, retryAfter: '1', coded: true }); // prettier-ignore
      expect(new Set(refusals.map((r) => r.code))).toEqual(new Set(['ERR_STORE_UNAVAILABLE']));
      expect(proc?.exitCode, `the SIEM process exited:\n${output}`).toBeNull();
      expect(proc?.signalCode).toBeNull();
      expect(output, 'a stack trace in the SIEM output').not.toMatch(/\n\s+at |\\n\s+at /);
      expect((await call(`${url}/healthz`, undefined)).status).toBe(200);

      // Every acknowledged batch is stored once: BATCH events of its device, no more.
      const rows = await query<{ who: string; n: number }>(
        `SELECT source_identity AS who, count(*)::int AS n FROM siem_events
         WHERE source_identity = ANY($1::text[]) GROUP BY source_identity`,
        [acked.map(device)],
      );
      const counts = new Map(rows.map((r) => [r.who, r.n]));
      const wrong = acked.filter((k) => counts.get(device(k)) !== BATCH);
      expect(
        wrong.map((k) => ({ batch: k, stored: counts.get(device(k)) ?? 0 })),
        'acknowledged batches not stored exactly once',
      ).toEqual([]);

      // Decisions: one revision each, in the order made, the last one the store's and the API's.
      const revisions = decisions.map((d) => d.revision);
      expect(new Set(revisions).size).toBe(revisions.length);
      expect([...revisions].sort((a, b) => a - b)).toEqual(revisions);
      const [db] = await query<{ revision: number }>('SELECT revision::int AS revision FROM siem_revision');
      const listed = await call(`${url}/v1/decisions`, admin);
      expect(listed.status).toBe(200);
      expect(listed.json?.['revision']).toBe(db?.revision);
      expect(db?.revision).toBeGreaterThanOrEqual(revisions.at(-1) ?? 0);
      const active = new Set((listed.json?.['active'] as { id: string }[]).map((d) => d.id));
      for (const d of decisions) expect(active.has(d.id), `decision ${d.id} missing`).toBe(true);
    }, 150_000);
  }
});
