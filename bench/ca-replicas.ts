// CA renewals per second: one `ca serve` on its SQLite store beside two `ca serve` replicas
// sharing one PostgreSQL database (each with a copy of the CA's folder), the renewals spread
// over both replicas. Same machine, same clients, same run; the load generator runs here.
// Usage: npm run build && nice -n 10 node dist/bench/ca-replicas.js [--seconds 10] [--concurrency 16]
//   [--pg-port 5432] [--only-pg]
// PostgreSQL on 127.0.0.1 (port 5432 unless --pg-port) with trust auth for the user postgres; the
// benchmark creates and drops its own database.
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import pg from 'pg';
import { openCaStore, openPostgresCaStore, verifyAuditChain, type CaStore } from '../ca/index.js';
import {
  cfsslSign,
  EDGEWARD,
  fmt,
  load,
  processTreeCpuSeconds,
  renewalTarget,
  startCaProcess,
  type CaProcess,
  type Target,
} from './lib.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string' },
    concurrency: { type: 'string' },
    'pg-port': { type: 'string' },
    'only-pg': { type: 'boolean' },
  },
});
const SECONDS = Number(values.seconds ?? 10);
const CONC = Number(values.concurrency ?? 16);
const TD = 'bench.example';
const ADMIN = {
  host: '127.0.0.1',
  port: Number(values['pg-port'] ?? 5432),
  user: 'postgres',
  database: 'postgres',
};

async function admin(sql: string): Promise<void> {
  const c = new pg.Client(ADMIN);
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

function init(data: string, store?: string): void {
  const r = spawnSync(
    process.execPath,
    [EDGEWARD, 'ca', 'init', '--data', data, '--trust-domain', TD, ...(store ? ['--store', store] : [])],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`ca init failed: ${r.stderr}`);
}

/** The PostgreSQL backends serving a database (this machine's server: their CPU is read from /proc). */
async function backends(dbName: string | undefined): Promise<number[]> {
  if (dbName === undefined) return [];
  const c = new pg.Client(ADMIN);
  await c.connect();
  try {
    const r = await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [dbName]);
    return r.rows.map((x) => x.pid);
  } finally {
    await c.end();
  }
}

/**
 * Enrolls 16 identities (spread over the servers) and renews them for SECONDS, round-robin over
 * the servers. CPU per renewal: the CA processes, PostgreSQL's backends for the database (when
 * given), and this load generator.
 */
async function renewals(dir: string, servers: CaProcess[], store: CaStore, dbName?: string) {
  const targets: Target[] = [];
  for (let i = 0; i < Math.min(CONC, 16); i++) {
    const server = servers[i % servers.length] as CaProcess;
    targets.push(await renewalTarget(store, server, `spiffe://${TD}/node/r${i}`, join(dir, `id${i}`)));
  }
  await load(targets, CONC, 1); // warm-up
  const cpu0 = servers.map((s) => processTreeCpuSeconds(s.proc.pid ?? 0));
  const pids0 = await backends(dbName);
  const pg0 = new Map(pids0.map((p) => [p, processTreeCpuSeconds(p)]));
  const me0 = process.cpuUsage();
  const r = await load(targets, CONC, SECONDS);
  const me = process.cpuUsage(me0);
  const serverCpu = servers.reduce(
    (sum, s, i) => sum + processTreeCpuSeconds(s.proc.pid ?? 0) - (cpu0[i] ?? 0),
    0,
  );
  // A backend that was not there at the start counts from zero; one that left is not counted.
  const pgCpu = (await backends(dbName)).reduce(
    (sum, p) => sum + processTreeCpuSeconds(p) - (pg0.get(p) ?? 0),
    0,
  );
  return {
    ...r,
    serverUs: (serverCpu * 1e6) / r.ops,
    pgUs: (pgCpu * 1e6) / r.ops,
    clientUs: (me.user + me.system) / r.ops,
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeward-bench-replicas-'));
  const dbName = `edgeward_bench_${randomBytes(4).toString('hex')}`;
  const line = (label: string, r: Awaited<ReturnType<typeof renewals>>) =>
    console.log(
      `${label}: ${fmt(r.perSecond, 0)}/s  p50 ${fmt(r.p50ms, 2)} ms  p99 ${fmt(r.p99ms, 2)} ms  errors ${r.errors}; CPU per renewal: CA ${fmt(r.serverUs, 0)} us` +
        (r.pgUs > 0 ? `, PostgreSQL backends ${fmt(r.pgUs, 0)} us` : '') +
        `, load generator ${fmt(r.clientUs, 0)} us`,
    );
  try {
    console.log(
      `CA renewals: ${SECONDS} s per run, concurrency ${CONC}, node ${process.version}, load average before ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    // One process, SQLite in its folder; two replicas on PostgreSQL; cfssl: one after the other,
    // same load generator, so the ratios are of one run.
    const sq = values['only-pg'] ? undefined : await sqliteRun(dir, line);
    const pgr = await pgRun(dir, dbName, line);
    if (!values['only-pg']) {
      const cf = await cfsslSign(dir, TD, CONC, SECONDS);
      console.log(
        `cfssl sign over HTTP    : ${fmt(cf.perSecond, 0)}/s  p50 ${fmt(cf.p50ms, 2)} ms  p99 ${fmt(cf.p99ms, 2)} ms  errors ${cf.errors}; CPU per signature: cfssl ${fmt(cf.serverUs, 0)} us, load generator ${fmt(cf.clientUs, 0)} us`,
      );
      console.log(
        `CPU per operation, all processes counted: SQLite ${fmt(total(sq), 0)} us, PostgreSQL ${fmt(total(pgr), 0)} us, cfssl ${fmt(cf.serverUs + cf.clientUs, 0)} us; ` +
          `so at most ${fmt(2e6 / total(sq), 0)}/s, ${fmt(2e6 / total(pgr), 0)}/s and ${fmt(2e6 / (cf.serverUs + cf.clientUs), 0)}/s on 2 otherwise idle cores`,
      );
      console.log(
        `ratios: 2 replicas on PostgreSQL / cfssl ${fmt(pgr.perSecond / cf.perSecond, 2)}x; / 1 process on SQLite ${fmt(pgr.perSecond / (sq?.perSecond ?? NaN), 2)}x; SQLite / cfssl ${fmt((sq?.perSecond ?? NaN) / cf.perSecond, 2)}x; server CPU per renewal PostgreSQL / SQLite ${fmt(pgr.serverUs / (sq?.serverUs ?? NaN), 2)}x`,
      );
    }
    console.log(
      `load average after ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    await admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

type Line = (label: string, r: Awaited<ReturnType<typeof renewals>>) => void;

type Run = Awaited<ReturnType<typeof renewals>>;

const total = (r: Run | undefined): number => (r ? r.serverUs + r.pgUs + r.clientUs : NaN);

async function sqliteRun(dir: string, line: Line): Promise<Run> {
  const sqliteData = join(dir, 'sqlite');
  init(sqliteData);
  const one = await startCaProcess({ data: sqliteData });
  const sqliteStore = openCaStore(join(sqliteData, 'ca.db'));
  try {
    const r = await renewals(join(dir, 'sq'), [one], sqliteStore);
    line('1 process, SQLite      ', r);
    return r;
  } finally {
    await sqliteStore.close();
    await one.stop();
  }
}

async function pgRun(dir: string, dbName: string, line: Line): Promise<Run> {
  // Two replicas, one PostgreSQL database.
  await admin(`CREATE DATABASE ${dbName}`);
  const url = `postgres://${ADMIN.user}@${ADMIN.host}:${ADMIN.port}/${dbName}`;
  const a = join(dir, 'pg-a');
  init(a, url);
  cpSync(a, join(dir, 'pg-b'), { recursive: true });
  const replicas = [
    await startCaProcess({ data: a, args: ['--store', url] }),
    await startCaProcess({ data: join(dir, 'pg-b'), args: ['--store', url] }),
  ];
  const pgStore = await openPostgresCaStore(url);
  try {
    const r = await renewals(join(dir, 'pg'), replicas, pgStore, dbName);
    line('2 replicas, PostgreSQL ', r);
    const chain = await verifyAuditChain(pgStore.auditRecords());
    console.log(
      `PostgreSQL audit chain after the run: ${chain.ok ? `verifies, ${chain.count} records` : 'BROKEN'}`,
    );
    return r;
  } finally {
    await pgStore.close();
    for (const r of replicas) await r.stop();
  }
}

await main();
