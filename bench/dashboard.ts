// Benchmark of the analysts' dashboard at scale: a real SIEM data folder
// seeded through the stores' own code (events, correlator alerts, response-engine decisions, the
// inventory projection), then `edgeward siem serve --dashboard` in a child process, a logged-in
// analyst timing every page's API over HTTPS, and the live alert feed driven through the real
// ingest at ~100 alerts/s while the pages are timed again.
// Run: npm run build && node dist/bench/dashboard.js [--quick] [--devices N] [--events N]
//        [--calls N] [--live-seconds S] [--rate ALERTS_PER_S] [--agents N] [--work DIR]
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createSecureContext } from 'node:tls';
import { DecisionStreamClient, SseParser, DecisionStore, jwsDecisionVerifier } from '../client/index.js';
import { systemClock } from '../common/clock.js';
import type { DecisionScope } from '../common/decisions.js';
import { createEventIdFactory, stampEvent, validateEvent, type EdgeEvent } from '../common/events.js';
import type { LoadedIdentity } from '../common/identity-dir.js';
import { serviceId } from '../common/identity.js';
import { silentLogger } from '../common/log.js';
import { loadRules } from '../policies/rules/index.js';
import { Correlator, type Alert } from '../siem/correlate/index.js';
import {
  defaultPolicyDir,
  runSiemCommand,
  openDashboardDb,
  DashboardUsers,
  Inventory,
  sqliteUserStore,
} from '../siem/index.js';
import { verifySiemChain } from '../common/siem-key.js';
import { ResponseEngine } from '../siem/playbooks/index.js';
import { loadPlaybooks } from '../policies/index.js';
import { openSqliteStoreSync, type SqliteStoreSync } from '../siem/store/index.js';
import { fmt, percentile, startBenchCa, startSiemChild, tokenFileIn, type BenchCa } from './lib.js';

const TD = 'bench.example';
const DAY = 86_400_000;
const TARGET_MS = 1000;

// ---- the SIEM child process (this same file: `edgeward siem serve` as the CLI wires it) ----
if (process.argv[2] === 'siem-child') {
  process.exitCode = await runSiemCommand(process.argv.slice(3), (s) => process.stdout.write(s + '\n'));
}

interface Options {
  devices: number;
  events: number;
  calls: number;
  liveSeconds: number;
  rate: number;
  agents: number;
  work: string | undefined;
  /** Writes a CPU profile of the SIEM child process into this folder (node --cpu-prof). */
  profile: string | undefined;
}

function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const o: Options = {
    devices: quick ? 2000 : 10_000,
    events: quick ? 100_000 : 1_000_000,
    calls: quick ? 10 : 30,
    liveSeconds: quick ? 10 : 30,
    rate: 100,
    agents: quick ? 5 : 20,
    work: undefined,
    profile: undefined,
  };
  const num = (flag: string, min: number, max: number): number | undefined => {
    const i = argv.indexOf(flag);
    if (i < 0) return undefined;
    const v = Number(argv[i + 1]);
    if (!Number.isInteger(v) || v < min || v > max)
      throw new Error(`${flag} takes a whole number ${min}..${max}`);
    return v;
  };
  o.devices = num('--devices', 100, 1_000_000) ?? o.devices;
  o.events = num('--events', 10_000, 50_000_000) ?? o.events;
  o.calls = num('--calls', 1, 1000) ?? o.calls;
  o.liveSeconds = num('--live-seconds', 1, 600) ?? o.liveSeconds;
  o.rate = num('--rate', 1, 10_000) ?? o.rate;
  o.agents = num('--agents', 1, 500) ?? o.agents;
  const w = argv.indexOf('--work');
  if (w >= 0) o.work = argv[w + 1];
  const p = argv.indexOf('--profile');
  if (p >= 0) o.profile = argv[p + 1];
  return o;
}

// ---------------------------------------------------------------------------------------------
// Seeding: a week of a mesh's events, in time order, through the SIEM's own store, correlator,
// response engine and the dashboard's inventory projection.
// ---------------------------------------------------------------------------------------------

const pad = (n: number, w: number): string => String(n).padStart(w, '0');
export const nodeId = (i: number): string => `spiffe://${TD}/node/n${pad(i, 4)}`;
export const deviceId = (i: number): string => `spiffe://${TD}/device/d${pad(i, 5)}`;
const serialOf = (k: number, gen: number): string => ((k + 1) * 4096 + (gen % 4096)).toString(16);
const spkiOf = (k: number): string => (k + 1).toString(16).padStart(64, '0');
const deviceIp = (k: number): string => `10.${1 + ((k >> 8) & 127)}.${k & 255}.7`;
const METHODS = ['tpm', 'tpm', 'puf', 'token'] as const;

type Raw = Record<string, string | number>;

interface SeedShape {
  readonly nodes: number;
  readonly devices: number;
  readonly events: number;
  readonly tStart: number;
  readonly tEnd: number;
}

/** Attack bursts per million events; each makes (about) one alert of its rule. */
const ATTACKS = [
  { kind: 'scan', perMillion: 1500 },
  { kind: 'attestation', perMillion: 300 },
  { kind: 'pcr', perMillion: 100 },
  { kind: 'lateral', perMillion: 300 },
  { kind: 'denials', perMillion: 400 },
  { kind: 'clone', perMillion: 100 },
  { kind: 'revocation', perMillion: 60 },
] as const;

/**
 * A deterministic, time-ordered event stream: enrollments of every identity first, then device to
 * node connections (one node takes 15 % of them, one device 2 %: the busy entities), closes,
 * renewals with daily serials, scattered handshake failures and denials, node to node traffic,
 * and attack bursts for every default rule. Calls `emit` with batches of about `batch` events.
 */
function generateSeed(s: SeedShape, batch: number, emit: (events: Raw[]) => void): void {
  let st = 0x2545f491;
  const rnd = (): number => {
    st ^= st << 13;
    st >>>= 0;
    st ^= st >>> 17;
    st ^= st << 5;
    st >>>= 0;
    return st / 0x100000000;
  };
  const pick = (n: number): number => Math.floor(rnd() * n);
  const ids = s.nodes + s.devices;
  const identity = (k: number): string => (k < s.nodes ? nodeId(k) : deviceId(k - s.nodes));
  const span = s.tEnd - s.tStart;
  let out: Raw[] = [];
  let count = 0;
  const push = (e: Raw): void => {
    out.push(e);
    count++;
    if (out.length >= batch) {
      emit(out);
      out = [];
    }
  };
  const tsNow = (): number => s.tStart + Math.floor((count * span) / s.events);
  const gen = (t: number): number => Math.floor((t - s.tStart) / DAY);
  const dev = (): number => {
    const r = rnd();
    return r < 0.02 ? s.nodes : s.nodes + pick(s.devices); // device 0 is the busy one
  };
  const homeNode = (k: number): number => (rnd() < 0.15 ? 0 : k % s.nodes); // node 0 is busy
  const conn = (t: number, k: number, node: number, action: string, extra: Raw = {}): Raw => ({
    '@timestamp': t,
    'event.kind': 'event',
    'event.category': 'network',
    'event.action': action,
    'event.outcome': action === 'connection.denied' ? 'failure' : 'success',
    'network.direction': 'inbound',
    'source.identity': identity(k),
    'destination.identity': nodeId(node),
    'source.ip': deviceIp(k),
    'source.port': 1024 + pick(60_000),
    'tls.version': '1.3',
    'tls.client.x509.serial_number': serialOf(k, gen(t)),
    'tls.client.x509.spki_sha256': spkiOf(k),
    _observer: nodeId(node),
    ...extra,
  });
  const ca = (t: number, k: number, action: string, extra: Raw = {}): Raw => ({
    '@timestamp': t,
    'event.kind': 'event',
    'event.category': 'iam',
    'event.action': action,
    'event.outcome': action.endsWith('failure') ? 'failure' : 'success',
    'source.identity': identity(k),
    'source.ip': deviceIp(k),
    'attestation.method': METHODS[k % METHODS.length] as string,
    _observer: serviceId(TD, 'ca'),
    ...extra,
  });
  const issued = (t: number, k: number, action: string): Raw =>
    ca(t, k, action, {
      'tls.client.x509.serial_number': serialOf(k, gen(t)),
      'tls.client.x509.spki_sha256': spkiOf(k),
      'tls.client.x509.not_after': t + DAY + 3_600_000,
    });

  // Every identity enrolls at the start of the week.
  for (let k = 0; k < ids && count < s.events; k++) push(issued(tsNow(), k, 'enroll.success'));

  const attackEvents = 22 * 1500 + 3 * 300 + 2 * 100 + 6 * 300 + 11 * 400 + 2 * 100 + 60;
  const scale = s.events / 1e6;
  const attackTotal = ATTACKS.reduce((a, x) => a + x.perMillion, 0);
  const pAttack = (attackTotal * scale) / Math.max(1, s.events - ids - attackEvents * scale);
  const scanners = Math.max(50, Math.round(2000 * scale));
  while (count < s.events) {
    const t = tsNow();
    if (rnd() < pAttack) {
      let r = rnd() * attackTotal;
      const a = ATTACKS.find((x) => (r -= x.perMillion) < 0) ?? ATTACKS[0];
      const k = s.nodes + pick(s.devices);
      switch (a.kind) {
        case 'scan': {
          const ip = `198.18.${pick(scanners) >> 8}.${pick(256)}`;
          const node = pick(s.nodes);
          for (let j = 0; j < 22; j++)
            push({
              '@timestamp': t + j * 10,
              'event.action': 'handshake.failure',
              'event.outcome': 'failure',
              'event.reason': 'unknown_ca',
              'source.ip': ip,
              'user_agent.original': 'zgrab/0.x',
              _observer: nodeId(node),
            });
          break;
        }
        case 'attestation':
          for (let j = 0; j < 3; j++)
            push(ca(t + j * 10, k, 'attestation.failure', { 'attestation.reason': 'quote_invalid' }));
          break;
        case 'pcr':
          push(
            ca(t, k, 'attestation.failure', {
              'attestation.method': 'tpm',
              'attestation.reason': 'pcr_mismatch',
            }),
          );
          push(issued(t + 10, k, 'renewal.success'));
          break;
        case 'lateral':
          for (let j = 0; j < 6; j++) push(conn(t + j * 10, k, (k + j * 7) % s.nodes, 'connection.denied'));
          break;
        case 'denials': {
          const node = pick(s.nodes);
          for (let j = 0; j < 11; j++)
            push(conn(t + j * 10, k, node, 'connection.denied', { 'rule.id': 'default-deny' }));
          break;
        }
        case 'clone':
          push(conn(t, k, homeNode(k), 'connection.accepted'));
          push(
            conn(t + 10, k, pick(s.nodes), 'connection.accepted', {
              'source.ip': `100.64.${pick(256)}.${pick(256)}`,
            }),
          );
          break;
        case 'revocation':
          push(ca(t, k, 'revocation', { 'tls.client.x509.serial_number': serialOf(k, gen(t)) }));
          break;
      }
      continue;
    }
    const r = rnd();
    if (r < 0.66) {
      const k = dev();
      push(conn(t, k, homeNode(k), 'connection.accepted'));
    } else if (r < 0.76) {
      const k = dev();
      push(conn(t, k, homeNode(k), 'connection.closed'));
    } else if (r < 0.82) push(issued(t, pick(ids), 'renewal.success'));
    else if (r < 0.85)
      push({
        '@timestamp': t,
        'event.action': 'handshake.failure',
        'event.outcome': 'failure',
        'event.reason': rnd() < 0.5 ? 'certificate_expired' : 'unknown_ca',
        'source.ip': `203.0.${pick(256)}.${pick(256)}`,
        _observer: nodeId(pick(s.nodes)),
      });
    else if (r < 0.86) {
      const k = dev();
      push(conn(t, k, pick(s.nodes), 'connection.denied', { 'rule.id': 'default-deny' }));
    } else if (r < 0.87) push(ca(t, s.nodes + pick(s.devices), 'attestation.success'));
    else if (r < 0.872)
      push(
        ca(t, s.nodes + pick(s.devices), 'attestation.failure', { 'attestation.reason': 'nonce_mismatch' }),
      );
    else {
      // Node to node traffic (edge services calling each other).
      const a = pick(s.nodes);
      push(conn(t, a, (a + 1 + pick(5)) % s.nodes, 'connection.accepted'));
    }
  }
  if (out.length > 0) emit(out);
}

interface SeedInfo {
  readonly devices: number;
  readonly nodes: number;
  readonly events: number;
  readonly alerts: number;
  readonly alertsByRule: Record<string, number>;
  readonly decisionsAutomatic: number;
  readonly decisionsManual: number;
  readonly pending: number;
  readonly inventoryRows: number;
  readonly revoked: number;
  readonly seconds: { total: number; generate: number; store: number; inventory: number; correlate: number };
  readonly dbMiB: number;
  readonly busyNode: string;
  readonly busyDevice: string;
  readonly quietDevice: string;
  readonly serialSample: string;
  readonly password: string;
}

/** Persists an engine change the way the decision hub does (siem/service/hub.ts change()). */
function persistChange(
  store: SqliteStoreSync,
  engine: ResponseEngine,
  before: number,
  pendingBefore: number,
  now: number,
): void {
  if (engine.revision === before) {
    if (engine.pending().length !== pendingBefore)
      store.saveDecisionChanges({
        revision: before,
        upserts: [],
        removals: [],
        at: now,
        pending: engine.pending(),
      });
    return;
  }
  const d = engine.deltaSince(before, now);
  if (d.kind !== 'delta') throw new Error('engine lost its change log');
  store.saveDecisionChanges({
    revision: engine.revision,
    upserts: d.delta.upserts,
    removals: d.delta.removals,
    at: now,
    pending: engine.pending(),
  });
}

async function seed(dir: string, o: Options): Promise<SeedInfo> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const nodes = Math.max(10, Math.round(o.devices / 50));
  const shape: SeedShape = {
    nodes,
    devices: o.devices - nodes,
    events: o.events,
    tEnd: Date.now() - 10 * 60_000,
    tStart: Date.now() - 10 * 60_000 - 7 * DAY,
  };
  // The SQLite adapter's synchronous face: the seed is written as fast as the files take it.
  const store = openSqliteStoreSync(join(dir, 'siem.db'), { synchronous: 'NORMAL' });
  const dashDb = openDashboardDb(dir);
  const inventory = new Inventory(dashDb);
  const correlator = new Correlator(await loadRules(defaultPolicyDir('rules')));
  const engine = new ResponseEngine({
    trustDomain: TD,
    config: await loadPlaybooks(defaultPolicyDir('playbooks')),
  });
  const newId = createEventIdFactory(randomBytes);
  const secs = { total: 0, generate: 0, store: 0, inventory: 0, correlate: 0 };
  const alertsByRule: Record<string, number> = {};
  let alerts = 0;
  let decisions = 0;
  let done = 0;
  const t0 = performance.now();
  let tg = performance.now();
  generateSeed(shape, 5000, (raw) => {
    const events: EdgeEvent[] = raw.map((r) => {
      const { _observer, ...fields } = r;
      const v = validateEvent(fields);
      return stampEvent(v, {
        id: newId(v['@timestamp']),
        observer: String(_observer),
        ingested: v['@timestamp'] + 40,
      });
    });
    let t = performance.now();
    secs.generate += (t - tg) / 1000;
    store.insertEvents(events);
    secs.store += (performance.now() - t) / 1000;
    t = performance.now();
    inventory.apply(events);
    secs.inventory += (performance.now() - t) / 1000;
    t = performance.now();
    const found: Alert[] = correlator.feed(events);
    if (found.length > 0) {
      store.insertAlerts(found);
      for (const a of found) alertsByRule[a.ruleId] = (alertsByRule[a.ruleId] ?? 0) + 1;
      alerts += found.length;
      const now = found.reduce((m, a) => Math.max(m, a.time), 0);
      const before = engine.revision;
      const pb = engine.pending().length;
      decisions += engine.handleAlerts(found, now).applied.length;
      persistChange(store, engine, before, pb, now);
    }
    secs.correlate += (performance.now() - t) / 1000;
    done += events.length;
    if (done % 100_000 < events.length)
      process.stderr.write(`  seeded ${done} events (${fmt((performance.now() - t0) / 1000, 0)} s)\n`);
    tg = performance.now();
  });
  // Quarantines an analyst set this week and that are still in force: devices, addresses, a node.
  let manual = 0;
  const manualScopes: DecisionScope[] = [];
  for (let i = 0; i < Math.max(10, Math.round(o.devices / 60)); i++)
    manualScopes.push({ type: 'identity', value: deviceId(shape.devices - 1 - i * 7) });
  for (let i = 0; i < 10; i++) manualScopes.push({ type: 'ip', value: `198.18.200.${i + 1}` });
  manualScopes.push({ type: 'node', value: nodeId(nodes - 1) });
  for (const scope of manualScopes) {
    const before = engine.revision;
    const pb = engine.pending().length;
    engine.createManual(
      { scope, action: 'quarantine', ttlMs: 7 * DAY, reason: 'bench: analyst quarantine' },
      shape.tEnd,
    );
    persistChange(store, engine, before, pb, shape.tEnd);
    manual++;
  }
  const inventoryRows = (dashDb.prepare('SELECT count(*) AS n FROM inventory').get() as { n: number }).n;
  const revoked = (
    dashDb.prepare('SELECT count(*) AS n FROM inventory WHERE revoked = 1').get() as { n: number }
  ).n;
  const password = randomBytes(18).toString('base64url');
  await new DashboardUsers(sqliteUserStore(dashDb)).add('bench-analyst', 'analyst', password, Date.now());
  const serial = (
    dashDb.prepare(`SELECT serial FROM inventory WHERE identity = ?`).get(deviceId(42)) as { serial: string }
  ).serial;
  const pending = engine.pending().length;
  store.close();
  dashDb.close();
  secs.total = (performance.now() - t0) / 1000;
  const size = (f: string): number => (existsSync(f) ? readFileSync(f).length : 0);
  const info: SeedInfo = {
    devices: shape.devices,
    nodes,
    events: done,
    alerts,
    alertsByRule,
    decisionsAutomatic: decisions,
    decisionsManual: manual,
    pending,
    inventoryRows,
    revoked,
    seconds: secs,
    dbMiB: (size(join(dir, 'siem.db')) + size(join(dir, 'siem.db-wal'))) / 2 ** 20,
    busyNode: nodeId(0),
    busyDevice: deviceId(0),
    quietDevice: deviceId(Math.floor(shape.devices / 2) + 3),
    serialSample: serial,
    password,
  };
  writeFileSync(join(dir, 'bench-seed.json'), JSON.stringify(info));
  return info;
}

// ---------------------------------------------------------------------------------------------
// Clients: HTTPS with the SIEM's CA bundle (the dashboard presents the SIEM's URI-SAN certificate,
// so the host name check is off, as in the other benches), mTLS for agents.
// ---------------------------------------------------------------------------------------------

interface Creds {
  readonly key: string;
  readonly cert: string;
  readonly ca: string;
  readonly identity: string;
}
const credsOf = (id: LoadedIdentity): Creds => ({
  key: id.keyPem,
  cert: id.certPem,
  ca: id.bundlePem,
  identity: id.identity,
});
const noHostCheck = { checkServerIdentity: () => undefined };

interface Answer {
  readonly status: number;
  readonly ms: number;
  readonly body: Buffer;
  readonly headers: Record<string, string | string[] | undefined>;
}

function call(
  url: string,
  agent: Agent,
  o: { method?: string; body?: Buffer; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = request(
      url,
      {
        method: o.method ?? 'GET',
        agent,
        headers: {
          ...(o.body ? { 'content-type': 'application/json', 'content-length': String(o.body.length) } : {}),
          ...o.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            ms: performance.now() - t0,
            body: Buffer.concat(chunks),
            headers: res.headers,
          }),
        );
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.on('error', () =>
      resolve({ status: 0, ms: performance.now() - t0, body: Buffer.alloc(0), headers: {} }),
    );
    req.end(o.body);
  });
}

async function startSiem(
  args: string[],
  profile: string | undefined,
): Promise<{ proc: ChildProcess; url: string; dashboard: string }> {
  const { proc, found } = await startSiemChild(fileURLToPath(import.meta.url), args, {
    nodeArgs: profile === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profile],
    ready: [/listening on (https:\/\/\S+)/, /dashboard on (https:\/\/\S+)/],
    timeoutMs: 120_000,
  });
  return { proc, url: found[0] as string, dashboard: found[1] as string };
}

/** Real agents: the agent's decision stream client, its verified store; each acknowledges. */
async function startAgents(siemUrl: string, creds: readonly Creds[], dir: string) {
  const first = creds[0] as Creds;
  const chain = await call(`${siemUrl}/v1/decisions/key`, new Agent({ ...first, ...noHostCheck }));
  const key = verifySiemChain(chain.body.toString('utf8'), first.ca, TD, Date.now());
  return creds.map((c, i) => {
    const store = new DecisionStore(
      join(dir, `agent-${i}.json`),
      jwsDecisionVerifier({ publicKey: key.publicKey, trustDomain: TD, clock: systemClock, kid: key.kid }),
      TD,
    );
    const client = new DecisionStreamClient({
      url: siemUrl,
      expect: serviceId(TD, 'siem'),
      context: () => createSecureContext({ key: c.key, cert: c.cert, ca: c.ca }),
      log: silentLogger,
      revision: () => store.revision,
      maxBackoff: 1000,
      apply: async (kind, token) => {
        const r = kind === 'snapshot' ? await store.applySnapshot(token) : await store.applyDelta(token);
        return r.set.revision;
      },
    });
    client.start();
    return { client, store };
  });
}

// ---------------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------------

interface Page {
  readonly name: string;
  readonly path: string;
}

interface PageRow {
  readonly name: string;
  readonly path: string;
  readonly calls: number;
  readonly errors: number;
  readonly p50ms: number;
  readonly p99ms: number;
  readonly maxms: number;
  readonly kib: number;
  readonly under1s: boolean;
}

function pagesOf(seedInfo: SeedInfo, before: number | undefined): Page[] {
  const inv = (qs: string): string => `/api/inventory?${qs}`;
  const total = seedInfo.inventoryRows;
  const deep = Math.max(0, Math.floor((total - 60) / 50) * 50);
  return [
    { name: 'alerts (newest 100)', path: '/api/alerts?limit=100' },
    ...(before !== undefined
      ? [{ name: 'alerts (older page)', path: `/api/alerts?limit=100&before=${before}` }]
      : []),
    { name: 'inventory first page', path: inv('limit=50&offset=0') },
    { name: `inventory deep page (offset ${deep})`, path: inv(`limit=50&offset=${deep}`) },
    { name: 'inventory search (substring)', path: inv('q=d0042&limit=50') },
    { name: 'inventory search (serial)', path: inv(`q=${seedInfo.serialSample}&limit=50`) },
    { name: 'inventory search (no match)', path: inv('q=zz-no-such-thing&limit=50') },
    { name: 'inventory status=healthy', path: inv('status=healthy&limit=50') },
    {
      name: 'inventory status=healthy deep',
      path: inv(`status=healthy&limit=50&offset=${Math.floor(deep / 2)}`),
    },
    { name: 'inventory status=quarantined', path: inv('status=quarantined&limit=50') },
    { name: 'inventory status=revoked', path: inv('status=revoked&limit=50') },
    { name: 'inventory kind=node', path: inv('kind=node&limit=50') },
    { name: 'inventory kind=device deep', path: inv(`kind=device&limit=50&offset=${Math.floor(deep / 2)}`) },
    {
      name: 'entity: busy node (timeline+peers)',
      path: `/api/entity?id=${encodeURIComponent(seedInfo.busyNode)}`,
    },
    { name: 'entity: busy device', path: `/api/entity?id=${encodeURIComponent(seedInfo.busyDevice)}` },
    { name: 'entity: quiet device', path: `/api/entity?id=${encodeURIComponent(seedInfo.quietDevice)}` },
    { name: 'decisions (with agent acks)', path: '/api/decisions' },
    { name: 'graph', path: '/api/graph' },
    { name: 'charts (events/s, alerts by rule)', path: '/api/charts' },
  ];
}

async function timePages(
  base: string,
  agent: Agent,
  cookie: string,
  pages: readonly Page[],
  calls: number,
  stop?: () => boolean,
) {
  const lat = new Map<string, number[]>(pages.map((p) => [p.path, []]));
  const errors = new Map<string, number>(pages.map((p) => [p.path, 0]));
  const size = new Map<string, number>();
  for (let round = 0; round < calls && !(stop?.() ?? false); round++) {
    for (const p of pages) {
      const r = await call(`${base}${p.path}`, agent, { headers: { cookie } });
      if (r.status !== 200) errors.set(p.path, (errors.get(p.path) ?? 0) + 1);
      else (lat.get(p.path) as number[]).push(r.ms);
      size.set(p.path, r.body.length);
    }
  }
  return pages.map((p): PageRow => {
    const l = (lat.get(p.path) as number[]).sort((a, b) => a - b);
    const max = l[l.length - 1] ?? NaN;
    return {
      name: p.name,
      path: p.path,
      calls: l.length,
      errors: errors.get(p.path) ?? 0,
      p50ms: percentile(l, 50),
      p99ms: percentile(l, 99),
      maxms: max,
      kib: (size.get(p.path) ?? 0) / 1024,
      under1s: (errors.get(p.path) ?? 0) === 0 && max < TARGET_MS,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Traffic: background events and attack groups through POST /v1/events (mTLS, as agents do)
// ---------------------------------------------------------------------------------------------

function backgroundEvents(n: number, devices: number, nodes: number, now: number, salt: number): Raw[] {
  const out: Raw[] = [];
  for (let i = 0; i < n; i++) {
    const k = (salt * 7919 + i * 104_729) % devices;
    // Always the device's home node: a device reaching many peers would be lateral movement.
    const node = (k * 31) % nodes;
    out.push({
      '@timestamp': now - (i % 50),
      'event.action': i % 10 === 9 ? 'connection.closed' : 'connection.accepted',
      'event.outcome': 'success',
      'source.identity': deviceId(k),
      'destination.identity': nodeId(node),
      'source.ip': deviceIp(nodes + k),
      'tls.client.x509.serial_number': serialOf(nodes + k, 7),
    });
  }
  return out;
}

async function postEvents(siemUrl: string, agent: Agent, events: Raw[]): Promise<Answer> {
  return call(`${siemUrl}/v1/events`, agent, { method: 'POST', body: Buffer.from(JSON.stringify(events)) });
}

/** Warm traffic for the graph and the charts (they aggregate live events, see dashboard-api.ts). */
async function warm(
  siemUrl: string,
  agents: readonly Agent[],
  info: SeedInfo,
  seconds: number,
  perSecond: number,
) {
  const end = performance.now() + seconds * 1000;
  let i = 0;
  let sent = 0;
  while (performance.now() < end) {
    const t = performance.now();
    const batch = backgroundEvents(Math.round(perSecond / 5), info.devices, info.nodes, Date.now(), i);
    const r = await postEvents(siemUrl, agents[i % agents.length] as Agent, batch);
    if (r.status === 200) sent += batch.length;
    i++;
    const wait = 200 - (performance.now() - t);
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
  }
  return sent;
}

interface LiveResult {
  readonly seconds: number;
  readonly targetAlertsPerSecond: number;
  readonly groupsSent: number;
  readonly eventsSent: number;
  readonly ingestErrors: number;
  readonly received: number;
  readonly receivedPerSecond: number;
  readonly unexpected: number;
  readonly missing: number;
  readonly duplicates: number;
  readonly p50ms: number;
  readonly p99ms: number;
  readonly maxms: number;
  readonly ingestP99ms: number;
  readonly sseConnected: boolean;
  readonly sseClosedEarly: boolean;
  readonly pages: PageRow[];
  readonly clientLoopDelayP99ms: number;
}

/**
 * ~`rate` alerts/s for `seconds`: every 100 ms one batch with rate/10 attack groups (attestation
 * failures x3 -> ew-attestation-failures-repeated; 20 handshake failures from a fresh address ->
 * ew-handshake-failures-burst; 10 policy denials -> ew-policy-denials-burst) plus background
 * connections, posted by the agents' identities. An SSE client on /api/alerts/stream records when
 * each expected alert arrives; an analyst times the pages meanwhile.
 */
async function live(
  siemUrl: string,
  dashUrl: string,
  cookie: string,
  agents: readonly Agent[],
  info: SeedInfo,
  o: Options,
  pages: readonly Page[],
  agentsCa: string,
): Promise<LiveResult> {
  const sent = new Map<string, number>();
  const got = new Map<string, number>();
  let unexpected = 0;
  let duplicates = 0;
  let closedEarly = false;
  let finished = false;
  const clock = (): number => performance.timeOrigin + performance.now();
  // The feed.
  const sse = await new Promise<{ close(): void }>((resolve, reject) => {
    const req = request(`${dashUrl}/api/alerts/stream`, {
      agent: new Agent({ ca: agentsCa, ...noHostCheck }),
      headers: { cookie, accept: 'text/event-stream' },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      if (res.statusCode !== 200) return reject(new Error(`alert stream answered ${res.statusCode}`));
      res.setEncoding('utf8');
      const parser = new SseParser((e) => {
        if (e.event !== 'alert') return;
        const at = clock();
        const a = JSON.parse(e.data) as { ruleId: string; groupBy: Record<string, string> };
        const key = `${a.ruleId}|${Object.values(a.groupBy).join(',')}`;
        if (!sent.has(key)) unexpected++;
        else if (got.has(key)) duplicates++;
        else got.set(key, at);
      });
      res.on('data', (c: string) => parser.push(c));
      res.on('close', () => {
        if (!finished) closedEarly = true;
      });
      resolve({ close: () => req.destroy() });
    });
    req.end();
  });
  await new Promise((r) => setTimeout(r, 200));

  const ingestLat: number[] = [];
  let ingestErrors = 0;
  let eventsSent = 0;
  let groups = 0;
  const perTick = o.rate / 10;
  let carry = 0;
  const ticks = o.liveSeconds * 10;
  const t0 = performance.now();
  const inflight = new Set<Promise<void>>();
  let devB = info.devices - 1;
  let scan = 0;
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  // The analyst meanwhile.
  let pagesDone = false;
  const pagesRun = timePages(
    dashUrl,
    new Agent({ ca: agentsCa, ...noHostCheck, keepAlive: true, maxSockets: 1 }),
    cookie,
    pages,
    1000,
    () => pagesDone,
  );
  for (let tick = 0; tick < ticks; tick++) {
    const due = t0 + tick * 100;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const now = Date.now();
    carry += perTick;
    const n = Math.floor(carry);
    carry -= n;
    const batch: Raw[] = backgroundEvents(50, info.devices, info.nodes, now, tick + 1_000_000);
    const keys: string[] = [];
    for (let g = 0; g < n; g++) {
      const kind = groups % 10;
      groups++;
      if (kind < 7) {
        const ip = `100.${64 + ((scan >> 16) & 63)}.${(scan >> 8) & 255}.${scan & 255}`;
        scan++;
        for (let j = 0; j < 20; j++)
          batch.push({
            '@timestamp': now - 40 + j,
            'event.action': 'handshake.failure',
            'event.outcome': 'failure',
            'event.reason': 'unknown_ca',
            'source.ip': ip,
          });
        keys.push(`ew-handshake-failures-burst|${ip}`);
      } else {
        const id = deviceId(devB-- % info.devices);
        for (let j = 0; j < 10; j++)
          batch.push({
            '@timestamp': now - 20 + j,
            'event.action': 'connection.denied',
            'event.outcome': 'failure',
            'rule.id': 'default-deny',
            'source.identity': id,
            // The posting node's own denials: a node speaks of the connections it terminated.
            'destination.identity': nodeId(tick % agents.length),
          });
        keys.push(`ew-policy-denials-burst|${id}`);
      }
    }
    const at = clock();
    for (const k of keys) sent.set(k, at);
    eventsSent += batch.length;
    const p = postEvents(siemUrl, agents[tick % agents.length] as Agent, batch).then((r) => {
      if (r.status === 200) ingestLat.push(r.ms);
      else ingestErrors++;
    });
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  }
  await Promise.all(inflight);
  const seconds = (performance.now() - t0) / 1000;
  // Let the last alerts arrive.
  const until = performance.now() + 5000;
  while (got.size < sent.size && performance.now() < until) await new Promise((r) => setTimeout(r, 50));
  pagesDone = true;
  const pageRows = await pagesRun;
  finished = true;
  delay.disable();
  sse.close();
  const lat: number[] = [];
  for (const [k, t] of got) lat.push(t - (sent.get(k) as number));
  lat.sort((a, b) => a - b);
  ingestLat.sort((a, b) => a - b);
  return {
    seconds,
    targetAlertsPerSecond: o.rate,
    groupsSent: sent.size,
    eventsSent,
    ingestErrors,
    received: got.size,
    receivedPerSecond: got.size / seconds,
    unexpected,
    missing: sent.size - got.size,
    duplicates,
    p50ms: percentile(lat, 50),
    p99ms: percentile(lat, 99),
    maxms: lat[lat.length - 1] ?? NaN,
    ingestP99ms: percentile(ingestLat, 99),
    sseConnected: true,
    sseClosedEarly: closedEarly,
    pages: pageRows,
    clientLoopDelayP99ms: delay.percentile(99) / 1e6,
  };
}

// ---------------------------------------------------------------------------------------------

export async function runDashboardBench(o: Options) {
  const work = o.work ?? mkdtempSync(join(tmpdir(), 'edgeward-bench-dash-'));
  const keep = o.work !== undefined;
  mkdirSync(work, { recursive: true });
  const siemDir = join(work, 'siem');
  const caDir = join(work, 'ca');
  let ca: BenchCa | undefined;
  let siem: { proc: ChildProcess; url: string; dashboard: string } | undefined;
  const clients: { client: DecisionStreamClient }[] = [];
  try {
    // A reused work folder keeps its CA: its fingerprint is remembered beside it.
    const fpFile = join(caDir, 'bench-fingerprint');
    ca = await startBenchCa(caDir, TD, {
      rateLimits: { perIp: { rate: 100_000, burst: 100_000 }, perIdentity: { rate: 1000, burst: 1000 } },
      ...(existsSync(fpFile) ? { fingerprint: readFileSync(fpFile, 'utf8') } : {}),
    });
    const { fingerprint } = ca;
    writeFileSync(fpFile, fingerprint);
    const running = ca;

    const seedFile = join(siemDir, 'bench-seed.json');
    let info: SeedInfo;
    let seeded = false;
    if (existsSync(seedFile)) {
      info = JSON.parse(readFileSync(seedFile, 'utf8')) as SeedInfo;
      process.stderr.write(`reusing the seeded folder ${siemDir} (${info.events} events)\n`);
    } else {
      process.stderr.write(`seeding ${o.devices} identities and ${o.events} events into ${siemDir}\n`);
      info = await seed(siemDir, o);
      seeded = true;
    }

    const t0 = performance.now();
    siem = await startSiem(
      [
        '--data',
        siemDir,
        '--listen',
        '127.0.0.1:0',
        '--ca',
        running.url,
        '--fingerprint',
        fingerprint,
        '--token-file',
        tokenFileIn(work, await running.token(serviceId(TD, 'siem'))),
        '--dashboard',
        '127.0.0.1:0',
      ],
      o.profile,
    );
    const startSeconds = (performance.now() - t0) / 1000;

    // Agents: the first nodes of the inventory, enrolled for real, on the decision stream.
    const creds: Creds[] = [];
    for (let i = 0; i < o.agents; i++) {
      const id = nodeId(i);
      const out = join(work, 'agents', `n${i}-${Date.now()}`);
      creds.push(credsOf(await running.enroll(id, out)));
    }
    const agentsCa = (creds[0] as Creds).ca;
    for (const a of await startAgents(siem.url, creds, join(work, 'agents'))) clients.push(a);
    const ingestAgents = creds.map(
      (c) => new Agent({ ...c, ...noHostCheck, keepAlive: true, maxSockets: 4 }),
    );

    // Log in as the analyst (a real scrypt check) and keep the session cookie.
    const dashAgent = new Agent({ ca: agentsCa, ...noHostCheck, keepAlive: true, maxSockets: 1 });
    const login = await call(`${siem.dashboard}/api/login`, dashAgent, {
      method: 'POST',
      body: Buffer.from(JSON.stringify({ name: 'bench-analyst', password: info.password })),
    });
    if (login.status !== 200) throw new Error(`login answered ${login.status}: ${login.body.toString()}`);
    const setCookie = String(login.headers['set-cookie'] ?? '');
    const cookie = /ew_session=[^;]+/.exec(setCookie)?.[0];
    if (cookie === undefined) throw new Error('no session cookie');

    // Warm traffic so that the graph and charts have something to draw.
    const warmed = await warm(siem.url, ingestAgents, info, 10, 2000);

    const first = JSON.parse(
      (
        await call(`${siem.dashboard}/api/alerts?limit=500`, dashAgent, { headers: { cookie } })
      ).body.toString(),
    ) as { items: { time: number }[] };
    // The second page of alerts: older than the 100th newest.
    const before = first.items[Math.min(99, first.items.length - 1)]?.time;
    const pages = pagesOf(info, before);
    // One untimed pass (page cache, JIT), then the timed rounds.
    await timePages(siem.dashboard, dashAgent, cookie, pages, 1);
    const quiet = await timePages(siem.dashboard, dashAgent, cookie, pages, o.calls);
    const liveResult = await live(siem.url, siem.dashboard, cookie, ingestAgents, info, o, pages, agentsCa);
    const dec = JSON.parse(
      (await call(`${siem.dashboard}/api/decisions`, dashAgent, { headers: { cookie } })).body.toString(),
    ) as {
      revision: number;
      agents?: { revision: number | null }[];
      activeTotal?: number;
      pendingTotal?: number;
    };
    const acked = (dec.agents ?? []).filter((a) => a.revision === dec.revision).length;
    for (const a of ingestAgents) a.destroy();
    dashAgent.destroy();
    return {
      date: new Date().toISOString(),
      seeded,
      seed: { ...info, password: undefined },
      siemStartSeconds: startSeconds,
      warmEvents: warmed,
      agents: o.agents,
      agentsAckedCurrent: acked,
      revision: dec.revision,
      activeAfter: dec.activeTotal,
      pendingAfter: dec.pendingTotal,
      quiet,
      live: liveResult,
      cpus: cpus().length,
      loadAverage: loadavg(),
    };
  } finally {
    for (const c of clients) c.client.stop();
    if (siem) {
      const p = siem.proc;
      await new Promise<void>((resolve) => {
        if (p.exitCode !== null) return resolve();
        p.once('exit', () => resolve());
        p.kill('SIGTERM');
        setTimeout(() => p.kill('SIGKILL'), 20_000).unref();
      });
    }
    await ca?.close();
    if (!keep) rmSync(work, { recursive: true, force: true });
  }
}

function printRows(title: string, rows: readonly PageRow[]): void {
  console.log(`\n${title}`);
  console.log('| page | calls | p50 ms | p99 ms | max ms | KiB | < 1 s |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const r of rows)
    console.log(
      `| ${r.name} | ${r.calls}${r.errors ? ` (${r.errors} errors)` : ''} | ${fmt(r.p50ms)} | ${fmt(r.p99ms)} | ${fmt(r.maxms)} | ${fmt(r.kib)} | ${r.under1s ? 'yes' : '**no**'} |`,
    );
}

if (
  process.argv[2] !== 'siem-child' &&
  process.argv[1] !== undefined &&
  fileURLToPath(import.meta.url) === process.argv[1]
) {
  const o = parseArgs(process.argv.slice(2));
  const r = await runDashboardBench(o);
  const s = r.seed;
  console.log(
    `seed: ${s.devices} devices + ${s.nodes} nodes (${s.inventoryRows} inventory rows, ${s.revoked} revoked), ${s.events} events, ${s.alerts} alerts ${JSON.stringify(s.alertsByRule)}, ${s.decisionsAutomatic} automatic + ${s.decisionsManual} manual decisions, ${s.pending} pending; ${fmt(s.dbMiB, 0)} MiB; ${r.seeded ? `seeded in ${fmt(s.seconds.total, 1)} s (generate+validate ${fmt(s.seconds.generate, 1)}, store ${fmt(s.seconds.store, 1)}, inventory ${fmt(s.seconds.inventory, 1)}, correlate+decide ${fmt(s.seconds.correlate, 1)})` : 'reused'}`,
  );
  console.log(
    `SIEM + dashboard start on the seeded folder: ${fmt(r.siemStartSeconds, 1)} s; warm traffic ${r.warmEvents} events; ${r.agents} agents on the decision stream, ${r.agentsAckedCurrent} acknowledged revision ${r.revision}`,
  );
  printRows(`pages, quiet (${o.calls} calls each, sequential, one keep-alive HTTPS connection)`, r.quiet);
  const l = r.live;
  console.log(
    `\nlive feed: ${l.groupsSent} alerts expected in ${fmt(l.seconds, 1)} s (target ${l.targetAlertsPerSecond}/s), ${l.received} received on SSE (${fmt(l.receivedPerSecond, 1)}/s), missing ${l.missing}, duplicates ${l.duplicates}, unexpected ${l.unexpected}, stream closed early: ${l.sseClosedEarly}; event posted -> alert on SSE p50 ${fmt(l.p50ms)} ms, p99 ${fmt(l.p99ms)} ms, max ${fmt(l.maxms)} ms; ${l.eventsSent} events posted, ingest p99 ${fmt(l.ingestP99ms)} ms, ${l.ingestErrors} ingest errors; bench client loop delay p99 ${fmt(l.clientLoopDelayP99ms)} ms`,
  );
  printRows('pages during the live feed', l.pages);
  console.log(`\nafter the feed: ${r.activeAfter} active and ${r.pendingAfter} pending decisions`);
  const all = [...r.quiet, ...l.pages];
  console.log(
    `\nall pages under 1 s: ${all.every((x) => x.under1s) ? 'yes' : 'NO'}; live feed: ${l.missing === 0 && !l.sseClosedEarly ? 'no drops' : 'DROPS'}`,
  );
  console.log(JSON.stringify(r));
}
