// The ingest writer thread (event-writer.ts): owns one connection to the SIEM's SQLite file and
// commits each write it is given as one transaction, in order, answering after the commit.
import { parentPort, workerData } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import type { EventInsert } from './event-insert.js';
import {
  BUSY,
  WANT,
  mergeStepQuietly,
  openWriterConnection,
  type FromWriter,
  type ToWriter,
  type WriterData,
} from './event-writer.js';

const port = parentPort;
if (port === null) throw new TypeError('event-writer-worker runs as a worker thread');
const reply = (m: FromWriter): void => port.postMessage(m);

const { file, opts, gate } = workerData as WriterData;

/** Enters a transaction once the store's connection does not want the lock (EventWriter.exclusive). */
function enter(): void {
  for (;;) {
    for (let v = Atomics.load(gate, WANT); v !== 0; v = Atomics.load(gate, WANT))
      Atomics.wait(gate, WANT, v, 50);
    Atomics.store(gate, BUSY, 1);
    if (Atomics.load(gate, WANT) === 0) return;
    leave(); // it asked meanwhile: it goes first
  }
}

function leave(): void {
  Atomics.store(gate, BUSY, 0);
  Atomics.notify(gate, BUSY);
}
let conn: { db: Database.Database; insert: EventInsert } | undefined;
try {
  conn = openWriterConnection(file, opts);
  reply({ t: 'ready' });
} catch (err) {
  reply({ t: 'fatal', message: err instanceof Error ? err.message : String(err) });
  port.close();
}

port.on('message', (m: ToWriter) => {
  if (m.t === 'close') {
    conn?.db.close();
    conn = undefined;
    port.close();
    return;
  }
  if (conn === undefined) {
    reply({ t: 'failed', id: m.id, message: 'writer connection closed' });
    return;
  }
  enter();
  try {
    conn.insert.insert(m.batches);
  } catch (err) {
    leave();
    reply({ t: 'failed', id: m.id, message: err instanceof Error ? err.message : String(err) });
    return;
  }
  leave();
  reply({ t: 'done', id: m.id });
  // After the answer: the acknowledgement does not wait for the merge.
  if (conn.insert.mergeDue()) mergeSoon();
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
