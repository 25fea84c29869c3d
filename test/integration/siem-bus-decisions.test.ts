// Two `siem serve --bus --store postgres://` replicas (real processes) on this test's own
// PostgreSQL database and its own nats-server: a quarantine made through A's analyst API reaches
// an agent on B's SSE stream as the very document on the decisions stream; an agent acknowledging
// on B shows in A's dashboard with its lag; an agent cut off and back resumes at its revision
// (each revision once, in order, or a snapshot); a revision committed by a replica that died before
// publishing it is served by B and put on the stream by B, or by A when it starts again.
import type { ChildProcess } from 'node:child_process';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecisionStore, DecisionStreamClient, jwsDecisionVerifier } from '../../client/index.js';
import { systemClock } from '../../common/clock.js';
import { verifyDecisions } from '../../common/decision-jws.js';
import { serviceId } from '../../common/identity.js';
import { silentLogger } from '../../common/log.js';
import { DEFAULT_SETTINGS } from '../../policies/index.js';
import { parseBusDecision, type BusDecision } from '../../siem/bus/index.js';
import { ResponseEngine } from '../../siem/playbooks/index.js';
import { verifySiemChain, type SiemDecisionKey } from '../../common/siem-key.js';
import { openPostgresSiem } from '../../siem/store/index.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { edgewardAsync, edgewardServe, stop } from '../helpers/cli.js';
import { rawRequest } from '../helpers/https.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { startPrivateNats, type PrivateNats } from '../helpers/private-nats.js';
import { tempDir } from '../helpers/tmp.js';
import { call, enrollAs, waitFor, type Creds } from '../siem/service/setup.js';

const TD = 'factory.example';
const PASSWORD = 'correct horse battery';
const PREFIX = `dec${randomBytes(4).toString('hex')}`;
const STREAM = `${PREFIX.toUpperCase()}_DECISIONS`;
const dir = tempDir('edgeward-bus-decisions-');
const dataA = join(dir, 'siem-a');
const dataB = join(dir, 'siem-b');
const procs: ChildProcess[] = [];
let ca: TestCa;
let db: TestDatabase;
let nats: PrivateNats;
let nc: NatsConnection;

interface Replica {
  readonly proc: ChildProcess;
  readonly api: string;
  readonly dashboard: string;
}

beforeAll(async () => {
  [ca, db, nats] = await Promise.all([startTestCa(), createTestDatabase(), startPrivateNats()]);
  nc = await connect({ servers: nats.url });
}, 60_000);
afterAll(async () => {
  for (const p of procs) await stop(p, 'SIGKILL');
  await nc?.close();
  await nats?.stop();
  await ca?.stop();
  await db?.drop();
});

async function serve(data: string, extra: string[] = []): Promise<Replica> {
  const { proc, match } = await edgewardServe(
    ['siem', 'serve', '--data', data, '--store', db.url, '--listen', '127.0.0.1:0', '--ca', ca.url,
      '--fingerprint', ca.fingerprint, '--dashboard', '127.0.0.1:0', '--bus', nats.url,
      '--bus-prefix', PREFIX, '--bus-shards', '1', ...extra], // prettier-ignore
    /listening on (https:\/\/\S+)\n[\s\S]*dashboard on (https:\/\/\S+) /,
  );
  procs.push(proc);
  return { proc, api: match[1] ?? '', dashboard: match[2] ?? '' };
}

const kill9 = (p: ChildProcess) => stop(p, 'SIGKILL');

/** Every document on the decisions stream, in stream order. */
async function onStream(): Promise<BusDecision[]> {
  const jsm = await nc.jetstreamManager();
  const { state } = await jsm.streams.info(STREAM);
  const out: BusDecision[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++)
    out.push(parseBusDecision((await jsm.streams.getMessage(STREAM, { seq })).data));
  return out;
}

const payload = (jws: string): Record<string, unknown> =>
  JSON.parse(Buffer.from(jws.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;

/** An agent's decision stream (client/decisions-client.ts), recording every document it applies. */
class Agent {
  readonly frames: { kind: string; revision: number; token: string }[] = [];
  private client: DecisionStreamClient | undefined;
  private constructor(
    readonly creds: Creds,
    readonly store: DecisionStore,
    readonly key: SiemDecisionKey,
  ) {}

  static async start(creds: Creds, url: string, file: string): Promise<Agent> {
    const chain = await call(`${url}/v1/decisions/key`, creds);
    const key = verifySiemChain(chain.body.toString('utf8'), creds.bundlePem, TD, Date.now());
    const store = new DecisionStore(
      file,
      jwsDecisionVerifier({ publicKey: key.publicKey, trustDomain: TD, clock: systemClock, kid: key.kid }),
      TD,
    );
    const a = new Agent(creds, store, key);
    a.connect(url);
    return a;
  }

  get revision(): number {
    return this.store.revision;
  }

  /** Connects (again) to `url`, resuming from the revision it holds. */
  connect(url: string): void {
    this.client?.stop();
    this.client = new DecisionStreamClient({
      url,
      expect: serviceId(TD, 'siem'),
      context: () =>
        createSecureContext({ key: this.creds.keyPem, cert: this.creds.certPem, ca: this.creds.bundlePem }),
      log: silentLogger,
      revision: () => this.store.revision,
      maxBackoff: 300,
      apply: async (kind, token) => {
        const r =
          kind === 'snapshot' ? await this.store.applySnapshot(token) : await this.store.applyDelta(token);
        this.frames.push({ kind, revision: r.set.revision, token });
        return r.set.revision;
      },
    });
    this.client.start();
  }

  stop(): void {
    this.client?.stop();
  }

  /** What it applied since frame `i`: each revision once, in order, each delta on top of the last. */
  chainSince(i: number, held: number): number[] {
    const out: number[] = [];
    for (const f of this.frames.slice(i)) {
      if (f.kind === 'delta') expect(payload(f.token)['from']).toBe(held);
      else expect(f.revision).toBeGreaterThanOrEqual(held);
      expect(f.revision).toBeGreaterThan(held);
      held = f.revision;
      out.push(f.revision);
    }
    return out;
  }
}

async function quarantine(r: Replica, who: string): Promise<number> {
  const q = await edgewardAsync([
    'siem', 'decisions', 'quarantine', '--siem', r.api, '--identity', ca.adminDir,
    '--scope', `identity=spiffe://${TD}/device/${who}`, '--ttl', '1h', '--reason', 'bus test', '--json',
  ]); // prettier-ignore
  expect(q.status, q.stderr).toBe(0);
  return (JSON.parse(q.stdout) as { decision: { revision: number } }).decision.revision;
}

/** What a replica leaves when it dies between the PostgreSQL commit and the publish. */
async function commitWithoutPublishing(who: string): Promise<number> {
  const pg = await openPostgresSiem(db.url, { poolMax: 2 });
  try {
    const engine = new ResponseEngine({
      trustDomain: TD,
      config: { settings: DEFAULT_SETTINGS, playbooks: [] },
    });
    engine.importState(await pg.store.loadResponseState());
    const before = engine.revision;
    const now = Date.now();
    engine.createManual(
      { scope: { type: 'identity', value: `spiffe://${TD}/device/${who}` }, action: 'quarantine', ttlMs: 3_600_000, reason: 'crash window' },
      now,
    ); // prettier-ignore
    const a = engine.deltaSince(before, now);
    if (a.kind !== 'delta') throw new Error('no delta');
    await pg.store.saveDecisionChanges({
      revision: engine.revision,
      upserts: a.delta.upserts,
      removals: a.delta.removals,
      at: now,
      pending: engine.pending(),
    });
    return engine.revision;
  } finally {
    await pg.close();
  }
}

async function login(r: Replica): Promise<string> {
  const res = await rawRequest(`${r.dashboard}/api/login`, {
    method: 'POST',
    body: JSON.stringify({ name: 'alice', password: PASSWORD }),
  });
  expect(res.status, res.body.toString()).toBe(200);
  return String(res.headers['set-cookie']).split(';')[0] ?? '';
}

interface AgentRow {
  identity: string;
  revision: number | null;
  behind: number;
  lagMs: number;
}

async function agentOn(
  r: Replica,
  cookie: string,
  identity: string,
): Promise<{ revision: number; row?: AgentRow }> {
  const res = await rawRequest(`${r.dashboard}/api/decisions`, { headers: { cookie } });
  expect(res.status, res.body.toString()).toBe(200);
  const v = res.json as { revision: number; agents: AgentRow[] };
  const row = v.agents.find((x) => x.identity === identity);
  return { revision: v.revision, ...(row !== undefined ? { row } : {}) };
}

describe('decisions on the bus between SIEM replicas (real processes)', () => {
  let a: Replica;
  let b: Replica;
  let agent: Agent;
  let node: Creds;
  const nodeId = `spiffe://${TD}/node/edge-1`;
  let cookieA = '';

  it('a quarantine made through A reaches the agent on B as the document A put on the bus', async () => {
    a = await serve(dataA, ['--token-file', await ca.tokenFile(serviceId(TD, 'siem'))]);
    cpSync(dataA, dataB, { recursive: true });
    b = await serve(dataB);
    const add = await edgewardAsync(
      ['siem', 'user', 'add', '--data', dataA, '--store', db.url, '--name', 'alice', '--role', 'analyst'],
      { EDGEWARD_PASSWORD: PASSWORD },
    );
    expect(add.status, add.stderr).toBe(0);
    node = await enrollAs(ca, nodeId, join(dir, 'edge-1'));
    agent = await Agent.start(node, b.api, join(dir, 'edge-1', 'decisions.json'));
    await waitFor('the first snapshot from B', () => agent.frames.length > 0);

    const revision = await quarantine(a, 'cloned');
    const frame = await waitFor('the delta on B’s stream', () =>
      agent.frames.find((f) => f.revision === revision),
    );
    expect(frame.kind).toBe('delta');
    const doc = payload(frame.token);
    expect(doc).toMatchObject({ trustDomain: TD, from: revision - 1, revision });
    expect((doc['upserts'] as { scope: unknown }[])[0]?.scope).toEqual({
      type: 'identity',
      value: `spiffe://${TD}/device/cloned`,
    });
    // B served the very document on the stream (a re-signed one would differ: ECDSA is randomised).
    const docs = await onStream();
    const bus = docs.find((d) => d.revision === revision);
    expect(bus).toMatchObject({ kind: 'delta', from: revision - 1, kid: agent.key.kid });
    expect(bus?.jws).toBe(frame.token);
    expect(docs.filter((d) => d.revision === revision)).toHaveLength(1);
  }, 120_000);

  it('an agent acknowledging on B shows on A’s dashboard, with its lag while cut off, and resumes at its revision', async () => {
    cookieA = await login(a);
    const held = agent.revision;
    const current = await waitFor('the agent current on A’s dashboard', async () => {
      const v = await agentOn(a, cookieA, nodeId);
      return v.row?.revision === held && v.row.behind === 0 ? v : undefined;
    });
    expect(current.revision).toBe(held);

    agent.stop();
    const since = agent.frames.length;
    const r1 = await quarantine(a, 'cut-off-1');
    const r2 = await quarantine(a, 'cut-off-2');
    expect(r2).toBe(r1 + 1);
    const behind = await waitFor('the lag on A’s dashboard', async () => {
      const v = await agentOn(a, cookieA, nodeId);
      return v.revision === r2 && v.row !== undefined && v.row.lagMs > 0 ? v.row : undefined;
    });
    expect(behind).toMatchObject({ revision: held, behind: r2 - held });
    const cookieB = await login(b);
    await waitFor('the same lag on B’s dashboard', async () => {
      const v = await agentOn(b, cookieB, nodeId);
      return v.row?.behind === r2 - held ? v : undefined;
    });

    agent.connect(b.api);
    await waitFor('the agent back at the last revision', () => agent.revision === r2);
    const got = agent.chainSince(since, held);
    expect(got[got.length - 1]).toBe(r2);
    // One delta from its revision (the SIEM folds what it missed into one) or one per revision:
    // each of the two decisions arrives once, or in a snapshot.
    const frames = agent.frames.slice(since);
    if (frames.every((f) => f.kind === 'delta')) {
      const scopes = frames.flatMap((f) =>
        (payload(f.token)['upserts'] as { scope: { value: string } }[]).map((u) => u.scope.value),
      );
      expect(scopes.sort()).toEqual([`spiffe://${TD}/device/cut-off-1`, `spiffe://${TD}/device/cut-off-2`]);
    }
    await waitFor('its acknowledgement on A’s dashboard', async () => {
      const v = await agentOn(a, cookieA, nodeId);
      return v.row?.revision === r2 && v.row.behind === 0 && v.row.lagMs === 0 ? v : undefined;
    });
  }, 120_000);

  it('kill -9 of A after a commit: B serves the revision, and it is on the stream', async () => {
    const since = agent.frames.length;
    const held = agent.revision;
    const r = await quarantine(a, 'killed-right-after');
    await kill9(a.proc);
    await waitFor('the revision on B’s stream', () => agent.revision === r);
    await waitFor('the revision on the bus', async () => (await onStream()).some((d) => d.revision === r));

    // The crash window itself: committed in PostgreSQL, never published.
    const lost = await commitWithoutPublishing('never-published');
    expect(lost).toBe(r + 1);
    await waitFor('the unpublished revision on B’s stream (the poll)', () => agent.revision === lost);
    const caught = await waitFor('B publishing it on the bus', async () =>
      (await onStream()).find((d) => d.revision === lost),
    );
    const v = await verifyDecisions(caught.jws, {
      publicKey: agent.key.publicKey,
      trustDomain: TD,
      lastApplied: caught.from,
      now: Date.now(),
      kid: agent.key.kid,
    });
    expect(v.kind).toBe(caught.kind);
    expect(caught.from).toBe(r);
    expect(agent.chainSince(since, held)).toEqual([r, lost]);
  }, 120_000);

  it('with every replica gone, a revision committed before is published by A when it starts again', async () => {
    await kill9(b.proc);
    const lost = await commitWithoutPublishing('before-restart');
    a = await serve(dataA);
    const caught = await waitFor('A publishing it at start', async () =>
      (await onStream()).find((d) => d.revision === lost),
    );
    expect(caught.from).toBe(lost - 1);
    const v = await verifyDecisions(caught.jws, {
      publicKey: agent.key.publicKey,
      trustDomain: TD,
      lastApplied: caught.from,
      now: Date.now(),
      kid: agent.key.kid,
    });
    expect(v.kind === 'snapshot' ? v.set.revision : v.delta.revision).toBe(lost);
    // The agent, cut off with B, resumes on A: the revision once, as a delta or in a snapshot.
    const since = agent.frames.length;
    const held = agent.revision;
    agent.connect(a.api);
    await waitFor('the agent at the revision on A', () => agent.revision === lost);
    expect(agent.chainSince(since, held)).toEqual([lost]);
    // Every revision is on the stream once.
    const revs = (await onStream()).map((d) => d.revision);
    expect(new Set(revs).size).toBe(revs.length);
    agent.stop();
  }, 120_000);
});
