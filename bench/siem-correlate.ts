// Benchmark of the SIEM's pure cores: validation, correlation with the default rule pack alone,
// and validation + correlation + SQLite batch insert. Run: npm run build && node dist/bench/siem-correlate.js
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEventIdFactory, stampEvent, validateEvent, type EdgeEvent } from '../common/events.js';
import { loadRules, type RuleSet } from '../policies/rules/index.js';
import { Correlator } from '../siem/correlate/index.js';
import { openSqliteStoreSync } from '../siem/store/index.js';

const TD = 'factory.example';

/**
 * A deterministic, mesh-like mix at 50,000 events per second of event time: 5,000 devices each
 * talking to two home nodes, background failures spread thin, and a few attackers (scanners,
 * a device fanning out, a cloned serial) so that every rule has work to do.
 */
export function syntheticEvents(n: number, seed = 1): Record<string, unknown>[] {
  let s = seed >>> 0;
  const rnd = () => {
    // xorshift32: fast and reproducible.
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
  const t0 = Date.UTC(2026, 0, 1);
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const dev = Math.floor(rnd() * 5000);
    const node = (dev * 7 + (rnd() < 0.9 ? 0 : 1)) % 200;
    const ip = `10.${(dev >> 8) & 255}.${dev & 255}.${1 + (dev % 200)}`;
    // A little jitter: reporters' clocks and batching deliver events slightly out of order.
    const ts = t0 + Math.floor(i / 50) - (rnd() < 0.05 ? Math.floor(rnd() * 2000) : 0);
    const r = rnd();
    const base = {
      '@timestamp': ts,
      'source.identity': `spiffe://${TD}/device/d${dev}`,
      'destination.identity': `spiffe://${TD}/node/n${node}`,
      'source.ip': ip,
      'source.port': 1024 + (i % 60000),
    };
    const accepted = {
      ...base,
      'event.kind': 'event',
      'event.category': 'network',
      'event.action': 'connection.accepted',
      'event.outcome': 'success',
      'tls.client.x509.serial_number': (0x10000 + dev).toString(16),
      'tls.client.x509.spki_sha256': 'ab'.repeat(32),
    };
    if (r < 0.8) out.push(accepted);
    else if (r < 0.95)
      out.push({ ...base, 'event.action': 'connection.closed', 'event.category': 'network' });
    else if (r < 0.98) {
      const scan = `192.0.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}`;
      out.push({
        '@timestamp': ts,
        'event.action': 'handshake.failure',
        'source.ip': scan,
        'event.reason': 'unknown_ca',
      });
    } else if (r < 0.99)
      out.push({ ...base, 'event.action': 'connection.denied', 'event.outcome': 'failure' });
    else if (r < 0.995) out.push({ ...base, 'event.action': 'renewal.success', 'event.outcome': 'success' });
    else if (r < 0.9955) {
      out.push({
        ...base,
        'event.action': 'attestation.failure',
        'attestation.method': 'tpm',
        'attestation.reason': 'pcr_mismatch',
      });
    } else if (r < 0.9975) {
      // Attackers: five scanners, one device fanning out, one cloned serial.
      const k = Math.floor(rnd() * 3);
      if (k === 0)
        out.push({
          '@timestamp': ts,
          'event.action': 'handshake.failure',
          'source.ip': `203.0.113.${1 + (i % 5)}`,
        });
      else if (k === 1)
        out.push({
          ...base,
          'source.identity': `spiffe://${TD}/device/rogue`,
          'destination.identity': `spiffe://${TD}/node/n${i % 200}`,
          'event.action': 'connection.denied',
        });
      else
        out.push({
          ...accepted,
          'tls.client.x509.serial_number': 'c10e',
          'source.ip': `198.51.100.${i % 2}`,
        });
    } else out.push({ ...base, 'event.action': 'rotation' });
  }
  return out;
}

export interface Rate {
  /** Events per wall-clock second. */
  readonly wall: number;
  /** Events per second of this process's CPU time: steadier on a shared, loaded machine. */
  readonly cpu: number;
}

export interface SiemBenchResult {
  readonly events: number;
  readonly batch: number;
  readonly validate: Rate;
  readonly correlate: Rate;
  /** validate + stamp + SQLite batch insert + correlate + alert insert, per batch. */
  readonly pipeline: Record<'FULL' | 'NORMAL', Rate>;
  readonly alerts: number;
  readonly heapMiB: number;
  readonly loadAverage: readonly number[];
  readonly cpus: number;
}

/** The default pack, found from the source tree or from dist/ (both sit under the repo root). */
function findRulesDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const p = join(dir, 'policies/default/rules');
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  return process.env['EDGEWARD_RULES'] ?? 'policies/default/rules';
}

/** Events per wall-clock and per CPU second of `fn` over n events. */
export function measure(n: number, fn: () => void): Rate {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  fn();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall: Math.round((n / wall) * 1000), cpu: Math.round(n / ((c.user + c.system) / 1e6)) };
}

/**
 * validate + stamp + SQLite batch insert + correlate + alert insert, per batch of `raw`, on a fresh
 * store in a temporary folder under `dataDir` (removed afterwards).
 */
export function measurePipeline(
  rules: RuleSet,
  raw: readonly Record<string, unknown>[],
  o: { batch: number; observer: string; synchronous: 'FULL' | 'NORMAL'; dataDir: string },
): Rate {
  const dir = mkdtempSync(join(o.dataDir, 'edgeward-bench-'));
  // The SQLite adapter's own, synchronous face: what the batch insert itself costs.
  const store = openSqliteStoreSync(join(dir, 'siem.db'), { synchronous: o.synchronous });
  const eng = new Correlator(rules);
  const idf = createEventIdFactory(randomBytes);
  try {
    return measure(raw.length, () => {
      for (let i = 0; i < raw.length; i += o.batch) {
        const chunk = raw.slice(i, i + o.batch).map((e) => {
          const v = validateEvent(e);
          return stampEvent(v, { id: idf(v['@timestamp']), observer: o.observer, ingested: v['@timestamp'] });
        });
        store.insertEvents(chunk);
        store.insertAlerts(eng.feed(chunk));
      }
    });
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runSiemBench(n = 500_000, batch = 1000, dataDir = tmpdir()): Promise<SiemBenchResult> {
  const rules = await loadRules(findRulesDir());
  const raw = syntheticEvents(n);
  const nextId = createEventIdFactory(randomBytes);
  const observer = `spiffe://${TD}/node/n1`;

  let validated: EdgeEvent[] = [];
  const validate = measure(n, () => {
    validated = raw.map((e) => validateEvent(e));
  });
  const stamped = validated.map((e) =>
    stampEvent(e, { id: nextId(e['@timestamp']), observer, ingested: e['@timestamp'] }),
  );
  validated = [];

  const engine = new Correlator(rules);
  let alerts = 0;
  const correlate = measure(n, () => {
    for (let i = 0; i < n; i += batch) alerts += engine.feed(stamped.slice(i, i + batch)).length;
  });
  const heapMiB = Math.round(process.memoryUsage().heapUsed / 1048576);

  const pipeline = { FULL: { wall: 0, cpu: 0 }, NORMAL: { wall: 0, cpu: 0 } };
  for (const sync of ['FULL', 'NORMAL'] as const) {
    pipeline[sync] = measurePipeline(rules, raw, { batch, observer, synchronous: sync, dataDir });
  }
  return {
    events: n,
    batch,
    validate,
    correlate,
    pipeline,
    alerts,
    heapMiB,
    loadAverage: loadavg(),
    cpus: cpus().length,
  };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const n = Number(process.argv[2] ?? 500_000);
  const r = await runSiemBench(n, 1000, process.argv[3] ?? tmpdir());
  console.log(JSON.stringify(r, null, 2));
}
