// The ingest writer thread (event-writer.ts): owns one connection to the SIEM's SQLite file and
// commits each write it is given as one transaction, in order, answering after the commit. It
// starts the checkpointer thread (wal-checkpoint-worker.ts) and stops it before it closes.
import { Worker, parentPort, workerData } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { walPages } from './connection.js';
import type { EventInsert } from './event-insert.js';
import type { KeyResults } from './event-rows.js';
import {
  mergeStepQuietly,
  openWriterConnection,
  pruneKeysQuietly,
  type FromWriter,
  type ToWriter,
  type WriterData,
} from './event-writer.js';
import type { CheckpointerData } from './wal-checkpoint-worker.js';
import { COMMITS, STOP } from './wal-checkpoint.js';
import { enterGate, leaveGate } from './writer-gate.js';

const port = parentPort;
if (port === null) throw new TypeError('event-writer-worker runs as a worker thread');
const reply = (m: FromWriter): void => port.postMessage(m);

const { file, opts, gate, walCounters } = workerData as WriterData;

const enter = (): void => enterGate(gate);
const leave = (): void => leaveGate(gate);

// Checkpoints run on their own thread (wal-checkpoint.ts). This connection's automatic
// checkpoint stays as a backstop, far past the length at which that thread restarts the log.
const restartPages = walPages(opts);
const signal = new Int32Array(new SharedArrayBuffer(8));
let checkpointer: Worker | undefined;

let conn: { db: Database.Database; insert: EventInsert } | undefined;
try {
  conn = openWriterConnection(file, opts);
  conn.db.pragma(`wal_autocheckpoint = ${restartPages * 4}`);
  checkpointer = new Worker(new URL('./wal-checkpoint-worker.js', import.meta.url), {
    workerData: { file, opts, restartPages, signal, gate, counters: walCounters } satisfies CheckpointerData,
  });
  checkpointer.once('error', () => {
    // Without it, SQLite checkpoints inside the commits again, as often as the thread would.
    checkpointer = undefined;
    conn?.db.pragma(`wal_autocheckpoint = ${restartPages}`);
  });
  reply({ t: 'ready' });
} catch (err) {
  reply({ t: 'fatal', message: err instanceof Error ? err.message : String(err) });
  port.close();
}

port.on('message', (m: ToWriter) => {
  if (m.t === 'close') {
    const c = conn;
    conn = undefined;
    Atomics.store(signal, STOP, 1);
    Atomics.add(signal, COMMITS, 1);
    Atomics.notify(signal, COMMITS);
    Atomics.notify(signal, STOP);
    const closed = (): void => {
      c?.db.close();
      port.close();
    };
    if (checkpointer === undefined) closed();
    else checkpointer.once('exit', closed);
    return;
  }
  if (conn === undefined) {
    reply({ t: 'failed', id: m.id, message: 'writer connection closed' });
    return;
  }
  enter();
  let keys: KeyResults;
  try {
    keys = conn.insert.insert(m.batches);
  } catch (err) {
    leave();
    reply({ t: 'failed', id: m.id, message: err instanceof Error ? err.message : String(err) });
    return;
  }
  leave();
  reply({ t: 'done', id: m.id, keys });
  Atomics.add(signal, COMMITS, 1);
  Atomics.notify(signal, COMMITS);
  // After the answer: the acknowledgement does not wait for the merge or the prune.
  if (conn.insert.mergeDue()) mergeSoon();
  if (conn.insert.pruneDue()) {
    enter();
    try {
      pruneKeysQuietly(conn.insert);
    } finally {
      leave();
    }
  }
});

// The merge runs one slice per turn of this thread's event loop, so a write that arrives
// meanwhile is committed after at most one slice rather than the whole merge (a write waits for
// its commit, and correlation for the write); the store's connection may also write between two
// slices (see enter()).
let merging = false;

function mergeSoon(): void {
  if (merging) return;
  merging = true;
  setImmediate(mergeSlice);
}

function mergeSlice(): void {
  merging = false;
  if (conn === undefined) return;
  let more: boolean;
  enter();
  try {
    more = mergeStepQuietly(conn.insert);
  } finally {
    leave();
  }
  if (more) mergeSoon();
}
