// One decision at every agent: two `siem serve --bus --store postgres://` replicas (B on a copy of
// A's folder), AGENTS simulated agents split over them, each with its own node certificate and its
// own mTLS decision stream (the agent's DecisionStreamClient: it verifies every document and
// acknowledges it), held by CLIENTS child processes; DEVICES device identities in the inventory.
// ROUNDS manual quarantines posted to A's analyst API; per agent, the time from the request to
// the frame at the agent, to the verified delta applied, and to the SIEM's record of its
// acknowledgement (the ledger of /v1/agents); p50/p95/p99/max per replica and the count that got
// it. Memory per connected agent: each replica's VmRSS before and with the connections.
// Usage: npm run build && nice -n 10 node dist/bench/siem-fanout.js [--agents 10000] [--rounds 5]
//   [--clients 3] [--devices 100000] [--pg-port 5432] ; NATS from EDGEWARD_BENCH_NATS (default
//   nats://127.0.0.1:4222), under a fresh prefix deleted after; PostgreSQL on 127.0.0.1 with trust
//   auth for the user postgres, in a database made and dropped here.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { pino } from 'pino';
import { connect } from 'nats';
import { loadAuthority } from '../ca/index.js';
import { DecisionStreamClient } from '../client/index.js';
import { verifyDecisions } from '../common/decision-jws.js';
import type { EdgeEvent } from '../common/events.js';
import { serviceId } from '../common/identity.js';
import { verifySiemChain } from '../common/siem-key.js';
import { busLayout, deleteBusLayout } from '../siem/bus/index.js';
import { openPostgresSiem } from '../siem/store/index.js';
import {
  credsIn,
  EDGEWARD,
  fmt,
  mtlsSend,
  percentile,
  rssKb,
  startBenchCa,
  startProcess,
  stopProcess,
  tokenFileIn,
} from './lib.js';

const TD = 'bench.example';
const SIEM_ID = serviceId(TD, 'siem');

/** Wall-clock ms with sub-ms resolution, comparable across the bench's processes. */
const clockMs = (): number => performance.timeOrigin + performance.now();

interface AgentCreds {
  readonly i: number;
  readonly id: string;
  readonly key: string;
  readonly cert: string;
}

interface ChildConfig {
  readonly replicas: readonly string[];
  readonly bundle: string;
  readonly keyChain: string;
  readonly agents: readonly AgentCreds[];
  readonly wave: number;
}

/** What a child reports for one scope: per agent [replica, received, verified] (epoch ms). */
interface RoundAnswer {
  readonly scope: string;
  readonly rows: [number, number, number][];
  readonly missed: number;
}

// ---- a client child: holds its share of the simulated agents ----
async function agentsChild(file: string): Promise<void> {
  const cfg = JSON.parse(readFileSync(file, 'utf8')) as ChildConfig;
  rmSync(file, { force: true }); // it holds private keys
  const key = verifySiemChain(cfg.keyChain, cfg.bundle, TD, Date.now());
  let warnings = 0;
  const log = pino({ level: 'warn' }, { write: () => void warnings++ });
  interface Sim {
    readonly replica: number;
    applied: number | null;
    readonly seen: Map<string, { r: number; v: number }>;
    readonly client: DecisionStreamClient;
  }
  const sims: Sim[] = [];
  const startAgent = (a: AgentCreds): Sim => {
    const replica = a.i % cfg.replicas.length;
    const context = createSecureContext({ key: a.key, cert: a.cert, ca: cfg.bundle });
    const seen = new Map<string, { r: number; v: number }>();
    const sim: Sim = {
      replica,
      applied: null,
      seen,
      client: new DecisionStreamClient({
        url: cfg.replicas[replica] as string,
        expect: SIEM_ID,
        context: () => context,
        log,
        revision: () => sim.applied ?? 0,
        apply: async (_kind, token) => {
          const r = clockMs();
          const doc = await verifyDecisions(token, {
            publicKey: key.publicKey,
            kid: key.kid,
            trustDomain: TD,
            lastApplied: sim.applied,
            now: Date.now(),
          });
          const v = clockMs();
          sim.applied = doc.kind === 'snapshot' ? doc.set.revision : doc.delta.revision;
          for (const d of doc.kind === 'snapshot' ? doc.set.decisions : doc.delta.upserts)
            if (!seen.has(d.scope.value)) seen.set(d.scope.value, { r, v });
          return sim.applied;
        },
      }),
    };
    sim.client.start();
    return sim;
  };
  const waitFor = async (cond: () => boolean, ms: number): Promise<boolean> => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  };
  const t0 = Date.now();
  // In waves, each connected (its first document verified and acknowledged) before the next.
  for (let k = 0; k < cfg.agents.length; k += cfg.wave) {
    const wave = cfg.agents.slice(k, k + cfg.wave).map(startAgent);
    sims.push(...wave);
    if (!(await waitFor(() => wave.every((s) => s.applied !== null && s.client.lastAck >= 0), 120_000))) {
      const stuck = wave.filter((s) => s.applied === null).length;
      process.stdout.write(
        `${JSON.stringify({ type: 'error', message: `${stuck} agents not connected after 120 s` })}\n`,
      );
      process.exit(1);
    }
  }
  const send = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
  send({ type: 'ready', agents: sims.length, ms: Date.now() - t0 });
  let buf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (c: string) => {
    buf += c;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const [cmd, arg, timeout] = buf.slice(0, nl).trim().split(' ');
      buf = buf.slice(nl + 1);
      if (cmd === 'quit') {
        for (const s of sims) s.client.stop();
        process.exit(0);
      }
      if (cmd === 'stats') {
        const rss = /VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
        send({
          type: 'stats',
          connected: sims.filter((s) => s.client.connected).length,
          warnings,
          rssKb: Number(rss),
        });
      }
      if (cmd === 'collect' && arg !== undefined) {
        void waitFor(() => sims.every((s) => s.seen.has(arg)), Number(timeout)).then(() => {
          const rows: [number, number, number][] = [];
          for (const s of sims) {
            const t = s.seen.get(arg);
            if (t) rows.push([s.replica, t.r, t.v]);
          }
          const answer: RoundAnswer = { scope: arg, rows, missed: sims.length - rows.length };
          send({ type: 'round', ...answer });
        });
      }
    }
  });
}

interface Child {
  readonly proc: ChildProcess;
  /** Resolves with the next line of the given type. */
  next<T>(type: string): Promise<T>;
  send(line: string): void;
}

function startChild(cfgFile: string): Child {
  const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), 'agents-child', cfgFile], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  process.on('exit', () => proc.kill('SIGKILL'));
  const waiting = new Map<string, ((o: unknown) => void)[]>();
  const queued = new Map<string, unknown[]>();
  let failed: Error | undefined;
  let buf = '';
  proc.stdout?.setEncoding('utf8');
  proc.stdout?.on('data', (c: string) => {
    buf += c;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const o = JSON.parse(buf.slice(0, nl)) as { type: string; message?: string };
      buf = buf.slice(nl + 1);
      if (o.type === 'error') failed = new Error(`agents child: ${o.message}`);
      const w = waiting.get(o.type)?.shift();
      if (w) w(o);
      else queued.set(o.type, [...(queued.get(o.type) ?? []), o]);
    }
  });
  const exited = new Promise<never>((_, reject) =>
    proc.on('exit', (code) => reject(failed ?? new Error(`agents child exited with ${code}`))),
  );
  exited.catch(() => undefined);
  return {
    proc,
    next<T>(type: string): Promise<T> {
      const q = queued.get(type);
      if (q !== undefined && q.length > 0) return Promise.resolve(q.shift() as T);
      const got = new Promise<T>((resolve) =>
        waiting.set(type, [...(waiting.get(type) ?? []), resolve as (o: unknown) => void]),
      );
      return Promise.race([got, exited]);
    },
    send: (line) => void proc.stdin?.write(`${line}\n`),
  };
}

interface Stats {
  readonly n: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

function stats(xs: readonly number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? NaN,
  };
}

const row = (name: string, s: Stats): string =>
  `  ${name.padEnd(30)} n ${String(s.n).padStart(6)}  p50 ${fmt(s.p50).padStart(7)}  p95 ${fmt(s.p95).padStart(7)}  p99 ${fmt(s.p99).padStart(7)}  max ${fmt(s.max).padStart(7)} ms`;

/** What the checks before the run need: a reachable PostgreSQL and NATS, and file descriptors. */
async function preflight(
  pgConf: pg.ClientConfig,
  nats: string,
  agents: number,
  clients: number,
): Promise<pg.Client> {
  const admin = new pg.Client({ ...pgConf, database: 'postgres', connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL is not reachable at ${pgConf.host}:${pgConf.port} (user ${pgConf.user}, trust auth): ${(err as Error).message}; start it or give --pg-port`,
    );
  }
  try {
    const nc = await connect({ servers: nats, timeout: 3000 });
    const jsm = await nc.jetstreamManager().catch((err: unknown) => {
      throw new Error(`NATS at ${nats} has no JetStream (start nats-server -js): ${(err as Error).message}`);
    });
    void jsm;
    await nc.close();
  } catch (err) {
    await admin.end();
    const which = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' }).stdout.trim();
    throw new Error(
      `NATS is not reachable at ${nats}: ${(err as Error).message}; start nats-server -js (${which === '' ? 'nats-server is not installed' : `found ${which}`}) or set EDGEWARD_BENCH_NATS`,
    );
  }
  // Each agent holds two sockets on its replica (the stream and the keep-alive acknowledgements).
  const limit = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim());
  const perReplica = agents + 256;
  const perClient = Math.ceil((2 * agents) / clients) + 256;
  if (Number.isFinite(limit) && limit < Math.max(perReplica, perClient)) {
    await admin.end();
    throw new Error(
      `ulimit -n is ${limit}: a replica needs about ${perReplica} descriptors and a client ${perClient}; raise it (ulimit -n) or give more --clients / fewer --agents`,
    );
  }
  return admin;
}

/** CA issue events (the evidence the inventory is built from) for each identity. */
function issueEvents(ids: readonly string[], now: number): EdgeEvent[] {
  return ids.map((id, k) => ({
    '@timestamp': now - ids.length + k,
    'event.action': 'enroll.success',
    'observer.identity': serviceId(TD, 'ca'),
    'observer.type': 'ca',
    'source.identity': id,
    'attestation.method': 'token',
    'tls.client.x509.serial_number': createHash('sha256').update(id).digest('hex').slice(0, 32),
    'tls.client.x509.not_after': now + 86_400_000,
    'tls.client.x509.spki_sha256': createHash('sha256').update(`spki ${id}`).digest('hex'),
  }));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      agents: { type: 'string' },
      rounds: { type: 'string' },
      clients: { type: 'string' },
      devices: { type: 'string' },
      wave: { type: 'string' },
      'pg-port': { type: 'string' },
    },
  });
  const int = (v: string | undefined, d: number, name: string, min: number): number => {
    const n = v === undefined ? d : Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number >= ${min}`);
    return n;
  };
  const AGENTS = int(values.agents, 10_000, 'agents', 2);
  const ROUNDS = int(values.rounds, 5, 'rounds', 1);
  const CLIENTS = int(values.clients, 3, 'clients', 1);
  const DEVICES = int(values.devices, 100_000, 'devices', 1);
  const WAVE = int(values.wave, 100, 'wave', 1);
  const NATS = process.env['EDGEWARD_BENCH_NATS'] ?? 'nats://127.0.0.1:4222';
  const PG = { host: '127.0.0.1', port: int(values['pg-port'], 5432, 'pg-port', 1), user: 'postgres' };
  const admin = await preflight(PG, NATS, AGENTS, CLIENTS);

  const work = mkdtempSync(join(tmpdir(), 'edgeward-bench-fanout-'));
  const dbName = `edgeward_bench_${randomBytes(5).toString('hex')}`;
  const prefix = `fo${randomBytes(4).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${dbName}`);
  const procs: ChildProcess[] = [];
  const children: Child[] = [];
  const ca = await startBenchCa(join(work, 'ca'), TD);
  try {
    const store = `postgres://${PG.user}@${PG.host}:${PG.port}/${dbName}`;
    const serve = async (data: string, extra: string[] = []): Promise<{ url: string; pid: number }> => {
      const { proc, output } = await startProcess(
        process.execPath,
        [EDGEWARD, 'siem', 'serve', '--data', data, '--store', store, '--listen', '127.0.0.1:0',
          '--ca', ca.url, '--fingerprint', ca.fingerprint, '--bus', NATS, '--bus-prefix', prefix,
          '--bus-shards', '1', ...extra], // prettier-ignore
        /listening on https:\/\/\S+\n/,
        { ...process.env, EDGEWARD_LOG_LEVEL: 'warn' },
      );
      procs.push(proc);
      return { url: /listening on (https:\/\/\S+)/.exec(output)?.[1] as string, pid: proc.pid as number };
    };
    const a = await serve(join(work, 'siem-a'), ['--token-file', tokenFileIn(work, await ca.token(SIEM_ID))]);
    cpSync(join(work, 'siem-a'), join(work, 'siem-b'), { recursive: true });
    const b = await serve(join(work, 'siem-b'));
    const replicas = [a, b];
    const adminDir = join(work, 'ca', 'admin');
    const adminCreds = credsIn(adminDir);

    // The inventory: DEVICES devices and the AGENTS nodes, as the CA's issue events make rows.
    let t = performance.now();
    const opened = await openPostgresSiem(store, { poolMax: 2 });
    const ids = [
      ...Array.from({ length: DEVICES }, (_, k) => `spiffe://${TD}/device/d${k}`),
      ...Array.from({ length: AGENTS }, (_, k) => `spiffe://${TD}/node/a${k}`),
    ];
    for (let k = 0; k < ids.length; k += 5000)
      await opened.inventory.apply(issueEvents(ids.slice(k, k + 5000), Date.now()));
    const rows = (
      await opened.pool.query<{ kind: string; n: string }>(
        'SELECT kind, count(*) AS n FROM siem_inventory GROUP BY kind ORDER BY kind',
      )
    ).rows;
    await opened.close();
    const inventoryS = (performance.now() - t) / 1000;
    const devicesIn = Number(rows.find((r) => r.kind === 'device')?.n ?? 0);
    if (devicesIn !== DEVICES) throw new Error(`the inventory holds ${devicesIn} devices, not ${DEVICES}`);

    // Node certificates issued in process by the bench CA's intermediate (P-256 keys).
    t = performance.now();
    const authority = loadAuthority(join(work, 'ca'), TD, undefined);
    const now = Date.now();
    const creds: AgentCreds[] = Array.from({ length: AGENTS }, (_, i) => {
      const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const id = `spiffe://${TD}/node/a${i}`;
      const issued = authority.issue({
        identity: id,
        spkiDer: k.publicKey.export({ type: 'spki', format: 'der' }),
        lifetimeMs: 86_400_000,
        now,
      });
      return {
        i,
        id,
        key: k.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
        cert: authority.chainPem(issued.der),
      };
    });
    const issueS = (performance.now() - t) / 1000;
    const keyChain = (await mtlsSend(`${a.url}/v1/decisions/key`, adminCreds, 'GET')).text;

    // One round before the agents connect, so both replicas have signed and followed a change.
    const warm = await mtlsSend(`${a.url}/v1/decisions`, adminCreds, 'POST', {
      scope: { type: 'identity', value: `spiffe://${TD}/device/warm-up` },
      action: 'quarantine',
      ttl: '1h',
      reason: 'bench warm-up',
    });
    if (warm.status !== 201) throw new Error(`quarantine answered ${warm.status}: ${warm.text}`);
    await new Promise((r) => setTimeout(r, 2000));
    const rssBefore = replicas.map((r) => rssKb(r.pid));

    t = performance.now();
    for (let c = 0; c < CLIENTS; c++) {
      const file = join(work, `agents-${c}.json`);
      const cfg: ChildConfig = {
        replicas: replicas.map((r) => r.url),
        bundle: adminCreds.ca,
        keyChain,
        agents: creds.filter((x) => x.i % CLIENTS === c),
        wave: WAVE,
      };
      writeFileSync(file, JSON.stringify(cfg), { mode: 0o600 });
      children.push(startChild(file));
    }
    const readies = await Promise.all(children.map((c) => c.next<{ agents: number; ms: number }>('ready')));
    const connectS = (performance.now() - t) / 1000;
    await new Promise((r) => setTimeout(r, 2000));
    const rssWith = replicas.map((r) => rssKb(r.pid));
    const perReplica = replicas.map((_, k) => creds.filter((x) => x.i % 2 === k).length);

    type AgentsView = {
      revision: number;
      agents: {
        identity: string;
        connected: number;
        acked: number | null;
        ackedAt: number | null;
        behind: number;
        lagMs: number;
      }[];
    };
    const agentsOf = async (url: string): Promise<AgentsView> => {
      const r = await mtlsSend(`${url}/v1/agents`, adminCreds, 'GET');
      if (r.status !== 200) throw new Error(`/v1/agents answered ${r.status}: ${r.text.slice(0, 200)}`);
      return JSON.parse(r.text) as AgentsView;
    };
    const connectedOn = await Promise.all(
      replicas.map(async (r) => (await agentsOf(r.url)).agents.filter((x) => x.connected > 0).length),
    );

    const received: number[][] = [[], []];
    const verified: number[][] = [[], []];
    const acked: number[][] = [[], []];
    const api: number[] = [];
    let got = 0;
    let missed = 0;
    let ackMissing = 0;
    let maxLagMs = 0;
    let maxBehind = 0;
    const perRound: { round: number; got: number; verifiedP99: number; ackedAllMs: number }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const value = `spiffe://${TD}/device/d${(r * 7919 + 13) % DEVICES}`;
      const t0 = clockMs();
      const res = await mtlsSend(`${a.url}/v1/decisions`, adminCreds, 'POST', {
        scope: { type: 'identity', value },
        action: 'quarantine',
        ttl: '1h',
        reason: 'bench fan-out',
      });
      if (res.status !== 201) throw new Error(`quarantine answered ${res.status}: ${res.text}`);
      api.push(clockMs() - t0);
      const revision = (JSON.parse(res.text) as { decision: { revision: number } }).decision.revision;
      for (const c of children) c.send(`collect ${value} 60000`);
      const answers = await Promise.all(children.map((c) => c.next<RoundAnswer>('round')));
      const v: number[] = [];
      for (const ans of answers) {
        missed += ans.missed;
        for (const [rep, rcv, ver] of ans.rows) {
          got++;
          received[rep]?.push(rcv - t0);
          verified[rep]?.push(ver - t0);
          v.push(ver - t0);
        }
      }
      // The SIEM's own record: every agent connected to a replica acknowledged the revision.
      const end = Date.now() + 60_000;
      let ackedAll = NaN;
      for (let first = true; ; first = false) {
        const views = await Promise.all(replicas.map((rep) => agentsOf(rep.url)));
        let pending = 0;
        for (const view of views)
          for (const ag of view.agents) {
            if (ag.connected === 0) continue;
            if (first) {
              maxLagMs = Math.max(maxLagMs, ag.lagMs);
              maxBehind = Math.max(maxBehind, ag.behind);
            }
            if (ag.acked === null || ag.acked < revision) pending++;
          }
        if (pending === 0) {
          for (const [k, view] of views.entries())
            for (const ag of view.agents)
              if (ag.connected > 0 && ag.ackedAt !== null) acked[k]?.push(ag.ackedAt - t0);
          ackedAll = clockMs() - t0;
          break;
        }
        if (Date.now() > end) {
          ackMissing += pending;
          break;
        }
        await new Promise((res2) => setTimeout(res2, 1000));
      }
      perRound.push({ round: r, got: v.length, verifiedP99: stats(v).p99, ackedAllMs: ackedAll });
      console.log(
        `round ${r + 1}/${ROUNDS}: ${v.length} of ${AGENTS} verified, p99 ${fmt(stats(v).p99)} ms; all acknowledged (SIEM ledger) within ${fmt(ackedAll, 0)} ms`,
      );
      await new Promise((res2) => setTimeout(res2, 1000));
    }
    const rssAfter = replicas.map((rep) => rssKb(rep.pid));
    for (const c of children) c.send('stats');
    const childStats = await Promise.all(
      children.map((c) => c.next<{ connected: number; warnings: number; rssKb: number }>('stats')),
    );
    const load = loadavg();
    const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
    const result = {
      bench: 'siem-fanout',
      commit,
      cpus: cpus().length,
      agents: AGENTS,
      perReplica,
      connectedOn,
      clients: CLIENTS,
      rounds: ROUNDS,
      devices: DEVICES,
      inventoryLoadS: inventoryS,
      certIssueS: issueS,
      connectS,
      childConnectMs: readies.map((x) => x.ms),
      got,
      expected: AGENTS * ROUNDS,
      missed,
      ackMissing,
      maxLagMs,
      maxBehind,
      api: stats(api),
      received: received.map(stats),
      verified: verified.map(stats),
      verifiedAll: stats(verified.flat()),
      acked: acked.map(stats),
      ackedAll: stats(acked.flat()),
      rssKb: { before: rssBefore, with: rssWith, after: rssAfter },
      kbPerAgent: replicas.map(
        (_, k) => ((rssWith[k] as number) - (rssBefore[k] as number)) / (perReplica[k] as number),
      ),
      clientRssKb: childStats.map((s) => s.rssKb),
      clientWarnings: childStats.reduce((n, s) => n + s.warnings, 0),
      clientConnectedAtEnd: childStats.reduce((n, s) => n + s.connected, 0),
      perRound,
      loadAverage: load,
    };
    const names = ['A', 'B'];
    console.log(
      `\nfan-out: ${AGENTS} agents (${perReplica.join(' on A, ')} on B; ${connectedOn.join(' and ')} connected per the replicas' /v1/agents) in ${CLIENTS} client processes, ${DEVICES} devices in the inventory, ${ROUNDS} rounds, ${cpus().length} cores, NATS ${NATS}`,
    );
    console.log(
      `set-up: inventory ${fmt(inventoryS, 1)} s, ${AGENTS} node certificates issued in ${fmt(issueS, 1)} s, agents connected (stream + first ack) in ${fmt(connectS, 1)} s`,
    );
    console.log(row('analyst API answer', result.api));
    for (const k of [0, 1]) {
      console.log(`replica ${names[k]} (${perReplica[k]} agents):`);
      console.log(row('frame at the agent', result.received[k] as Stats));
      console.log(row('verified and applied', result.verified[k] as Stats));
      console.log(row('acknowledged (SIEM ledger)', result.acked[k] as Stats));
    }
    console.log('all agents:');
    console.log(row('verified and applied', result.verifiedAll));
    console.log(row('acknowledged (SIEM ledger)', result.ackedAll));
    console.log(
      `delivered: ${got} of ${AGENTS * ROUNDS} (${missed} missed); acknowledgements missing after 60 s: ${ackMissing}; /v1/agents right after delivery: max behind ${maxBehind}, max lag ${fmt(maxLagMs, 0)} ms`,
    );
    for (const k of [0, 1])
      console.log(
        `memory, replica ${names[k]}: VmRSS ${fmt((rssBefore[k] as number) / 1024)} MiB before, ${fmt((rssWith[k] as number) / 1024)} MiB with ${perReplica[k]} agents (${fmt(result.kbPerAgent[k] as number)} KiB per agent), ${fmt((rssAfter[k] as number) / 1024)} MiB after the rounds`,
      );
    console.log(
      `clients: VmRSS ${childStats.map((s) => `${fmt(s.rssKb / 1024, 0)} MiB`).join(', ')}; ${result.clientConnectedAtEnd} streams open at the end; ${result.clientWarnings} client warnings (refusals, reconnections)`,
    );
    console.log(`load average at the end: ${load.map((x) => x.toFixed(2)).join(' ')}`);
    console.log(JSON.stringify(result));
    if (got !== AGENTS * ROUNDS || ackMissing > 0) process.exitCode = 1;
  } finally {
    for (const c of children) c.send('quit');
    await Promise.all(
      children.map(
        (c) => new Promise((r) => (c.proc.exitCode !== null ? r(undefined) : c.proc.once('exit', r))),
      ),
    );
    for (const p of procs) await stopProcess(p);
    await ca.close();
    const nc = await connect({ servers: NATS });
    await deleteBusLayout(await nc.jetstreamManager(), busLayout(prefix, 1));
    await nc.close();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'agents-child') await agentsChild(process.argv[3] as string);
else
  await main().catch((err: unknown) => {
    console.error(`siem-fanout: ${(err as Error).message}`);
    process.exitCode = 1;
  });
