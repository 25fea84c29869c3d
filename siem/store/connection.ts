// The settings of every connection to the SIEM's SQLite file: the store's own and the ingest
// writer's (event-writer.ts), so both commit with the same durability.
import type Database from 'better-sqlite3';

export interface ConnectionOptions {
  /**
   * FULL (default): a commit is on disk before it returns, so acknowledged events survive power
   * loss. NORMAL: survives a process crash, may lose the last commits on power loss.
   */
  readonly synchronous?: 'FULL' | 'NORMAL';
  /** SQLite page cache in MiB (default 64). */
  readonly cacheMiB?: number;
  /** WAL pages between automatic checkpoints (default 10,000, about 40 MiB of WAL). */
  readonly walAutocheckpointPages?: number;
}

export function configureConnection(db: Database.Database, opts: ConnectionOptions): void {
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${opts.synchronous === 'NORMAL' ? 'NORMAL' : 'FULL'}`);
  // Two connections write (the store's and the ingest writer's): one waits for the other's commit.
  db.pragma('busy_timeout = 5000');
  // Checkpoint less often than SQLite's default 1000 pages: index pages touched by many batches
  // are then copied back to the database file once per checkpoint rather than many times.
  db.pragma(`wal_autocheckpoint = ${Math.max(100, Math.floor(opts.walAutocheckpointPages ?? 10_000))}`);
  db.pragma('temp_store = MEMORY');
  // The timeline index takes random keys; a larger page cache keeps its B-tree's hot pages in
  // memory (the default 2 MiB makes batch inserts slower).
  db.pragma(`cache_size = -${Math.max(2, Math.floor(opts.cacheMiB ?? 64)) * 1024}`);
}
