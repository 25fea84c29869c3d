// A decision made on one SIEM replica, at an agent on another: two `siem serve --bus --store
// postgres://` processes (B on a copy of A's folder), an SSE subscriber on each; ROUNDS manual
// quarantines posted to A's analyst API one after the other. Prints, per round, the time from the
// request to the delta at the subscriber on A (A's own stream) and on B (through the decisions
// stream on NATS), p50/p95/p99/max, and the load average.
// Usage: npm run build && nice -n 10 node dist/bench/siem-bus-decisions.js [--rounds 200]
//   [--pg-port 5432] ; NATS from EDGEWARD_BENCH_NATS (default nats://127.0.0.1:4222), under a
//   fresh prefix deleted after; PostgreSQL on 127.0.0.1 with trust auth for the user postgres, in
//   a database made and dropped here.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { connect } from 'nats';
import { SseParser, tokenOf } from '../client/index.js';
import { verifyDecisions } from '../common/decision-jws.js';
import { serviceId } from '../common/identity.js';
import { verifySiemChain, type SiemDecisionKey } from '../common/siem-key.js';
import { busLayout, deleteBusLayout } from '../siem/bus/index.js';
import {
  credsIn,
  EDGEWARD,
  fmt,
  mtlsSend,
  noHostCheck,
  percentile,
  startBenchCa,
  startProcess,
  stopProcess,
  tokenFileIn,
  type Creds,
} from './lib.js';

const TD = 'bench.example';
const NATS = process.env['EDGEWARD_BENCH_NATS'] ?? 'nats://127.0.0.1:4222';
const { values } = parseArgs({ options: { rounds: { type: 'string' }, 'pg-port': { type: 'string' } } });
const ROUNDS = Number(values.rounds ?? 200);
const PG = { host: '127.0.0.1', port: Number(values['pg-port'] ?? 5432), user: 'postgres' };

/** An agent's stream on one replica: verifies each document, notes when each scope arrived. */
class Subscriber {
  private applied: number | null = null;
  readonly seen = new Map<string, number>();
  /** The document that brought each scope. */
  readonly tokens = new Map<string, string>();
  private req: ReturnType<typeof request> | undefined;
  constructor(
    private readonly url: string,
    private readonly creds: Creds,
    private readonly key: SiemDecisionKey,
  ) {}

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = request(`${this.url}/v1/decisions/stream`, {
        ...this.creds,
        ...noHostCheck,
        agent: false,
        headers: { accept: 'text/event-stream' },
      });
      this.req = req;
      req.on('error', reject);
      req.on('response', (res) => {
        res.setEncoding('utf8');
        let chain = Promise.resolve();
        const parser = new SseParser((e) => {
          if (e.event === 'ready') return void (chain = chain.then(resolve));
          if (e.event !== 'snapshot' && e.event !== 'delta') return;
          const at = performance.now();
          chain = chain.then(async () => {
            const doc = await verifyDecisions(tokenOf(e.data), {
              publicKey: this.key.publicKey,
              kid: this.key.kid,
              trustDomain: TD,
              lastApplied: this.applied,
              now: Date.now(),
            });
            this.applied = doc.kind === 'snapshot' ? doc.set.revision : doc.delta.revision;
            for (const d of doc.kind === 'snapshot' ? doc.set.decisions : doc.delta.upserts)
              if (!this.seen.has(d.scope.value)) {
                this.seen.set(d.scope.value, at);
                this.tokens.set(d.scope.value, tokenOf(e.data));
              }
          });
        });
        res.on('data', (c: string) => parser.push(c));
      });
      req.end();
    });
  }

  stop(): void {
    this.req?.destroy();
  }
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'edgeward-bench-bus-decisions-'));
  const dbName = `edgeward_bench_${randomBytes(5).toString('hex')}`;
  const prefix = `bd${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ ...PG, database: 'postgres' });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const procs: ChildProcess[] = [];
  const ca = await startBenchCa(join(work, 'ca'), TD);
  try {
    const store = `postgres://${PG.user}@${PG.host}:${PG.port}/${dbName}`;
    const serve = async (data: string, extra: string[] = []): Promise<string> => {
      const { proc, output } = await startProcess(
        process.execPath,
        [EDGEWARD, 'siem', 'serve', '--data', data, '--store', store, '--listen', '127.0.0.1:0',
          '--ca', ca.url, '--fingerprint', ca.fingerprint, '--bus', NATS, '--bus-prefix', prefix,
          '--bus-shards', '1', ...extra], // prettier-ignore
        /listening on https:\/\/\S+\n/,
        { ...process.env, EDGEWARD_LOG_LEVEL: 'warn' },
      );
      procs.push(proc);
      return /listening on (https:\/\/\S+)/.exec(output)?.[1] as string;
    };
    const a = await serve(join(work, 'siem-a'), [
      '--token-file',
      tokenFileIn(work, await ca.token(serviceId(TD, 'siem'))),
    ]);
    cpSync(join(work, 'siem-a'), join(work, 'siem-b'), { recursive: true });
    const b = await serve(join(work, 'siem-b'));
    const adminDir = join(work, 'ca', 'admin');
    const adminCreds = credsIn(adminDir);
    const node = await ca.enroll(`spiffe://${TD}/node/bench`, join(work, 'node'));
    const nodeCreds: Creds = { key: node.keyPem, cert: node.certPem, ca: node.bundlePem };
    const chain = await mtlsSend(`${b}/v1/decisions/key`, nodeCreds, 'GET');
    const key = verifySiemChain(chain.text, node.bundlePem, TD, Date.now());
    const subA = new Subscriber(a, nodeCreds, key);
    const subB = new Subscriber(b, nodeCreds, key);
    await Promise.all([subA.start(), subB.start()]);

    const onA: number[] = [];
    const onB: number[] = [];
    const api: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const value = `spiffe://${TD}/device/d${i}`;
      const t0 = performance.now();
      const r = await mtlsSend(`${a}/v1/decisions`, adminCreds, 'POST', {
        scope: { type: 'identity', value },
        action: 'quarantine',
        ttl: '1h',
        reason: 'bench',
      });
      if (r.status !== 201) throw new Error(`quarantine answered ${r.status}: ${r.text}`);
      api.push(performance.now() - t0);
      const end = Date.now() + 10_000;
      while (!(subA.seen.has(value) && subB.seen.has(value))) {
        if (Date.now() > end) throw new Error(`round ${i}: not at both subscribers after 10 s`);
        await new Promise((res) => setTimeout(res, 2));
      }
      onA.push((subA.seen.get(value) as number) - t0);
      onB.push((subB.seen.get(value) as number) - t0);
    }
    subA.stop();
    subB.stop();
    const row = (name: string, xs: number[]): string => {
      const s = [...xs].sort((x, y) => x - y);
      return `${name.padEnd(34)} p50 ${fmt(percentile(s, 50))}  p95 ${fmt(percentile(s, 95))}  p99 ${fmt(percentile(s, 99))}  max ${fmt(s[s.length - 1] ?? NaN)} ms`;
    };
    console.log(`decisions A -> B over ${NATS}: ${ROUNDS} rounds, ${cpus().length} cores`);
    console.log(row('analyst API answer (commit)', api));
    console.log(row('delta at the subscriber on A', onA));
    console.log(row('delta at the subscriber on B', onB));
    const diff = onB.map((x, i) => x - (onA[i] as number));
    console.log(row('B minus A (the bus hop)', diff));
    // The same signed document on both: B served what A put on the bus, not its own read of the store.
    let same = 0;
    for (const [scope, t] of subA.tokens) if (subB.tokens.get(scope) === t) same++;
    console.log(`B served A's own document (from the bus) in ${same} of ${ROUNDS} rounds`);
    console.log(
      `load average at the end: ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );
  } finally {
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

await main();
