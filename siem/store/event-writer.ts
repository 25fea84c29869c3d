// The ingest path's writer: its own connection to the SIEM's SQLite file, on a worker thread by
// default, so that the event inserts (the largest part of ingest) run on a second core while the
// event loop parses, validates and correlates. Writes are committed in the order they were given,
// each as one transaction, and a write resolves only once its transaction is committed (with the
// connection's `synchronous` setting: FULL means on disk).
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { EdgewardError } from '../../common/errors.js';
import { configureConnection, type ConnectionOptions } from './connection.js';
import { prepareEventInsert, type EventInsert } from './event-insert.js';
import { encodeEventRows, outcomesOf, type EventRows, type KeyResults } from './event-rows.js';
import type { EventBatch, EventWriter, StoreMetric } from './store.js';
import { newWalCounters, readWalCounters, type WalCheckpoints } from './wal-checkpoint.js';
import { holdWriter, newGate, resetGate } from './writer-gate.js';

export interface EventWriterOptions extends ConnectionOptions {
  /** Insert on a worker thread (default) or on the calling thread. */
  readonly thread?: boolean;
}

/** The SQLite writer's own face: encoded rows, the writer gate and the checkpointer's counters. */
export interface SqliteEventWriter {
  /**
   * Commits the batches in one transaction (a batch whose key is stored already left out);
   * resolves once committed with each batch's KeyResults entry, rejects with ERR_SIEM_STORE.
   */
  write(batches: readonly EventRows[]): Promise<KeyResults>;
  /**
   * Runs a write on another connection to the same file (the store's: decisions, alerts, audit,
   * retention) with priority: the writer thread starts no new transaction until it returns, so
   * that write waits for at most the group being committed instead of being starved by a
   * writer that is busy nearly all the time under load.
   */
  exclusive<T>(fn: () => T): T;
  /**
   * The WAL checkpoints the writer thread's checkpointer made so far (wal-checkpoint.ts); all
   * zero for a writer on the calling thread, whose commits checkpoint themselves (SQLite's automatic checkpoint).
   */
  walCheckpoints(): WalCheckpoints;
  /** Commits what was given, then closes. */
  close(): Promise<void>;
  /**
   * Stops the writer thread at once, as a crash would: writes not yet answered are rejected and
   * the next write starts a new thread. (A transaction it had not finished is rolled back.)
   */
  abort(): Promise<void>;
}

/** Messages to the thread. */
export type ToWriter =
  | { readonly t: 'write'; readonly id: number; readonly batches: readonly EventRows[] }
  | { readonly t: 'close' };
/** Messages from the thread. */
export type FromWriter =
  | { readonly t: 'ready' }
  | { readonly t: 'fatal'; readonly message: string }
  | { readonly t: 'done'; readonly id: number; readonly keys: KeyResults }
  | { readonly t: 'failed'; readonly id: number; readonly message: string };

export interface WriterData {
  readonly file: string;
  readonly opts: ConnectionOptions;
  /** The writer gate (writer-gate.ts), shared with EventWriter.exclusive and the checkpointer. */
  readonly gate: Int32Array;
  /** The checkpointer's counters, kept across writer threads (wal-checkpoint.ts). */
  readonly walCounters: Int32Array;
}

/** Longest the store's connection waits for the writer's transaction before trying anyway. */
const HANDOFF_MS = 10_000;

const storeError = (what: string, cause: unknown): EdgewardError =>
  new EdgewardError('ERR_SIEM_STORE', `event store: ${what}`, { cause });

/** Opens the writer's connection (the schema must exist: the store opens the file first). */
export function openWriterConnection(
  file: string,
  opts: ConnectionOptions,
): {
  db: Database.Database;
  insert: EventInsert;
} {
  const db = new Database(file, { fileMustExist: true });
  try {
    configureConnection(db, opts);
    return { db, insert: prepareEventInsert(db) };
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Prunes the batch keys when due; a failure leaves them for the next try (they are only kept longer). */
export function pruneKeysQuietly(ins: EventInsert): void {
  if (!ins.pruneDue()) return;
  try {
    ins.pruneKeys();
  } catch {
    // Tried again after the next write.
  }
}

/**
 * One step of merging the recent timeline entries; returns whether to take another. The events
 * are committed already; a step that fails (disk full) leaves the entries where queries still
 * find them, and the merge is tried again after the next insert.
 */
export function mergeStepQuietly(ins: EventInsert): boolean {
  try {
    return ins.mergeStep();
  } catch {
    return false;
  }
}

function workerScript(): URL {
  const js = new URL('./event-writer-worker.js', import.meta.url);
  if (existsSync(js)) return js;
  // Run from the TypeScript sources (vitest): the compiled worker in dist/, which the test
  // set-up builds first.
  return new URL('../../dist/siem/store/event-writer-worker.js', import.meta.url);
}

export async function openEventWriter(
  file: string,
  opts: EventWriterOptions = {},
): Promise<SqliteEventWriter> {
  const conn: ConnectionOptions = {
    ...(opts.synchronous !== undefined ? { synchronous: opts.synchronous } : {}),
    ...(opts.cacheMiB !== undefined ? { cacheMiB: opts.cacheMiB } : {}),
    ...(opts.walAutocheckpointPages !== undefined
      ? { walAutocheckpointPages: opts.walAutocheckpointPages }
      : {}),
  };
  if (opts.thread === false) return inThreadWriter(file, conn);
  const w = new ThreadWriter(file, conn);
  await w.start();
  return w;
}

function inThreadWriter(file: string, opts: ConnectionOptions): SqliteEventWriter {
  let c: ReturnType<typeof openWriterConnection> | undefined;
  try {
    c = openWriterConnection(file, opts);
  } catch (err) {
    throw storeError('open failed', err);
  }
  return {
    write(batches) {
      if (c === undefined) return Promise.reject(new EdgewardError('ERR_SIEM_UNAVAILABLE'));
      let keys: KeyResults;
      try {
        keys = c.insert.insert(batches);
      } catch (err) {
        return Promise.reject(err instanceof TypeError ? err : storeError('insert failed', err));
      }
      if (c.insert.mergeDue()) while (mergeStepQuietly(c.insert));
      pruneKeysQuietly(c.insert);
      return Promise.resolve(keys);
    },
    exclusive(fn) {
      return fn();
    },
    walCheckpoints: () => ({ passes: 0, restarts: 0, refused: 0 }),
    close() {
      c?.db.close();
      c = undefined;
      return Promise.resolve();
    },
    abort() {
      return this.close();
    },
  };
}

interface Pending {
  readonly resolve: (keys: KeyResults) => void;
  readonly reject: (err: unknown) => void;
}

class ThreadWriter implements SqliteEventWriter {
  private readonly file: string;
  private readonly opts: ConnectionOptions;
  private worker: Worker | undefined;
  private starting: Promise<Worker> | undefined;
  /** The thread #starting waits for. */
  private startingWorker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private next = 0;
  private closed = false;
  private readonly gate = newGate();
  private readonly walCounters = newWalCounters();

  constructor(file: string, opts: ConnectionOptions) {
    this.file = file;
    this.opts = opts;
  }

  start(): Promise<Worker> {
    if (this.worker !== undefined) return Promise.resolve(this.worker);
    this.starting ??= new Promise<Worker>((resolve, reject) => {
      const data: WriterData = {
        file: this.file,
        opts: this.opts,
        gate: this.gate,
        walCounters: this.walCounters,
      };
      const w = new Worker(workerScript(), { workerData: data });
      this.startingWorker = w;
      let ready = false;
      w.on('message', (m: FromWriter) => {
        if (m.t === 'ready') {
          ready = true;
          this.worker = w;
          this.starting = undefined;
          this.startingWorker = undefined;
          if (this.pending.size === 0) w.unref();
          resolve(w);
        } else if (m.t === 'fatal') {
          reject(storeError('open failed', new Error(m.message)));
        } else this.answer(m);
      });
      w.on('error', (err) => {
        if (!ready) reject(storeError('writer thread failed', err));
        this.stopped(w, err);
      });
      w.on('exit', (code) => {
        if (!ready) reject(storeError('writer thread failed', new Error(`exit ${code}`)));
        this.stopped(w, new Error(`writer thread exited (${code})`));
      });
    });
    return this.starting;
  }

  private answer(m: Extract<FromWriter, { id: number }>): void {
    const p = this.pending.get(m.id);
    if (p === undefined) return;
    this.pending.delete(m.id);
    if (this.pending.size === 0) this.worker?.unref();
    if (m.t === 'done') p.resolve(m.keys);
    else p.reject(storeError('insert failed', new Error(m.message)));
  }

  private stopped(w: Worker, cause: unknown): void {
    if (w === this.startingWorker) {
      // It never became ready: the next write starts another.
      this.starting = undefined;
      this.startingWorker = undefined;
    }
    if (this.worker !== w) return;
    this.worker = undefined;
    resetGate(this.gate);
    // Not answered: not known to be committed, so never acknowledged.
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(storeError('writer thread stopped', cause));
  }

  async write(batches: readonly EventRows[]): Promise<KeyResults> {
    if (this.closed) throw new EdgewardError('ERR_SIEM_UNAVAILABLE');
    const w = this.worker ?? (await this.start());
    const id = ++this.next;
    const done = new Promise<KeyResults>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    // Keep the process alive while a commit is outstanding.
    w.ref();
    const msg: ToWriter = { t: 'write', id, batches };
    try {
      w.postMessage(
        msg,
        // Moved, not copied: the rows are not used on this side again.
        [...new Set(batches.flatMap((b) => [b.num.buffer as ArrayBuffer, b.bytes.buffer as ArrayBuffer]))],
      );
    } catch (err) {
      this.pending.delete(id);
      throw err instanceof TypeError ? err : storeError('insert failed', err);
    }
    return done;
  }

  exclusive<T>(fn: () => T): T {
    return holdWriter(this.gate, HANDOFF_MS, fn);
  }

  walCheckpoints(): WalCheckpoints {
    return readWalCounters(this.walCounters);
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker ?? (await this.starting?.catch(() => undefined));
    if (w === undefined) return;
    w.ref();
    const exited = new Promise<void>((r) => w.once('exit', () => r()));
    // The thread answers every write already posted, then closes its connection and exits.
    w.postMessage({ t: 'close' } satisfies ToWriter);
    await exited;
  }

  async abort(): Promise<void> {
    const w = this.worker;
    if (w === undefined) return;
    await w.terminate();
  }
}

/** A batch as the SQLite writer takes it: its rows, encoded when the batch was accepted. */
interface SqliteBatch extends EventBatch {
  readonly rows: EventRows;
}

const rowsOf = (b: EventBatch): EventRows =>
  'rows' in b ? (b as SqliteBatch).rows : encodeEventRows(b.events, b.key);

/** The domain's EventWriter over the SQLite writer: rows encoded by `prepare`, on the event loop. */
export function domainEventWriter(w: SqliteEventWriter): EventWriter {
  return {
    prepare: (events, key): SqliteBatch =>
      key === undefined
        ? { events, rows: encodeEventRows(events) }
        : { events, key, rows: encodeEventRows(events, key) },
    write: async (batches) => {
      const rows = batches.map(rowsOf);
      return outcomesOf(rows, await w.write(rows));
    },
    close: () => w.close(),
    abort: () => w.abort(),
  };
}

/** The writer thread's checkpointer counters as the adapter's metrics. */
export function walMetrics(w: SqliteEventWriter): StoreMetric[] {
  const c = w.walCheckpoints();
  const help =
    "Checkpoints of the events file's WAL by the checkpointer thread: passes, log restarts, and restarts refused (a reader held the old log)";
  return (
    [
      ['pass', c.passes],
      ['restart', c.restarts],
      ['refused', c.refused],
    ] as const
  ).map(([result, value]) => ({
    name: 'edgeward_siem_wal_checkpoints_total',
    help,
    type: 'counter',
    labels: { result },
    value,
  }));
}
