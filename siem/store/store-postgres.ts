// The SIEM's stores on PostgreSQL (`siem serve --store postgres://…`), shared by SIEM replicas:
// one pool per process, the SIEM's migrations applied on start (refused when the database is
// newer), day partitions made ahead, and an event writer that commits each group of batches in
// one transaction before it answers.
import type pg from 'pg';
import { EdgewardError } from '../../common/errors.js';
import {
  checkReachable,
  createPool,
  migrate,
  parsePostgresUrl,
  type PostgresUrl,
} from '../../common/postgres.js';
import { encodeEventRows, outcomesOf, type EventRows } from './event-rows.js';
import { Partitions } from './pg/events.js';
import { postgresInventoryStore } from './pg/inventory.js';
import { SIEM_MIGRATIONS } from './pg/schema.js';
import { PgRunner, postgresAckStore, postgresSessionStore, postgresUserStore } from './pg/side.js';
import { PostgresSiemStore } from './pg/store.js';
import {
  BATCH_KEY_PRUNE_MS,
  BATCH_KEY_RETENTION_MS,
  type BatchKey,
  type BatchOutcome,
  type EventBatch,
  type EventWriter,
} from './store.js';
import type { SiemStoreFactory, SiemStores } from './stores.js';

export { SIEM_MIGRATIONS } from './pg/schema.js';
export { PostgresSiemStore } from './pg/store.js';

export interface PostgresSiemOptions {
  /** Connections of this process's pool (default 10). */
  readonly poolMax?: number;
  /** The clock that says which day partitions to make ahead. */
  readonly now?: () => number;
}

/** A batch as the PostgreSQL writer takes it: encoded once, on the calling thread. */
interface PgBatch extends EventBatch {
  readonly rows: EventRows;
}

/**
 * The ingest path's writer on PostgreSQL: groups are committed one after the other, in the order
 * given, each in one transaction; a write resolves once its transaction is committed. About once
 * a minute (of the keys' time) it prunes the batch keys after a write, before the next one.
 */
export class PostgresEventWriter implements EventWriter {
  private readonly store: PostgresSiemStore;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** The newest key time written, the key time of the last prune and the reporters written since. */
  private newestKey = 0;
  private lastPrune = 0;
  private readonly keyed = new Set<string>();

  constructor(store: PostgresSiemStore) {
    this.store = store;
  }

  prepare(events: EdgeEventList, key?: BatchKey): PgBatch {
    return key === undefined
      ? { events, rows: encodeEventRows(events) }
      : { events, key, rows: encodeEventRows(events, key) };
  }

  write(batches: readonly EventBatch[]): Promise<BatchOutcome[]> {
    if (this.closed) return Promise.reject(new EdgewardError('ERR_SIEM_UNAVAILABLE'));
    let rows: EventRows[];
    try {
      rows = batches.map((b) => (b as Partial<PgBatch>).rows ?? encodeEventRows(b.events, b.key));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new TypeError(String(err)));
    }
    const run = this.chain.then(async () => outcomesOf(rows, await this.store.insertRows(rows)));
    this.chain = run.then(
      () => this.pruneWhenDue(rows),
      () => undefined,
    );
    return run;
  }

  private async pruneWhenDue(rows: readonly EventRows[]): Promise<void> {
    for (const r of rows)
      if (r.key !== undefined) {
        this.keyed.add(r.key.reporter);
        if (r.key.at > this.newestKey) this.newestKey = r.key.at;
      }
    if (this.keyed.size === 0 || this.newestKey - this.lastPrune < BATCH_KEY_PRUNE_MS) return;
    const reporters = [...this.keyed];
    try {
      await this.store.pruneBatchKeys(this.newestKey - BATCH_KEY_RETENTION_MS, reporters);
      this.keyed.clear();
      this.lastPrune = this.newestKey;
    } catch {
      // Kept a little longer: tried again after the next write.
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.chain;
  }
}

type EdgeEventList = EventBatch['events'];

export interface OpenedPostgres extends SiemStores {
  readonly store: PostgresSiemStore;
  readonly writer: PostgresEventWriter;
  readonly url: PostgresUrl;
  readonly runner: PgRunner;
  readonly pool: pg.Pool;
  readonly partitions: Partitions;
}

/** Connects, migrates (refusing a newer schema), makes the partitions ahead and opens every store. */
export async function openPostgresSiem(
  url: string | PostgresUrl,
  opts: PostgresSiemOptions = {},
): Promise<OpenedPostgres> {
  const u = typeof url === 'string' ? parsePostgresUrl(url) : url;
  const pool = createPool(u, { max: opts.poolMax ?? 10, applicationName: 'edgeward-siem' });
  const partitions = new Partitions(pool, u, opts.now ?? Date.now);
  try {
    await checkReachable(pool, u);
    await migrate(pool, u, 'siem', SIEM_MIGRATIONS);
    await partitions.start();
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  // The partitions ahead follow the clock (hourly; a day ahead is already there).
  const ahead = setInterval(() => void partitions.tick().catch(() => undefined), 3_600_000);
  ahead.unref();
  let closing: Promise<void> | undefined;
  const holder: { writer?: PostgresEventWriter } = {};
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      clearInterval(ahead);
      await holder.writer?.close();
      await pool.end();
    })());
  const store = new PostgresSiemStore({ pool, url: u, partitions, close });
  const writer = (holder.writer = new PostgresEventWriter(store));
  const runner = new PgRunner(pool, u);
  return {
    store,
    writer,
    url: u,
    runner,
    pool,
    partitions,
    acks: postgresAckStore(runner),
    users: postgresUserStore(runner),
    sessions: postgresSessionStore(runner),
    inventory: postgresInventoryStore(runner),
    close,
  };
}

/** The SIEM's stores in the PostgreSQL database at `url` (the data folder keeps only the keys). */
export function postgresStores(url: string | PostgresUrl, opts: PostgresSiemOptions = {}): SiemStoreFactory {
  const u = typeof url === 'string' ? parsePostgresUrl(url) : url;
  return () => openPostgresSiem(u, opts);
}
