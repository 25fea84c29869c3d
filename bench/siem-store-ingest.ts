// SIEM ingest into its stores, SQLite beside PostgreSQL: the ingest writer's group commits of
// validated, stamped events (batches of 1,000, `--group` batches a commit), as `siem serve`
// runs them. Prints events/s and events per CPU-second of this (the SIEM's) process; the
// PostgreSQL server's own CPU is not in that figure.
// `--inventory` also updates the dashboard inventory from each committed group, one after the
// other, as `siem serve` does; `--insert copy` (PostgreSQL) writes each group with COPY ... FROM
// STDIN (bench/pg-copy.ts) instead of the store's unnest insert, for comparison. `--keys` gives
// every batch a batch key (Edgeward-Batch-Id), stored in the batch's transaction; `--batch N`
// sets the events per batch (default 1,000).
// Run: npm run build && nice -n 10 node dist/bench/siem-store-ingest.js --events 200000 \
//        --store sqlite|postgres://USER@HOST:PORT/DB [--group 4] [--inventory] [--insert unnest|copy]
//        [--keys] [--batch 1000]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createEventIdFactory, stampEvent, validateEvent } from '../common/events.js';
import { parsePostgresUrl } from '../common/postgres.js';
import {
  eventColumns,
  postgresStores,
  type OpenedPostgres,
  sqliteStores,
  type EventBatch,
  type EventWriter,
  type SiemStoreFactory,
} from '../siem/store/index.js';
import { copyColumns } from './pg-copy.js';
import { syntheticEvents } from './siem-correlate.js';

const COLUMNS = [
  'id',
  'ts',
  'action',
  'source_identity',
  'destination_identity',
  'source_ip',
  'serial',
  'observer',
  'doc',
];
const REPORTERS = `INSERT INTO siem_reporters (identity, last_seen) SELECT o, max(t) FROM unnest($1::text[], $2::bigint[]) AS x (o, t)
  GROUP BY o ORDER BY o ON CONFLICT (identity) DO UPDATE SET last_seen = greatest(siem_reporters.last_seen, excluded.last_seen)`;

/** The store's writer with COPY in place of the unnest insert: one transaction per group, in order. */
function copyWriter(s: OpenedPostgres): EventWriter {
  let chain: Promise<void> = Promise.resolve();
  return {
    prepare: (events) => s.writer.prepare(events),
    write(batches) {
      const rows = batches.map(
        (b) => (b as EventBatch & { rows: Parameters<typeof eventColumns>[0][number] }).rows,
      );
      const run = chain.then(async () => {
        const { columns, reporters, days } = eventColumns(rows);
        await s.partitions.ensure(days);
        const c = await s.pool.connect();
        try {
          await c.query('BEGIN');
          await copyColumns(c, 'siem_events', COLUMNS, columns);
          await c.query(REPORTERS, [[...reporters.keys()], [...reporters.values()]]);
          await c.query('COMMIT');
        } finally {
          c.release();
        }
      });
      chain = run.catch(() => undefined);
      return run.then(() => rows.map((r) => ({ duplicate: false, accepted: r.count })));
    },
    close: () => chain,
  };
}

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '200000' },
    store: { type: 'string', default: 'sqlite' },
    group: { type: 'string', default: '4' },
    inventory: { type: 'boolean', default: false },
    insert: { type: 'string', default: 'unnest' },
    keys: { type: 'boolean', default: false },
    batch: { type: 'string', default: '1000' },
  },
});
const n = Number(values.events);
const group = Math.max(1, Number(values.group));
const batchSize = Math.max(1, Number(values.batch));
const factory: SiemStoreFactory =
  values.store === 'sqlite' ? sqliteStores : postgresStores(parsePostgresUrl(values.store));
const dataDir = mkdtempSync(join(tmpdir(), 'edgeward-ingest-bench-'));
const stores = await factory({ dataDir, synchronous: 'FULL' });
if (values.insert !== 'unnest' && (values.insert !== 'copy' || values.store === 'sqlite'))
  throw new Error('--insert is unnest, or copy on PostgreSQL');
const writer: EventWriter = values.insert === 'copy' ? copyWriter(stores as OpenedPostgres) : stores.writer;
let inventoryWrites: Promise<void> = Promise.resolve();
let inventoryMs = 0;
/** The group's events into the inventory after its commit, in commit order (as the dashboard API does). */
const project = (batches: readonly EventBatch[]): void => {
  if (!values.inventory) return;
  const events = batches.flatMap((b) => b.events);
  inventoryWrites = inventoryWrites.then(async () => {
    const t = performance.now();
    await stores.inventory.apply(events);
    inventoryMs += performance.now() - t;
  });
};
const write = (batches: EventBatch[]): Promise<void> => writer.write(batches).then(() => project(batches));
const keyOf = (): { reporter: string; id: string; at: number } | undefined =>
  values.keys ? { reporter: observer, id: randomBytes(16).toString('hex'), at: Date.now() } : undefined;
const idf = createEventIdFactory(randomBytes);
const observer = 'spiffe://factory.example/node/n1';
// Event times of today, so that PostgreSQL's day partitions take them.
const shift = Date.now() - 3_600_000 - Date.UTC(2026, 0, 1);
const raw = syntheticEvents(n).map((e) => ({ ...e, '@timestamp': (e['@timestamp'] as number) + shift }));
try {
  if (values.inventory) {
    // The fleet the events talk about, enrolled by the CA (not timed): sightings then update rows.
    const ca = 'spiffe://factory.example/svc/ca';
    const t = Date.now() - 7_200_000;
    const ids = [
      ...Array.from({ length: 5000 }, (_, i) => `spiffe://factory.example/device/d${i}`),
      ...Array.from({ length: 200 }, (_, i) => `spiffe://factory.example/node/n${i}`),
    ];
    const enrolled = ids.map((id, i) =>
      stampEvent(
        validateEvent({ '@timestamp': t, 'event.action': 'enroll.success', 'source.identity': id, 'tls.client.x509.serial_number': (i + 1).toString(16).padStart(16, '0') }),
        { id: idf(t), observer: ca, observerType: 'ca', ingested: t },
      ),
    ); // prettier-ignore
    await stores.inventory.apply(enrolled);
  }
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let pending: EventBatch[] = [];
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < n; i += batchSize) {
    const chunk = raw.slice(i, i + batchSize).map((e) => {
      const v = validateEvent(e);
      return stampEvent(v, { id: idf(v['@timestamp']), observer, ingested: v['@timestamp'] });
    });
    pending.push(writer.prepare(chunk, keyOf()));
    if (pending.length >= group) {
      inFlight.push(write(pending));
      pending = [];
      // At most two groups outstanding, as the ingest pipeline keeps them.
      if (inFlight.length >= 2) await inFlight.shift();
    }
  }
  if (pending.length > 0) inFlight.push(write(pending));
  await Promise.all(inFlight);
  await inventoryWrites;
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const stored = await stores.store.countEvents();
  console.log(
    JSON.stringify({
      store: values.store === 'sqlite' ? 'sqlite' : parsePostgresUrl(values.store).redacted,
      events: n,
      stored,
      group,
      batch: batchSize,
      keys: values.keys,
      insert: values.insert,
      inventory: values.inventory ? { seconds: Math.round(inventoryMs) / 1000 } : false,
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
