// Shared pieces of the benchmarks: a bounded closed-loop load generator over keep-alive HTTPS,
// percentiles, child processes that are always cleaned up (the CA among them) and their CPU
// time, and simulated PUF devices.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest, Agent as HttpKeepAliveAgent, type Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, Agent } from 'node:https';
import { join } from 'node:path';
import {
  helperHash,
  reconstructKey,
  PROFILE_V1,
  provisionPuf,
  type PufRecordJson,
  createSimPuf,
} from '../attestation/puf/index.js';
import { createTokenProver, newJoinToken } from '../attestation/index.js';
import {
  createAuthority,
  initCa,
  startCaServer,
  type CaServerOptions,
  type CaStore,
  type RunningCa,
} from '../ca/index.js';
import { enroll } from '../client/index.js';
import { systemClock } from '../common/clock.js';
import { buildCsr } from '../common/csr.js';
import { loadIdentity, type LoadedIdentity } from '../common/identity-dir.js';
import { parseIdentity, type Identity } from '../common/identity.js';
import { silentLogger } from '../common/log.js';
import { toPem } from '../common/pem.js';
import { createPrivateFile } from '../common/private-files.js';

export interface LoadResult {
  readonly ops: number;
  readonly errors: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly p50ms: number;
  readonly p99ms: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

export interface Target {
  readonly url: string;
  /** An https.Agent for https:// URLs, an http.Agent for http:// (the peer may speak plain HTTP). */
  readonly agent: Agent | HttpAgent;
  /** Returns the body of the i-th request. */
  readonly body: (i: number) => Buffer;
  readonly ok: (status: number, body: Buffer) => boolean;
}

export interface Reply {
  readonly status: number;
  readonly body: Buffer;
}

/** One JSON POST; resolves undefined on a transport error (counted as a failed operation). */
export function post(url: string, agent: Agent | HttpAgent, body: Buffer): Promise<Reply | undefined> {
  return new Promise((resolve) => {
    const request = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', () => resolve(undefined));
      },
    );
    req.on('error', () => resolve(undefined));
    req.end(body);
  });
}

/**
 * Runs `concurrency` closed loops of `op` for `seconds`; `op(worker, i)` gets its loop's number and
 * a global sequence number, and says whether the operation succeeded (only successes are timed).
 */
export async function closedLoop(
  concurrency: number,
  seconds: number,
  op: (worker: number, i: number) => Promise<boolean>,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let i = 0;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const ok = await op(w, i++);
        if (ok) latencies.push(performance.now() - t0);
        else errors++;
      }
    }),
  );
  const took = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    ops: latencies.length,
    errors,
    seconds: took,
    perSecond: latencies.length / took,
    p50ms: percentile(latencies, 50),
    p99ms: percentile(latencies, 99),
  };
}

/** Runs `concurrency` closed loops against the targets (round-robin) for `seconds`. */
export function load(targets: readonly Target[], concurrency: number, seconds: number): Promise<LoadResult> {
  return closedLoop(concurrency, seconds, async (w, i) => {
    const t = targets[w % targets.length] as Target;
    const r = await post(t.url, t.agent, t.body(i));
    return r !== undefined && t.ok(r.status, r.body);
  });
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** Starts a process and resolves, with what it printed so far, when its output matches `ready`. */
export function startProcess(
  cmd: string,
  args: string[],
  ready: RegExp,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ proc: ChildProcess; output: string }> {
  const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(p);
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (c: Buffer): void => {
      out += c.toString();
      if (ready.test(out)) resolve({ proc: p, output: out });
    };
    p.stdout?.on('data', onData);
    p.stderr?.on('data', onData);
    p.on('error', (err) => reject(new Error(`${cmd}: ${err.message}`)));
    p.on('exit', (code) => reject(new Error(`${cmd} exited with ${code}: ${out}`)));
    setTimeout(() => reject(new Error(`${cmd} not ready after 30 s: ${out}`)), 30_000).unref();
  });
}

export function stopProcess(p: ChildProcess): Promise<void> {
  children.delete(p);
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGTERM');
  });
}

export function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}

/** The built `edgeward` command beside dist/bench. */
export const EDGEWARD = join(import.meta.dirname, '..', 'cli', 'edgeward.js');

/** A join token in a new 0600 file under `dir`, for `--token-file` (never on a command line). */
export function tokenFileIn(dir: string, token: string): string {
  const file = join(dir, `join-${process.pid}-${Date.now()}.token`);
  createPrivateFile(file, `${token}\n`);
  return file;
}

/** `edgeward ca init` into `data`; returns the root fingerprint. */
export function initCaData(data: string, trustDomain: string): string {
  const r = spawnSync(
    process.execPath,
    [EDGEWARD, 'ca', 'init', '--data', data, '--trust-domain', trustDomain],
    {
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) throw new Error(`ca init failed: ${r.stderr}`);
  return /fingerprint \(SHA-256\): ([0-9a-f]{64})/.exec(r.stdout)?.[1] ?? '';
}

/** An in-process CA for a benchmark's set-up: join tokens and token enrollments against it. */
export interface BenchCa {
  readonly url: string;
  readonly fingerprint: string;
  readonly running: RunningCa;
  /** A one-time join token for `id` (10 minutes). */
  token(id: string): Promise<string>;
  /** Enrolls `id` with a join token into the identity folder `out`. */
  enroll(id: string, out: string): Promise<LoadedIdentity>;
  close(): Promise<void>;
}

/**
 * `ca init` into `dataDir` (unless `fingerprint` says it is made already) and the CA served on a
 * free loopback port, with the given rate limits (default: the CA's own).
 */
export async function startBenchCa(
  dataDir: string,
  trustDomain: string,
  o: { rateLimits?: CaServerOptions['rateLimits']; fingerprint?: string } = {},
): Promise<BenchCa> {
  const fingerprint =
    o.fingerprint ??
    (await initCa({ dataDir, trustDomain, clock: systemClock, passphrase: undefined })).fingerprint;
  const running = await startCaServer({
    dataDir,
    host: '127.0.0.1',
    port: 0,
    log: silentLogger,
    ...(o.rateLimits ? { rateLimits: o.rateLimits } : {}),
  });
  const token = async (id: string): Promise<string> => {
    const { token: t, hash } = newJoinToken();
    const now = Date.now();
    await running.store.createToken({ hash, identity: id, createdAt: now, expiresAt: now + 600_000 }, now);
    return t;
  };
  return {
    url: running.url,
    fingerprint,
    running,
    token,
    async enroll(id, out) {
      await enroll({ ca: running.url, fingerprint, id, prover: createTokenProver(await token(id)), out });
      return loadIdentity(out);
    },
    close: () => running.close(),
  };
}

export interface CaProcess {
  readonly proc: ChildProcess;
  readonly url: string;
  readonly fingerprint: string;
  stop(): Promise<void>;
}

export interface CaProcessOptions {
  readonly data: string;
  readonly workers?: number;
  /** More `ca serve` flags, e.g. ['--attestation-policy', file]. */
  readonly args?: readonly string[];
  /** Flags for node itself, e.g. ['--cpu-prof', '--cpu-prof-dir', dir]. */
  readonly nodeArgs?: readonly string[];
}

/** Node flags for a benchmarked child process from an environment variable (space-separated). */
export function nodeArgsFromEnv(name: string): string[] {
  return process.env[name]?.split(' ').filter(Boolean) ?? [];
}

/**
 * `edgeward ca serve` on 127.0.0.1:0 as a child process (its own event loop and cores), logging
 * warnings only, with the per-IP and per-identity rate limits raised so that the load generator
 * measures the CA's work and not its throttling.
 */
export async function startCaProcess(o: CaProcessOptions): Promise<CaProcess> {
  const { proc, output } = await startProcess(
    process.execPath,
    [
      // BENCH_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the CA under load.
      ...(o.nodeArgs ?? nodeArgsFromEnv('BENCH_NODE_ARGS')),
      EDGEWARD,
      'ca',
      'serve',
      '--data',
      o.data,
      '--listen',
      '127.0.0.1:0',
      '--rate-ip',
      '1000000',
      '--rate-identity',
      '100000000',
      '--workers',
      String(o.workers ?? 1),
      ...(o.args ?? []),
    ],
    /fingerprint \(SHA-256\): [0-9a-f]{64}/,
    { ...process.env, EDGEWARD_LOG_LEVEL: 'warn' },
  );
  return {
    proc,
    url: /listening on (https:\/\/\S+)/.exec(output)?.[1] ?? '',
    fingerprint: /fingerprint \(SHA-256\): ([0-9a-f]{64})/.exec(output)?.[1] ?? '',
    stop: () => stopProcess(proc),
  };
}

let clockTicks: number | undefined;

/** Fields of /proc/PID/stat after "(comm)": [0] state, [1] ppid, [11] utime, [12] stime, [13] cutime, [14] cstime. */
function procStat(pid: number | 'self'): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // exited meanwhile
  }
}

function ticksToSeconds(ticks: number): number {
  clockTicks ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
  return ticks / clockTicks;
}

/**
 * CPU seconds (user + system, all threads) used so far by a process and its live descendants
 * (`ca serve --workers N` forks N workers), from /proc: Linux only.
 */
export function processTreeCpuSeconds(pid: number): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = procStat(Number(name));
    if (f) stats.set(Number(name), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
  }
  let ticks = 0;
  const todo = [pid];
  while (todo.length > 0) {
    const p = todo.pop() as number;
    ticks += stats.get(p)?.ticks ?? 0;
    for (const [child, s] of stats) if (s.ppid === p) todo.push(child);
  }
  return ticksToSeconds(ticks);
}

/** CPU seconds used by this process's children that have exited and been waited for (e.g. tools run by execFile). */
export function exitedChildrenCpuSeconds(): number {
  const f = procStat('self');
  return f ? ticksToSeconds(Number(f[13]) + Number(f[14])) : 0;
}

/** A simulated PUF device as the benchmarks use it: its registration record and its signing key. */
export interface BenchPufDevice {
  readonly id: Identity;
  readonly record: PufRecordJson;
  /** The Ed25519 key the device reconstructs from its PUF, as a node:crypto key (fast signing). */
  readonly key: KeyObject;
  readonly helperHash: Buffer;
}

const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * Provisions a simulated PUF (no challenge-response pairs) and reconstructs its key once, as the
 * device would at every enrollment; signing then costs the benchmark only an Ed25519 signature.
 */
export function benchPufDevice(uri: string, seed: string): BenchPufDevice {
  const id = parseIdentity(uri);
  const puf = createSimPuf({ seed, ber: 0.1, crpBits: 8 });
  const { json, record } = provisionPuf({ id: id.uri, puf, crps: 0 });
  const rec = reconstructKey(puf.readKey(), record.helper, PROFILE_V1);
  const key = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519, rec.seed]),
    format: 'der',
    type: 'pkcs8',
  });
  return { id, record: json, key, helperHash: helperHash(record.helper, PROFILE_V1) };
}

/**
 * `edgeward siem serve ARGS` in its own process, started as `node [NODE_ARGS] SCRIPT siem-child
 * serve ARGS` (the benchmark file dispatches that to the CLI), resolved with what it printed once
 * every pattern in `ready` matches; the first group of each match is returned, in order.
 */
export function startSiemChild(
  script: string,
  args: readonly string[],
  o: { readonly nodeArgs?: readonly string[]; readonly ready: readonly RegExp[]; readonly timeoutMs: number },
): Promise<{ proc: ChildProcess; found: string[] }> {
  const proc = spawn(process.execPath, [...(o.nodeArgs ?? []), script, 'siem-child', 'serve', ...args], {
    env: { ...process.env, EDGEWARD_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(proc);
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const found = o.ready.map((r) => r.exec(out)?.[1]);
      if (found.every((f) => f !== undefined)) resolve({ proc, found: found });
    });
    proc.on('exit', (code) => reject(new Error(`SIEM exited with ${code}: ${out}`)));
    setTimeout(() => reject(new Error(`SIEM not ready: ${out}`)), o.timeoutMs).unref();
  });
}

/** n PEM CSRs, each for a fresh P-256 key, the i-th for the identity id(i). */
export function csrPool(n: number, id: (i: number) => string): string[] {
  return Array.from({ length: n }, (_, i) => {
    const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return toPem('CERTIFICATE REQUEST', buildCsr(k.privateKey, k.publicKey, id(i)));
  });
}

/**
 * `id` enrolled with a join token written into `store` (the CA at `ca` reads it), into the
 * identity folder `out`; then a load target that renews it over mTLS with 8 CSRs in turn.
 */
export async function renewalTarget(
  store: CaStore,
  ca: { readonly url: string; readonly fingerprint: string },
  id: string,
  out: string,
): Promise<Target> {
  const t = newJoinToken();
  const now = Date.now();
  await store.createToken({ hash: t.hash, identity: id, createdAt: now, expiresAt: now + 600_000 }, now);
  await enroll({ ca: ca.url, fingerprint: ca.fingerprint, id, prover: createTokenProver(t.token), out });
  const me = loadIdentity(out);
  const bodies = csrPool(8, () => id).map((csr) => Buffer.from(JSON.stringify({ csr })));
  return {
    url: `${ca.url}/v1/renew`,
    agent: new Agent({
      keepAlive: true,
      maxSockets: 64,
      key: me.keyPem,
      cert: me.certPem,
      ca: me.bundlePem,
      checkServerIdentity: () => undefined,
    }),
    body: (k: number) => bodies[k % bodies.length] as Buffer,
    ok: (s: number) => s === 200,
  };
}

/** cfssl's HTTP sign endpoint (Debian golang-cfssl) under the same load generator, for same-run ratios. */
export async function cfsslSign(
  dir: string,
  td: string,
  concurrency: number,
  seconds: number,
): Promise<LoadResult & { readonly serverUs: number; readonly clientUs: number }> {
  const { authority } = createAuthority(join(dir, 'cfssl-ca'), td, Date.now(), undefined);
  void authority;
  const cfg = join(dir, 'cfssl.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      signing: { default: { expiry: '24h', usages: ['digital signature', 'server auth', 'client auth'] } },
    }),
  );
  const port = 20000 + Math.floor(Math.random() * 20000);
  // cfssl serves plain HTTP; TLS would only add to its cost, so this favours the peer.
  const { proc: server } = await startProcess(
    'cfssl',
    [
      'serve',
      '-address',
      '127.0.0.1',
      '-port',
      String(port),
      '-ca',
      join(dir, 'cfssl-ca', 'intermediate.pem'),
      '-ca-key',
      join(dir, 'cfssl-ca', 'intermediate.key'),
      '-config',
      cfg,
    ],
    /Now listening|Handler set up complete/,
  );
  try {
    const bodies = csrPool(64, (i) => `spiffe://${td}/node/c${i}`).map((csr) =>
      Buffer.from(JSON.stringify({ certificate_request: csr })),
    );
    const target = {
      url: `http://127.0.0.1:${port}/api/v1/cfssl/sign`,
      agent: new HttpKeepAliveAgent({ keepAlive: true, maxSockets: 64 }),
      body: (k: number) => bodies[k % bodies.length] as Buffer,
      ok: (s: number, b: Buffer) => s === 200 && b.includes('"success":true'),
    };
    await load([target], concurrency, 1);
    const cpu0 = processTreeCpuSeconds(server.pid ?? 0);
    const me0 = process.cpuUsage();
    const r = await load([target], concurrency, seconds);
    const me = process.cpuUsage(me0);
    return {
      ...r,
      serverUs: ((processTreeCpuSeconds(server.pid ?? 0) - cpu0) * 1e6) / r.ops,
      clientUs: (me.user + me.system) / r.ops,
    };
  } finally {
    await stopProcess(server);
  }
}

/** An mTLS client's PEM key, certificate and trust bundle, as node:https takes them. */
export interface Creds {
  readonly key: string;
  readonly cert: string;
  readonly ca: string;
}

/** The benches' servers answer on 127.0.0.1, a name their certificates need not carry. */
export const noHostCheck = { checkServerIdentity: () => undefined };

/** The credentials of an identity folder (key.pem, cert.pem, bundle.pem), e.g. the CA's admin. */
export function credsIn(dir: string): Creds {
  return {
    key: readFileSync(join(dir, 'key.pem'), 'utf8'),
    cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    ca: readFileSync(join(dir, 'bundle.pem'), 'utf8'),
  };
}

/** One mTLS request with an optional JSON body, on a connection of its own: status and body text. */
export function mtlsSend(
  url: string,
  creds: Creds,
  method: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = httpsRequest(url, {
      method,
      ...creds,
      ...noHostCheck,
      agent: false,
      headers:
        data === undefined ? {} : { 'content-type': 'application/json', 'content-length': data.length },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.end(data);
  });
}

/** A process's resident set (VmRSS, KiB), NaN when it cannot be read (gone, no pid). */
export function rssKb(pid: number | undefined): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  } catch {
    return NaN;
  }
}
