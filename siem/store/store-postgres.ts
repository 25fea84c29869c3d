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
import type { EventRows } from './event-rows.js';
import { Partitions } from './pg/events.js';
import { SIEM_MIGRATIONS } from './pg/schema.js';
import { PostgresSiemStore } from './pg/store.js';

export { SIEM_MIGRATIONS } from './pg/schema.js';
export { PostgresSiemStore } from './pg/store.js';

export interface PostgresSiemOptions {
  /** Connections of this process's pool (default 10). */
  readonly poolMax?: number;
  /** The clock that says which day partitions to make ahead. */
  readonly now?: () => number;
}

export interface OpenedPostgres {
  readonly store: PostgresSiemStore;
  readonly pool: pg.Pool;
  readonly url: PostgresUrl;
  readonly partitions: Partitions;
  /** Commits the groups of batches written so far (in order), each in one transaction. */
  readonly writer: PostgresEventWriter;
  close(): Promise<void>;
}

/**
 * The ingest path's writer on PostgreSQL: groups are committed one after the other, in the order
 * given, each in one transaction; a write resolves once its transaction is committed.
 */
export class PostgresEventWriter {
  private readonly store: PostgresSiemStore;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(store: PostgresSiemStore) {
    this.store = store;
  }

  write(batches: readonly EventRows[]): Promise<void> {
    if (this.closed) return Promise.reject(new EdgewardError('ERR_SIEM_UNAVAILABLE'));
    const run = this.chain.then(() => this.store.insertRows(batches));
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.chain;
  }
}

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
  const store = new PostgresSiemStore({ pool, url: u, partitions });
  const writer = new PostgresEventWriter(store);
  // The partitions ahead follow the clock (hourly; a day ahead is already there).
  const ahead = setInterval(() => void partitions.tick().catch(() => undefined), 3_600_000);
  ahead.unref();
  let closing: Promise<void> | undefined;
  return {
    store,
    pool,
    url: u,
    partitions,
    writer,
    close() {
      closing ??= (async () => {
        clearInterval(ahead);
        await writer.close();
        await pool.end();
      })();
      return closing;
    },
  };
}
