// SIEM ingest into its stores, SQLite beside PostgreSQL: the ingest writer's group commits of
// validated, stamped events (batches of 1,000, `--group` batches a commit), as `siem serve`
// runs them. Prints events/s and events per CPU-second of this (the SIEM's) process; the
// PostgreSQL server's own CPU is not in that figure.
// Run: npm run build && nice -n 10 node dist/bench/siem-store-ingest.js --events 200000 \
//        --store sqlite|postgres://USER@HOST:PORT/DB
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createEventIdFactory, stampEvent, validateEvent } from '../common/events.js';
import { parsePostgresUrl } from '../common/postgres.js';
import { postgresStores, sqliteStores, type EventBatch, type SiemStoreFactory } from '../siem/store/index.js';
import { syntheticEvents } from './siem-correlate.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '200000' },
    store: { type: 'string', default: 'sqlite' },
    group: { type: 'string', default: '4' },
  },
});
const n = Number(values.events);
const group = Math.max(1, Number(values.group));
const factory: SiemStoreFactory =
  values.store === 'sqlite' ? sqliteStores : postgresStores(parsePostgresUrl(values.store));
const dataDir = mkdtempSync(join(tmpdir(), 'edgeward-ingest-bench-'));
const stores = await factory({ dataDir, synchronous: 'FULL' });
const idf = createEventIdFactory(randomBytes);
const observer = 'spiffe://factory.example/node/n1';
// Event times of today, so that PostgreSQL's day partitions take them.
const shift = Date.now() - 3_600_000 - Date.UTC(2026, 0, 1);
const raw = syntheticEvents(n).map((e) => ({ ...e, '@timestamp': (e['@timestamp'] as number) + shift }));
try {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let pending: EventBatch[] = [];
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < n; i += 1000) {
    const chunk = raw.slice(i, i + 1000).map((e) => {
      const v = validateEvent(e);
      return stampEvent(v, { id: idf(v['@timestamp']), observer, ingested: v['@timestamp'] });
    });
    pending.push(stores.writer.prepare(chunk));
    if (pending.length >= group) {
      inFlight.push(stores.writer.write(pending));
      pending = [];
      // At most two groups outstanding, as the ingest pipeline keeps them.
      if (inFlight.length >= 2) await inFlight.shift();
    }
  }
  if (pending.length > 0) inFlight.push(stores.writer.write(pending));
  await Promise.all(inFlight);
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const stored = await stores.store.countEvents();
  console.log(
    JSON.stringify({
      store: values.store === 'sqlite' ? 'sqlite' : parsePostgresUrl(values.store).redacted,
      events: n,
      stored,
      eventsPerSecond: Math.round(n / wall),
      eventsPerSiemCpuSecond: Math.round(n / ((c.user + c.system) / 1e6)),
      loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
      cpus: cpus().length,
    }),
  );
} finally {
  await stores.close();
  rmSync(dataDir, { recursive: true, force: true });
}
