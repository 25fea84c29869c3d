// Two `siem serve` replicas on one PostgreSQL database, as operators run them: the second one's
// --data folder is a copy of the first's (the same identity and decision-signing key), both on
// the same --store. A quarantine made through one replica's analyst API is served by the other's
// analyst API and decision stream at the same revision; both dashboards show the same decisions
// and alerts; a dashboard login made on one is accepted by the other.
import type { ChildProcess } from 'node:child_process';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceId } from '../../common/identity.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { edgewardAsync, edgewardServe, stop } from '../helpers/cli.js';
import { rawRequest } from '../helpers/https.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { adminCreds, call, enrollAs, subscriber, waitFor, type Creds } from '../siem/service/setup.js';

const TD = 'factory.example';
const dir = tempDir('edgeward-siem-replicas-');
const dataA = join(dir, 'siem-a');
const dataB = join(dir, 'siem-b');
const PASSWORD = 'correct horse battery';
const procs: ChildProcess[] = [];
let ca: TestCa;
let db: TestDatabase;

interface Replica {
  readonly api: string;
  readonly dashboard: string;
}

beforeAll(async () => {
  [ca, db] = await Promise.all([startTestCa(), createTestDatabase()]);
});
afterAll(async () => {
  for (const p of procs) await stop(p, 'SIGTERM');
  await ca?.stop();
  await db?.drop();
});

async function serve(data: string, token: string[] = []): Promise<Replica> {
  const { proc, match } = await edgewardServe(
    ['siem', 'serve', '--data', data, '--store', db.url, '--listen', '127.0.0.1:0', '--ca', ca.url,
      '--fingerprint', ca.fingerprint, '--dashboard', '127.0.0.1:0', ...token], // prettier-ignore
    /listening on (https:\/\/\S+)\n[\s\S]*dashboard on (https:\/\/\S+) /,
  );
  procs.push(proc);
  return { api: match[1] ?? '', dashboard: match[2] ?? '' };
}

async function login(r: Replica): Promise<{ cookie: string; csrf: string }> {
  const res = await rawRequest(`${r.dashboard}/api/login`, {
    method: 'POST',
    body: JSON.stringify({ name: 'alice', password: PASSWORD }),
  });
  expect(res.status, res.body.toString()).toBe(200);
  const cookie = String(res.headers['set-cookie']).split(';')[0] ?? '';
  return { cookie, csrf: String(res.json?.['csrf']) };
}

const dash = (r: Replica, path: string, cookie: string) =>
  rawRequest(`${r.dashboard}${path}`, { headers: { cookie } });

describe('SIEM replicas on PostgreSQL (real processes)', () => {
  let a: Replica;
  let b: Replica;
  let admin: Creds;
  let node: Creds;

  it('starts a second replica from a copy of the first one’s folder, on the same store', async () => {
    a = await serve(dataA, ['--token-file', await ca.tokenFile(serviceId(TD, 'siem'))]);
    // The identity (and its decision-signing key) was enrolled by the first start: copied.
    cpSync(dataA, dataB, { recursive: true });
    b = await serve(dataB);
    admin = adminCreds(ca);
    node = await enrollAs(ca, `spiffe://${TD}/node/follower`, join(dir, 'follower'));
    const keys = await Promise.all([a, b].map((r) => call(`${r.api}/v1/decisions/key`, node)));
    expect(keys[1]?.headers['x-edgeward-kid']).toBe(keys[0]?.headers['x-edgeward-kid']);
  }, 90_000);

  it('a user added with --store logs in on either replica', async () => {
    const r = await edgewardAsync(
      ['siem', 'user', 'add', '--data', dataA, '--store', db.url, '--name', 'alice', '--role', 'analyst'],
      { EDGEWARD_PASSWORD: PASSWORD },
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`added dashboard user alice (analyst) to ${db.url}`);
    expect(r.status).toBe(0);
    await login(a);
    await login(b);
  });

  it('a quarantine made on A is served by B’s analyst API and decision stream at the same revision', async () => {
    const sub = await subscriber(b.api, node, join(dir, 'sub-b'), TD);
    try {
      await waitFor('first snapshot from B', () => sub.applied.length > 0);
      const q = await edgewardAsync([
        'siem', 'decisions', 'quarantine', '--siem', a.api, '--identity', ca.adminDir,
        '--scope', `identity=spiffe://${TD}/device/cloned`, '--ttl', '1h', '--reason', 'cloned credential',
        '--json',
      ]); // prettier-ignore
      expect(q.status, q.stderr).toBe(0);
      const made = JSON.parse(q.stdout) as { decision: { id: string; revision: number } };
      const revision = made.decision.revision;
      expect(revision).toBeGreaterThan(0);
      const onB = await waitFor('the decision on B', async () => {
        const r = await call(`${b.api}/v1/decisions`, admin);
        const list = r.json?.['active'] as { id: string }[] | undefined;
        return r.json?.['revision'] === revision && list?.some((d) => d.id === made.decision.id)
          ? r
          : undefined;
      });
      expect(onB.status).toBe(200);
      // B's stream carries it, signed with the shared key, at that revision.
      const applied = await waitFor('the decision applied from B’s stream', () =>
        sub.store.current?.decisions.find((d) => d.id === made.decision.id),
      );
      expect(applied.scope).toEqual({ type: 'identity', value: `spiffe://${TD}/device/cloned` });
      expect(sub.store.revision).toBe(revision);
      const listed = await edgewardAsync([
        'siem', 'decisions', 'list', '--siem', b.api, '--identity', ca.adminDir,
      ]); // prettier-ignore
      expect(listed.status, listed.stderr).toBe(0);
      expect(listed.stdout).toContain(`identity=spiffe://${TD}/device/cloned`);
    } finally {
      sub.client.stop();
    }
  }, 60_000);

  it('both dashboards show the same decisions and alerts; a session made on A is accepted by B', async () => {
    const { cookie, csrf } = await login(a);
    const views = await Promise.all([a, b].map((r) => dash(r, '/api/decisions', cookie)));
    for (const v of views) expect(v.status, v.body.toString()).toBe(200);
    const [da, dbv] = views.map((v) => v.json as { revision: number; active: { id: string }[] });
    expect(dbv?.revision).toBe(da?.revision);
    expect(dbv?.active.map((d) => d.id).sort()).toEqual(da?.active.map((d) => d.id).sort());
    expect(da?.active).toHaveLength(1);
    // Events through A raise an alert (the default brute-force rule); B's dashboard lists it.
    const t0 = Date.now() - 30_000;
    const events = Array.from({ length: 20 }, (_, i) => ({
      '@timestamp': t0 + i * 100,
      'event.action': 'handshake.failure',
      'source.ip': '192.0.2.77',
      'event.reason': 'unknown_ca',
    }));
    const sent = await call(`${a.api}/v1/events`, node, { body: events });
    expect(sent.status, sent.body.toString()).toBe(200);
    const alertsB = await waitFor('the alert on B’s dashboard', async () => {
      const r = await dash(b, '/api/alerts?limit=50', cookie);
      const items = (r.json?.['items'] ?? r.json?.['alerts']) as { id: string }[] | undefined;
      return items !== undefined && items.length > 0 ? items : undefined;
    });
    const alertsA = await dash(a, '/api/alerts?limit=50', cookie);
    expect(
      ((alertsA.json?.['items'] ?? alertsA.json?.['alerts']) as { id: string }[]).map((x) => x.id),
    ).toEqual(alertsB.map((x) => x.id));
    // The alert's automatic quarantine (made on A) reaches B's dashboard at A's revision.
    await waitFor('the same revision on both dashboards', async () => {
      const [x, y] = await Promise.all([a, b].map((r) => dash(r, '/api/decisions', cookie)));
      const rx = (x?.json as { revision?: number } | undefined)?.revision;
      return (
        rx !== undefined &&
        rx === (y?.json as { revision?: number } | undefined)?.revision &&
        rx > (da?.revision ?? 0)
      );
    });
    // The session made on A is B's too: a logout on B ends it on A.
    expect((await dash(b, '/api/me', cookie)).json).toMatchObject({ user: 'alice', role: 'analyst' });
    const out = await rawRequest(`${b.dashboard}/api/logout`, {
      method: 'POST',
      headers: { cookie, 'x-csrf-token': csrf },
    });
    expect(out.status, out.body.toString()).toBe(200);
    expect((await dash(a, '/api/me', cookie)).json).toMatchObject({ code: 'ERR_DASH_UNAUTHENTICATED' });
  }, 60_000);

  it('an agent on B’s decision stream is online on A’s dashboard and analyst API, and offline on both once it leaves', async () => {
    const { cookie } = await login(a);
    const me = `spiffe://${TD}/node/follower`;
    const state = async (r: Replica) => {
      const fleet = (await dash(r, '/api/fleet', cookie)).json as {
        online: number;
        agents: { identity: string; online: boolean }[];
      };
      const api = (await call(`${r.api}/v1/agents`, admin)).json as {
        agents: { identity: string; connected: number }[];
      };
      return {
        online: fleet.agents.find((x) => x.identity === me)?.online ?? false,
        count: fleet.online,
        connected: api.agents.find((x) => x.identity === me)?.connected ?? 0,
      };
    };
    const sub = await subscriber(b.api, node, join(dir, 'sub-presence'), TD);
    try {
      await waitFor('B’s stream', () => sub.applied.length > 0);
      // B says so within a second of the connection; A reads it on its next view.
      const onA = await waitFor('the agent online on A', async () => {
        const x = await state(a);
        return x.online ? x : undefined;
      });
      expect(onA).toEqual({ online: true, count: 1, connected: 1 });
      expect(await state(b)).toEqual({ online: true, count: 1, connected: 1 });
    } finally {
      sub.client.stop();
    }
    const gone = await waitFor('the agent offline on A and B', async () => {
      const [x, y] = await Promise.all([state(a), state(b)]);
      return !x.online && !y.online ? [x, y] : undefined;
    });
    expect(gone).toEqual([
      { online: false, count: 0, connected: 0 },
      { online: false, count: 0, connected: 0 },
    ]);
  }, 60_000);

  it('refuses a store URL with a password, and an unreachable store, with their codes and no password', async () => {
    const add = (url: string) =>
      edgewardAsync(
        [
          'siem',
          'user',
          'add',
          '--data',
          join(dir, 'refused'),
          '--store',
          url,
          '--name',
          'bob',
          '--role',
          'viewer',
        ],
        { EDGEWARD_PASSWORD: PASSWORD },
      );
    const secret = await add('postgres://edgeward:hunter2@127.0.0.1:5432/siem');
    expect(secret.status).toBe(1);
    expect(secret.stderr).toContain('ERR_SECRET_ARGV');
    expect(secret.stderr + secret.stdout).not.toContain('hunter2');
    const down = await add('postgres://edgeward@127.0.0.1:1/siem');
    expect(down.status).toBe(1);
    expect(down.stderr).toContain('ERR_STORE_UNAVAILABLE');
    expect(down.stderr).toContain('postgres://edgeward@127.0.0.1:1/siem');
    expect(down.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);
});
