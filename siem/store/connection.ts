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
  /**
   * WAL pages between checkpoints (default WAL_PAGES). The ingest writer thread's checkpointer
   * restarts the log at this length; SQLite's automatic checkpoint in the commit is set to it on
   * other connections, and to 4x on the writer thread's (a backstop).
   */
  readonly walAutocheckpointPages?: number;
}

/** 8,192 pages: 32 MiB of log. */
export const WAL_PAGES = 8_192;

export const walPages = (opts: ConnectionOptions): number =>
  Math.max(100, Math.floor(opts.walAutocheckpointPages ?? WAL_PAGES));

export function configureConnection(db: Database.Database, opts: ConnectionOptions): void {
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${opts.synchronous === 'NORMAL' ? 'NORMAL' : 'FULL'}`);
  // Two connections write (the store's and the ingest writer's): one waits for the other's commit.
  db.pragma('busy_timeout = 5000');
  // Checkpoint less often than SQLite's default 1000 pages: index pages touched by many batches
  // are then copied back to the database file once per checkpoint rather than many times.
  db.pragma(`wal_autocheckpoint = ${walPages(opts)}`);
  db.pragma('temp_store = MEMORY');
  // The timeline index takes random keys; a larger page cache keeps its B-tree's hot pages in
  // memory (the default 2 MiB makes batch inserts slower).
  db.pragma(`cache_size = -${Math.max(2, Math.floor(opts.cacheMiB ?? 64)) * 1024}`);
}
