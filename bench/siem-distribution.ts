// Benchmark of the SIEM service on loopback: HTTP ingest throughput with the default rule pack,
// and detection-to-enforcement time (events posted -> signed delta received and verified by N
// SSE subscribers) at N = 1, 100, 1,000; optionally CrowdSec's equivalent scenario on the same
// events. Run: npm run build && node dist/bench/siem-distribution.js [--quick] [--no-crowdsec]
//   [--ingest-only] [--events N] [--under-load EVENTS_PER_S] [--rounds N]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { Agent, request } from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SseParser, tokenOf } from '../client/index.js';
import { verifyDecisions } from '../common/decision-jws.js';
import type { LoadedIdentity } from '../common/identity-dir.js';
import { serviceId } from '../common/identity.js';
import { runSiemCommand, defaultPolicyDir } from '../siem/index.js';
import { verifySiemChain, type SiemDecisionKey } from '../common/siem-key.js';
import { fmt, nodeArgsFromEnv, percentile, startBenchCa, startSiemChild, tokenFileIn } from './lib.js';
import { syntheticEvents } from './siem-correlate.js';

const TD = 'bench.example';

// ---- the SIEM child process (this same file, so the bench needs no CLI wiring) ----
if (process.argv[2] === 'siem-child') {
  process.exitCode = await runSiemCommand(process.argv.slice(3), (s) => process.stdout.write(s + '\n'));
}

interface Creds {
  readonly key: string;
  readonly cert: string;
  readonly ca: string;
}

const credsOf = (id: LoadedIdentity): Creds => ({ key: id.keyPem, cert: id.certPem, ca: id.bundlePem });
const noHostCheck = { checkServerIdentity: () => undefined };

function post(url: string, agent: Agent, body: Buffer, type = 'application/json'): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { 'content-type': type, 'content-length': String(body.length) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function startSiem(args: string[]): Promise<{ proc: ChildProcess; url: string }> {
  // BENCH_SIEM_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the SIEM under load
  // (the profile is written when the SIEM exits on the bench's SIGTERM).
  const { proc, found } = await startSiemChild(fileURLToPath(import.meta.url), args, {
    nodeArgs: nodeArgsFromEnv('BENCH_SIEM_NODE_ARGS'),
    ready: [/listening on (https:\/\/\S+)/],
    timeoutMs: 60_000,
  });
  return { proc, url: found[0] as string };
}

/** One SSE subscriber: verifies every snapshot/delta like an agent, and reports decisions seen. */
class Subscriber {
  applied: number | null = null;
  readonly seen = new Map<string, { received: number; verified: number }>();
  ready = false;
  private req: ReturnType<typeof request> | null = null;

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
        minVersion: 'TLSv1.3',
        agent: false,
        headers: { accept: 'text/event-stream' },
      });
      this.req = req;
      req.on('error', reject);
      req.on('response', (res) => {
        res.setEncoding('utf8');
        let chain = Promise.resolve();
        const parser = new SseParser((e) => {
          const received = clockMs();
          if (e.event === 'ready') {
            chain = chain.then(() => {
              this.ready = true;
              resolve();
            });
            return;
          }
          if (e.event !== 'snapshot' && e.event !== 'delta') return;
          chain = chain.then(async () => {
            const doc = await verifyDecisions(tokenOf(e.data), {
              publicKey: this.key.publicKey,
              kid: this.key.kid,
              trustDomain: TD,
              lastApplied: this.applied,
              now: Date.now(),
            });
            const verified = clockMs();
            const ds = doc.kind === 'snapshot' ? doc.set.decisions : doc.delta.upserts;
            this.applied = doc.kind === 'snapshot' ? doc.set.revision : doc.delta.revision;
            for (const d of ds)
              if (!this.seen.has(d.scope.value)) this.seen.set(d.scope.value, { received, verified });
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

async function waitUntil(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

export interface DistributionRow {
  subscribers: number;
  rounds: number;
  p50ms: number;
  p99ms: number;
  maxms: number;
  /** Latency to the frame arriving at the subscriber, before its signature check. */
  receivedP99ms: number;
  missed: number;
  /** Mean time inside the SIEM from a decision change to its delta written to every subscriber. */
  siemPublishMeanMs?: number;
}

/** Wall-clock ms with sub-ms resolution, comparable across the bench's processes. */
const clockMs = (): number => performance.timeOrigin + performance.now();

/** Connects n subscribers in waves of 50, so that the handshakes do not all land at once. */
async function connectSubscribers(url: string, creds: readonly Creds[], key: SiemDecisionKey, n: number) {
  const subs: Subscriber[] = [];
  for (let i = 0; i < n; i += 50) {
    const wave = Array.from({ length: Math.min(50, n - i) }, (_, j) => {
      const s = new Subscriber(url, creds[(i + j) % creds.length] as Creds, key);
      subs.push(s);
      return s.start();
    });
    await Promise.all(wave);
  }
  return subs;
}

// ---- a subscriber child: holds its share of the simulated agents, reports when each saw an IP ----
if (process.argv[2] === 'subs-child') {
  const cfg = JSON.parse(readFileSync(process.argv[3] as string, 'utf8')) as {
    url: string;
    creds: Creds[];
    keyPem: string;
    n: number;
  };
  const key = verifySiemChain(cfg.keyPem, (cfg.creds[0] as Creds).ca, TD, Date.now());
  const subs = await connectSubscribers(cfg.url, cfg.creds, key, cfg.n);
  process.stdout.write('ready\n');
  let buf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (c: string) => {
    buf += c;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const ip = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (ip === 'quit') {
        for (const sub of subs) sub.stop();
        process.exit(0);
      }
      void waitUntil(() => subs.every((x) => x.seen.has(ip)), 10_000).then(() => {
        const v: number[] = [];
        const r: number[] = [];
        for (const x of subs) {
          const t = x.seen.get(ip);
          if (t) {
            v.push(t.verified);
            r.push(t.received);
          }
        }
        process.stdout.write(JSON.stringify({ ip, v, r, missed: subs.length - v.length }) + '\n');
      });
    }
  });
}

interface SubsChild {
  readonly proc: ChildProcess;
  readonly answers: Map<string, { v: number[]; r: number[]; missed: number }>;
}

function startSubsChild(cfgFile: string): Promise<SubsChild> {
  const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), 'subs-child', cfgFile], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  process.on('exit', () => proc.kill('SIGKILL'));
  const answers = new Map<string, { v: number[]; r: number[]; missed: number }>();
  return new Promise((resolve, reject) => {
    let buf = '';
    proc.stdout?.setEncoding('utf8');
    proc.stdout?.on('data', (c: string) => {
      buf += c;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === 'ready') resolve({ proc, answers });
        else {
          const a = JSON.parse(line) as { ip: string; v: number[]; r: number[]; missed: number };
          answers.set(a.ip, a);
        }
      }
    });
    proc.on('exit', (code) => reject(new Error(`subscriber child exited with ${code}`)));
  });
}

/**
 * Rounds of: post 20 handshake failures from a fresh address (the default rule quarantines it),
 * then wait until every subscriber verified the delta. The simulated agents run in two child
 * processes (one for a single subscriber), so their signature checks use both cores.
 */
async function distribution(
  siemUrl: string,
  node: Creds,
  subsCreds: Creds[],
  keyPem: string,
  n: number,
  rounds: number,
  ipBase: number,
  work: string,
): Promise<DistributionRow> {
  const parts = n === 1 ? [1] : [Math.ceil(n / 2), Math.floor(n / 2)];
  const children: SubsChild[] = [];
  for (const [i, m] of parts.entries()) {
    const file = join(work, `subs-${n}-${i}.json`);
    writeFileSync(file, JSON.stringify({ url: siemUrl, creds: subsCreds, keyPem, n: m }));
    children.push(await startSubsChild(file));
  }
  const agent = new Agent({ ...node, ...noHostCheck, keepAlive: true, maxSockets: 1 });
  const lat: number[] = [];
  const recv: number[] = [];
  let missed = 0;
  for (let r = 0; r < rounds; r++) {
    const ip = `10.${200 + Math.floor((ipBase + r) / 250)}.${(ipBase + r) % 250}.9`;
    for (const c of children) c.proc.stdin?.write(`${ip}\n`);
    await new Promise((res) => setTimeout(res, 20));
    const now = Date.now();
    const body = Buffer.from(
      JSON.stringify(
        Array.from({ length: 20 }, (_, i) => ({
          '@timestamp': now - 20 + i,
          'event.action': 'handshake.failure',
          'source.ip': ip,
        })),
      ),
    );
    const t0 = clockMs();
    const status = await post(`${siemUrl}/v1/events`, agent, body);
    if (status !== 200) throw new Error(`ingest answered ${status}`);
    await waitUntil(() => children.every((c) => c.answers.has(ip)), 15_000);
    for (const c of children) {
      const a = c.answers.get(ip);
      if (a === undefined) {
        missed += n;
        continue;
      }
      missed += a.missed;
      for (const t of a.v) lat.push(t - t0);
      for (const t of a.r) recv.push(t - t0);
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  agent.destroy();
  for (const c of children) {
    c.proc.stdin?.write('quit\n');
    await new Promise((res) => c.proc.once('exit', res));
  }
  lat.sort((a, b) => a - b);
  recv.sort((a, b) => a - b);
  return {
    subscribers: n,
    rounds,
    p50ms: percentile(lat, 50),
    p99ms: percentile(lat, 99),
    maxms: lat[lat.length - 1] ?? NaN,
    receivedP99ms: percentile(recv, 99),
    missed,
  };
}

/** Events shifted to end just before now, so the correlator treats them as live. */
function liveEvents(n: number): Record<string, unknown>[] {
  const ev = syntheticEvents(n);
  const first = ev[0]?.['@timestamp'] as number;
  const shift = Date.now() - 120_000 - first;
  return ev.map((e) => ({ ...e, '@timestamp': (e['@timestamp'] as number) + shift }));
}

async function ingest(
  siemUrl: string,
  node: Creds,
  events: Record<string, unknown>[],
  batch: number,
  concurrency: number,
): Promise<IngestRun> {
  const bodies: Buffer[] = [];
  for (let i = 0; i < events.length; i += batch)
    bodies.push(Buffer.from(JSON.stringify(events.slice(i, i + batch))));
  const agent = new Agent({ ...node, ...noHostCheck, keepAlive: true, maxSockets: concurrency });
  let next = 0;
  let done = 0;
  let refused = 0;
  // When each acknowledged event count was reached: the rate over windows and over the last third.
  const doneAt: { t: number; n: number }[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++;
        const b = bodies[i];
        if (b === undefined) return;
        let s = await post(`${siemUrl}/v1/events`, agent, b);
        while (s === 429) {
          refused++;
          await new Promise((r) => setTimeout(r, 20));
          s = await post(`${siemUrl}/v1/events`, agent, b);
        }
        if (s !== 200) throw new Error(`ingest answered ${s}`);
        done += Math.min(batch, events.length - i * batch);
        doneAt.push({ t: performance.now(), n: done });
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  return { events: done, seconds, perSecond: done / seconds, refused, ...sustained(t0, doneAt) };
}

interface IngestRun {
  events: number;
  seconds: number;
  perSecond: number;
  refused: number;
  /** The slowest whole window of SUSTAIN_WINDOW_S seconds (events acknowledged in it / its length). */
  slowestWindowPerSecond: number;
  /** The rate over the last third of the events, when the store holds the most. */
  lastThirdPerSecond: number;
}

const SUSTAIN_WINDOW_S = 5;

/** The rate over the slowest whole window and over the last third, from the acknowledgements. */
function sustained(
  t0: number,
  doneAt: readonly { t: number; n: number }[],
): Pick<IngestRun, 'slowestWindowPerSecond' | 'lastThirdPerSecond'> {
  const total = doneAt[doneAt.length - 1]?.n ?? 0;
  const end = doneAt[doneAt.length - 1]?.t ?? t0;
  // Acknowledged by time t (the last count reached at or before t).
  const countAt = (t: number): number => {
    let lo = 0;
    let hi = doneAt.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((doneAt[mid] as { t: number }).t <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? 0 : (doneAt[lo - 1] as { n: number }).n;
  };
  let slowest = NaN;
  const w = SUSTAIN_WINDOW_S * 1000;
  for (let a = t0; a + w <= end; a += w) {
    const rate = (countAt(a + w) - countAt(a)) / SUSTAIN_WINDOW_S;
    if (!(rate >= slowest)) slowest = rate;
  }
  const third = doneAt.find((d) => d.n >= (total * 2) / 3);
  const lastThird = third === undefined ? NaN : (total - third.n) / ((end - third.t) / 1000);
  return { slowestWindowPerSecond: slowest, lastThirdPerSecond: lastThird };
}

/** Posts live events at `rate` per second (batches of 500, every 50 ms) until stopped. */
function backgroundIngest(
  siemUrl: string,
  node: Creds,
  rate: number,
): { stop(): Promise<{ perSecond: number; seconds: number }> } {
  const agent = new Agent({ ...node, ...noHostCheck, keepAlive: true, maxSockets: 4 });
  const pool = liveEvents(100_000);
  let stopped = false;
  let sent = 0;
  const t0 = performance.now();
  const loop = (async () => {
    while (!stopped) {
      // Behind schedule (the SIEM answered slowly): catch up, never more than 4 batches at once.
      const due = Math.min(4, Math.floor((((performance.now() - t0) / 1000) * rate) / 500) - sent / 500);
      const posts: Promise<number>[] = [];
      for (let k = 0; k < due; k++) {
        const at = sent % pool.length;
        const now = Date.now();
        const batch = pool.slice(at, at + 500).map((e, i) => ({ ...e, '@timestamp': now - 500 + i }));
        posts.push(post(`${siemUrl}/v1/events`, agent, Buffer.from(JSON.stringify(batch))));
        sent += 500;
      }
      await Promise.all(posts);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      agent.destroy();
      const seconds = (performance.now() - t0) / 1000;
      return { perSecond: sent / seconds, seconds };
    },
  };
}

// ---- CrowdSec (Debian 1.4.6), replaying the same events through an equivalent scenario ----

export interface CrowdsecResult {
  readonly ran: boolean;
  readonly why?: string;
  readonly events?: number;
  readonly seconds?: number;
  readonly perSecond?: number;
  readonly overflows?: number;
  readonly cpuSeconds?: number;
  readonly perCpuSecond?: number;
}

export function crowdsec(events: Record<string, unknown>[], work: string, port = 18_097): CrowdsecResult {
  if (spawnSync('crowdsec', ['-version'], { encoding: 'utf8' }).error)
    return { ran: false, why: 'crowdsec is not installed (apt-get install crowdsec)' };
  const dir = join(work, 'crowdsec');
  mkdirSync(join(dir, 'parsers', 's00-raw'), { recursive: true });
  mkdirSync(join(dir, 'scenarios'), { recursive: true });
  mkdirSync(join(dir, 'data'), { recursive: true });
  // One line per event, the fields the scenario needs, in a fixed order grok can read.
  const lines = events.map(
    (e) =>
      `${new Date(e['@timestamp'] as number).toISOString()} ${String(e['event.action'])} ${typeof e['source.ip'] === 'string' ? e['source.ip'] : '-'}`,
  );
  writeFileSync(join(dir, 'events.log'), lines.join('\n') + '\n');
  writeFileSync(
    join(dir, 'parsers', 's00-raw', 'edgeward.yaml'),
    `name: edgeward/events
description: edgeward events as "ISO-TIME ACTION SOURCE-IP" lines
filter: "evt.Line.Labels.type == 'edgeward'"
onsuccess: next_stage
grok:
  pattern: '^%{TIMESTAMP_ISO8601:ts} %{NOTSPACE:action} %{NOTSPACE:src}$'
  apply_on: Line.Raw
statics:
  - meta: log_type
    value: edgeward
  - meta: source_ip
    expression: evt.Parsed.src
  - meta: action
    expression: evt.Parsed.action
  - target: evt.StrTime
    expression: evt.Parsed.ts
  - target: evt.MarshaledTime
    expression: evt.Parsed.ts
`,
  );
  // The same threshold as ew-handshake-failures-burst: 20 failures from one address per minute.
  writeFileSync(
    join(dir, 'scenarios', 'handshake-burst.yaml'),
    `type: leaky
name: edgeward/handshake-failures-burst
description: twenty failed TLS handshakes from one address within a minute
filter: "evt.Meta.log_type == 'edgeward' && evt.Meta.action == 'handshake.failure'"
groupby: evt.Meta.source_ip
capacity: 19
leakspeed: 3s
blackhole: 5m
labels:
  type: scan
`,
  );
  const patterns = '/etc/crowdsec/patterns';
  if (!existsSync(patterns)) return { ran: false, why: `${patterns} missing (crowdsec package incomplete)` };
  // 1.4.6 reads grok patterns from CONFIG_DIR/patterns.
  symlinkSync(patterns, join(dir, 'patterns'));
  writeFileSync(
    join(dir, 'config.yaml'),
    `common:
  daemonize: false
  log_media: stdout
  log_level: info
config_paths:
  config_dir: ${dir}/
  data_dir: ${dir}/data/
  simulation_path: ${dir}/simulation.yaml
  hub_dir: ${dir}/hub/
  index_path: ${dir}/hub/.index.json
crowdsec_service:
  acquisition_path: ${dir}/acquis.yaml
  parser_routines: 2
  buckets_routines: 2
  output_routines: 1
db_config:
  type: sqlite
  db_path: ${dir}/data/crowdsec.db
api:
  client:
    credentials_path: ${dir}/local_api_credentials.yaml
  server:
    listen_uri: 127.0.0.1:${port}
    profiles_path: ${dir}/profiles.yaml
prometheus:
  enabled: false
`,
  );
  // A local API in this process (alerts land in its SQLite), and a machine account for the agent.
  writeFileSync(
    join(dir, 'profiles.yaml'),
    `name: default_ip_remediation
filters:
  - Alert.Remediation == true && Alert.GetScope() == "Ip"
decisions:
  - type: ban
    duration: 4h
on_success: break
`,
  );
  const add = spawnSync(
    'cscli',
    [
      '-c',
      join(dir, 'config.yaml'),
      'machines',
      'add',
      'bench',
      '--auto',
      '-f',
      join(dir, 'local_api_credentials.yaml'),
      '--force',
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  if (add.status !== 0)
    return { ran: false, why: `cscli machines add failed: ${add.stdout}${add.stderr}`.slice(0, 600) };
  writeFileSync(join(dir, 'simulation.yaml'), 'simulation: false\n');
  writeFileSync(join(dir, 'acquis.yaml'), '');
  mkdirSync(join(dir, 'hub'), { recursive: true });
  writeFileSync(
    join(dir, 'hub', '.index.json'),
    JSON.stringify({ parsers: {}, scenarios: {}, postoverflows: {}, collections: {} }),
  );
  const t0 = performance.now();
  // bash's `time` reports crowdsec's CPU seconds (user, system) on the last stderr line.
  const r = spawnSync(
    'bash',
    [
      '-c',
      'TIMEFORMAT="cpu %U %S"; time crowdsec -c "$1" -dsn "file://$2" -type edgeward',
      'bash',
      join(dir, 'config.yaml'),
      join(dir, 'events.log'),
    ],
    { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 * 1024 * 1024 },
  );
  const seconds = (performance.now() - t0) / 1000;
  const out = `${r.stdout}${r.stderr}`;
  if (r.error || r.status !== 0)
    return {
      ran: false,
      why: `crowdsec failed (${r.error?.message ?? `exit ${r.status}`}): ${out.slice(-600)}`,
    };
  const overflows = (out.match(/performed 'edgeward\/handshake-failures-burst'/g) ?? []).length;
  const cpu = /cpu ([\d.]+) ([\d.]+)/.exec(r.stderr);
  const cpuSecondsUsed = cpu ? Number(cpu[1]) + Number(cpu[2]) : NaN;
  return {
    ran: true,
    events: events.length,
    seconds,
    perSecond: events.length / seconds,
    cpuSeconds: cpuSecondsUsed,
    perCpuSecond: events.length / cpuSecondsUsed,
    overflows,
  };
}

/** The value of one series (name and labels as /metrics prints them), or `absent`. */
function metricValue(metrics: string, series: string, absent = NaN): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? absent : Number(line.slice(series.length + 1));
}

function publishStats(metrics: string): { sum: number; count: number } {
  return {
    sum: metricValue(metrics, 'edgeward_siem_publish_seconds_sum', 0),
    count: metricValue(metrics, 'edgeward_siem_publish_seconds_count', 0),
  };
}

/** user+system CPU seconds of each thread of a process that used any (Linux /proc), busiest first. */
function threadCpuSeconds(pid: number | undefined): { name: string; seconds: number }[] {
  if (pid === undefined) return [];
  const out: { name: string; seconds: number }[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = f.slice(f.indexOf('(') + 1, f.lastIndexOf(')'));
      const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
      const seconds = (Number(rest[11]) + Number(rest[12])) / 100;
      // The main thread's id is the process id; the others are the writer, libuv's and V8's.
      if (seconds > 0) out.push({ name: tid === String(pid) ? 'event-loop' : `${name}/${tid}`, seconds });
    }
  } catch {
    return out;
  }
  return out.sort((x, y) => y.seconds - x.seconds);
}

/** user+system CPU seconds of a process (Linux /proc; clock ticks are 100 Hz there). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return NaN;
  }
}

function get(url: string, c: Creds): Promise<string> {
  return new Promise((resolve, reject) => {
    request(url, { ...c, ...noHostCheck }, (res) => {
      let s = '';
      res.on('data', (x: Buffer) => (s += x.toString()));
      res.on('end', () => resolve(s));
    })
      .on('error', reject)
      .end();
  });
}

export async function runDistributionBench(o: {
  quick: boolean;
  crowdsec: boolean;
  ingestOnly?: boolean;
  /** Events to ingest (default 500,000; 100,000 with quick). */
  events?: number;
  /**
   * Background ingest (events/s) while the detection-to-enforcement rounds run, at 1 and 100
   * subscribers: how fast decisions go out while the SIEM is busy storing events.
   */
  underLoad?: number;
  /** Detection-to-enforcement rounds per subscriber count (default 20; 10 at 1,000, halved with quick). */
  rounds?: number;
}) {
  const work = mkdtempSync(join(tmpdir(), 'edgeward-bench-siem-'));
  try {
    const caDir = join(work, 'ca');
    const ca = await startBenchCa(caDir, TD, {
      rateLimits: { perIp: { rate: 100_000, burst: 100_000 }, perIdentity: { rate: 1000, burst: 1000 } },
    });
    // Playbooks as shipped, but without the blast-radius caps (every round makes a new decision).
    const pb = join(work, 'playbooks');
    mkdirSync(pb);
    for (const f of readdirSync(defaultPolicyDir('playbooks'))) {
      const text = readFileSync(join(defaultPolicyDir('playbooks'), f), 'utf8');
      writeFileSync(
        join(pb, f),
        text
          .replace(/max-per-minute: \d+/g, 'max-per-minute: 100000')
          .replace(/per-reporter: \d+/g, 'per-reporter: 99999'),
      );
    }
    // One node posts every synthetic event (about every node's connections): a reporter policy
    // that lets it, with budgets that never bind, so every event is checked and stored as before.
    const reporterPolicy = join(work, 'reporter-policy.yaml');
    writeFileSync(
      reporterPolicy,
      [
        'kind: reporter-policy',
        'reporters:',
        '  - id: bench',
        '    kinds: [node]',
        '    actions: [connection.*, handshake.*, renewal.*, attestation.*, enroll.*]',
        '    about: anyone',
        'subscribers: [node]',
        'budgets: { events-per-second: 10000000, events-burst: 100000000, correlation-keys: 1000000, decision-streams: 1000 }',
        '',
      ].join('\n'),
    );
    const siem = await startSiem([
      '--data',
      join(work, 'siem'),
      '--listen',
      '127.0.0.1:0',
      '--ca',
      ca.url,
      '--fingerprint',
      ca.fingerprint,
      '--token-file',
      tokenFileIn(work, await ca.token(serviceId(TD, 'siem'))),
      '--playbooks',
      pb,
      '--reporter-policy',
      reporterPolicy,
    ]);
    const enrolled: Creds[] = [];
    for (let i = 0; i < 8; i++) {
      const id = `spiffe://${TD}/node/n${i}`;
      const out = join(work, `n${i}`);
      enrolled.push(credsOf(await ca.enroll(id, out)));
    }
    const node = enrolled[0] as Creds;
    const keyPem = await get(`${siem.url}/v1/decisions/key`, node);
    verifySiemChain(keyPem, node.ca, TD, Date.now()); // the chain must verify before the rounds

    const nEvents = o.events ?? (o.quick ? 100_000 : 500_000);
    const events = liveEvents(nEvents);
    const cpu0 = cpuSeconds(siem.proc.pid);
    const threads0 = new Map(threadCpuSeconds(siem.proc.pid).map((t) => [t.name, t.seconds]));
    const ingested = await ingest(siem.url, node, events, 1000, 8);
    const siemCpu = cpuSeconds(siem.proc.pid) - cpu0;
    // Per thread: the event loop, the ingest writer thread, libuv's pool, V8's GC helpers.
    const threads = threadCpuSeconds(siem.proc.pid)
      .map((t) => ({ name: t.name, seconds: t.seconds - (threads0.get(t.name) ?? 0) }))
      .filter((t) => t.seconds >= 0.05)
      .sort((x, y) => y.seconds - x.seconds);
    const metrics = await get(`${siem.url}/metrics`, node);
    const burstAlerts = metricValue(
      metrics,
      'edgeward_siem_alerts_total{rule="ew-handshake-failures-burst"}',
      0,
    );
    const commits = metricValue(metrics, 'edgeward_siem_commits_total');
    const wal = (result: string): number =>
      metricValue(metrics, `edgeward_siem_wal_checkpoints_total{result="${result}"}`);
    const ingestResult = {
      ...ingested,
      meanGroupCommit: ingested.events / commits,
      siemThreads: threads,
      siemCpuSeconds: siemCpu,
      perSiemCpuSecond: ingested.events / siemCpu,
      burstAlerts,
      walCheckpoints: { passes: wal('pass'), restarts: wal('restart'), refused: wal('refused') },
    };

    const sizes = o.ingestOnly === true ? [] : o.underLoad !== undefined ? [1, 100] : [1, 100, 1000];
    const rows: DistributionRow[] = [];
    let ipBase = 0;
    const background = o.underLoad !== undefined ? backgroundIngest(siem.url, node, o.underLoad) : undefined;
    for (const n of sizes) {
      const rounds = o.rounds ?? (n === 1000 ? (o.quick ? 5 : 10) : o.quick ? 10 : 20);
      const before = publishStats(await get(`${siem.url}/metrics`, node));
      const row = await distribution(siem.url, node, enrolled.slice(1), keyPem, n, rounds, ipBase, work);
      const after = publishStats(await get(`${siem.url}/metrics`, node));
      row.siemPublishMeanMs = ((after.sum - before.sum) / Math.max(1, after.count - before.count)) * 1000;
      rows.push(row);
      ipBase += rounds;
    }
    const load = await background?.stop();
    if (load !== undefined)
      console.log(`background ingest: ${fmt(load.perSecond, 0)} events/s over ${fmt(load.seconds, 1)} s`);
    // Wait for the SIEM's clean exit (it commits what is queued; a --cpu-prof profile is written).
    const exited = new Promise((r) => siem.proc.once('exit', r));
    siem.proc.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000).unref())]);
    await ca.close();
    const cs = o.crowdsec ? crowdsec(events, work) : { ran: false, why: 'skipped (--no-crowdsec)' };
    return {
      ingest: ingestResult,
      distribution: rows,
      crowdsec: cs,
      cpus: cpus().length,
      loadAverage: loadavg(),
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (
  process.argv[2] !== 'siem-child' &&
  process.argv[2] !== 'subs-child' &&
  process.argv[1] !== undefined &&
  fileURLToPath(import.meta.url) === process.argv[1]
) {
  const quick = process.argv.includes('--quick');
  const at = process.argv.indexOf('--events');
  const eventsArg = at > 0 ? Math.max(1000, Math.floor(Number(process.argv[at + 1]))) : undefined;
  if (eventsArg !== undefined && !Number.isFinite(eventsArg)) throw new Error('--events needs a number');
  const ul = process.argv.indexOf('--under-load');
  const underLoad = ul > 0 ? Number(process.argv[ul + 1]) : undefined;
  if (underLoad !== undefined && !(underLoad > 0)) throw new Error('--under-load needs events per second');
  const ro = process.argv.indexOf('--rounds');
  const rounds = ro > 0 ? Math.floor(Number(process.argv[ro + 1])) : undefined;
  if (rounds !== undefined && !(rounds > 0)) throw new Error('--rounds needs a positive number');
  // --ingest-only: the ingest measure alone (for profiling the SIEM under ingest load).
  const r = await runDistributionBench({
    quick,
    crowdsec: !process.argv.includes('--no-crowdsec'),
    ingestOnly: process.argv.includes('--ingest-only'),
    // --events N: a longer run shows whether the rate holds as the store grows.
    ...(eventsArg !== undefined ? { events: eventsArg } : {}),
    // --under-load RATE: the rounds at 1 and 100 subscribers with RATE events/s ingested meanwhile.
    ...(underLoad !== undefined ? { underLoad } : {}),
    // --rounds N: more rounds give a p99 that is not just the slowest of 20.
    ...(rounds !== undefined ? { rounds } : {}),
  });
  console.log(
    `ingest over HTTPS (default rule pack, FULL sync): ${fmt(r.ingest.perSecond, 0)} events/s wall, ${fmt(r.ingest.perSiemCpuSecond, 0)} events per SIEM CPU-second (${r.ingest.events} events in ${fmt(r.ingest.seconds, 2)} s, ${r.ingest.refused} 429s, ${r.ingest.burstAlerts} handshake-burst alerts, ${fmt(r.ingest.meanGroupCommit, 0)} events per group commit)`,
  );
  console.log(
    `  sustained: slowest ${SUSTAIN_WINDOW_S} s window ${fmt(r.ingest.slowestWindowPerSecond, 0)} events/s, last third of the events ${fmt(r.ingest.lastThirdPerSecond, 0)} events/s`,
  );
  const wc = r.ingest.walCheckpoints;
  console.log(`  WAL checkpoints: ${wc.passes} passes, ${wc.restarts} restarts, ${wc.refused} refused`);
  console.log(
    `  SIEM CPU by thread: ${r.ingest.siemThreads.map((t) => `${t.name} ${fmt(t.seconds, 2)} s`).join(', ')}`,
  );
  for (const row of r.distribution)
    console.log(
      `detection->enforcement, ${row.subscribers} subscribers x ${row.rounds} rounds: p50 ${fmt(row.p50ms)} ms, p99 ${fmt(row.p99ms)} ms, max ${fmt(row.maxms)} ms (received p99 ${fmt(row.receivedP99ms)} ms; inside the SIEM ${fmt(row.siemPublishMeanMs ?? NaN)} ms mean), missed ${row.missed}`,
    );
  if (r.crowdsec.ran)
    console.log(
      `crowdsec replay: ${fmt(r.crowdsec.perSecond ?? NaN, 0)} events/s wall, ${fmt(r.crowdsec.perCpuSecond ?? NaN, 0)} per CPU-second (${fmt(r.crowdsec.seconds ?? NaN, 2)} s), overflows ${r.crowdsec.overflows}; edgeward/crowdsec = ${fmt(r.ingest.perSecond / (r.crowdsec.perSecond ?? NaN), 2)} wall, ${fmt(r.ingest.perSiemCpuSecond / (r.crowdsec.perCpuSecond ?? NaN), 2)} per CPU-second`,
    );
  else console.log(`crowdsec: not run: ${r.crowdsec.why}`);
  console.log(JSON.stringify(r));
}
