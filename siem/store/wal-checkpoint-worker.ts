// The checkpointer thread (wal-checkpoint.ts), started by the ingest writer thread: a pass after
// commits, at most one per PASS_MS, until the writer sets STOP. It only waits on shared memory,
// so it needs no messages. A pass that fails (disk full) is tried again at the next; if the file
// cannot be opened, the thread ends and the writer checkpoints inside its commits again.
import { workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { configureConnection, type ConnectionOptions } from './connection.js';
import {
  COMMITS,
  PASSES,
  PASS_MS,
  REFUSED,
  RESTARTS,
  RESTART_WAIT_MS,
  STOP,
  WRITER_WAIT_MS,
  checkpointPass,
} from './wal-checkpoint.js';
import { holdWriter } from './writer-gate.js';

export interface CheckpointerData {
  readonly file: string;
  readonly opts: ConnectionOptions;
  readonly restartPages: number;
  /** [COMMITS]: commits by the writer so far; [STOP]: 1 once the writer closes. */
  readonly signal: Int32Array;
  /** The writer gate (writer-gate.ts): a RESTART holds the writer off through it. */
  readonly gate: Int32Array;
  /** Counters of passes, restarts and refused restarts (wal-checkpoint.ts). */
  readonly counters: Int32Array;
}

const { file, opts, restartPages, signal, gate, counters } = workerData as CheckpointerData;
const hold = <T>(fn: () => T): T => holdWriter(gate, WRITER_WAIT_MS, fn);
const db = new Database(file, { fileMustExist: true });
try {
  configureConnection(db, opts);
  db.pragma(`busy_timeout = ${RESTART_WAIT_MS}`);
  // From 0, not from the count now: commits made before this thread started get a pass too.
  let seen = 0;
  while (Atomics.load(signal, STOP) === 0) {
    // The writer sets STOP before it counts a last commit, so this wait cannot miss it.
    Atomics.wait(signal, COMMITS, seen);
    if (Atomics.load(signal, STOP) !== 0) break;
    seen = Atomics.load(signal, COMMITS);
    try {
      const r = checkpointPass(db, restartPages, hold);
      Atomics.add(counters, PASSES, 1);
      if (r.restart) Atomics.add(counters, r.restarted ? RESTARTS : REFUSED, 1);
    } catch {
      // The writer's own automatic checkpoint (at 4x) bounds the log until a pass succeeds.
    }
    // Sleeps, but wakes at once when told to stop.
    Atomics.wait(signal, STOP, 0, PASS_MS);
  }
} finally {
  db.close();
}
