// Checkpoints of the events file's write-ahead log, off the ingest writer's path. SQLite's own
// (automatic) checkpoint runs inside the commit that crosses the threshold: that commit, and so
// the acknowledgement of every batch in it, waits while ~40 MiB of pages are copied into the
// database file and synced (about a fifth of the ingest rate at 1.5M events). Here a second
// connection on its own thread copies the pages while the writer goes on committing (PASSIVE
// blocks nobody); once the log is long, it holds the writer off between two transactions (the
// writer gate, writer-gate.ts) and a RESTART copies what was committed meanwhile, so that the
// writer's next transaction starts the log from its beginning again. Without that restart the
// log would only grow: a PASSIVE checkpoint never catches up with a writer that commits all the
// time, and SQLite's busy handler rarely finds the busy writer's lock free for a RESTART.
import type Database from 'better-sqlite3';

/** Slots of the shared Int32Array between the writer and the checkpointer. */
export const COMMITS = 0;
export const STOP = 1;

/** Slots of the checkpointer's counters (an Int32Array read by EventWriter.walCheckpoints). */
export const PASSES = 0;
export const RESTARTS = 1;
export const REFUSED = 2;
export const newWalCounters = (): Int32Array => new Int32Array(new SharedArrayBuffer(12));

export interface WalCheckpoints {
  /** Checkpoint passes (each copies what the log holds into the database file). */
  readonly passes: number;
  /** Passes that restarted the log. */
  readonly restarts: number;
  /** Restarts that could not complete (a reader held the old log): the next pass tries again. */
  readonly refused: number;
}

export function readWalCounters(c: Int32Array): WalCheckpoints {
  return {
    passes: Atomics.load(c, PASSES),
    restarts: Atomics.load(c, RESTARTS),
    refused: Atomics.load(c, REFUSED),
  };
}

/** Shortest time between two passes: a page changed by many commits is copied once per pass. */
export const PASS_MS = 200;
/**
 * How long a RESTART waits for readers of the old log (the connection's busy timeout). It holds
 * the writer off meanwhile, so this bounds the writer's wait; past it the pass gives up and the
 * next one tries again.
 */
export const RESTART_WAIT_MS = 250;
/** How long a pass waits for the writer's transaction to end before it tries anyway. */
export const WRITER_WAIT_MS = 5_000;

interface CheckpointRow {
  readonly busy: number;
  readonly log: number;
  readonly checkpointed: number;
}

export interface PassResult {
  /** Pages in the log when the pass began. */
  readonly log: number;
  /** Whether the pass tried to restart the log (it was at least `restartPages` long). */
  readonly restart: boolean;
  /** Whether that RESTART completed (the next commit starts a new log). */
  readonly restarted: boolean;
}

function checkpoint(db: Database.Database, mode: 'PASSIVE' | 'RESTART'): CheckpointRow {
  return (db.pragma(`wal_checkpoint(${mode})`) as CheckpointRow[])[0] as CheckpointRow;
}

/**
 * One pass on `db` (a connection of its own to the file, with busy_timeout RESTART_WAIT_MS):
 * copy what the log holds; past `restartPages`, restart it inside `holdWriter`, which runs its
 * argument with the writer held off (writer-gate.ts; as it is, on a connection without one).
 */
export function checkpointPass(
  db: Database.Database,
  restartPages: number,
  holdWriter: <T>(fn: () => T) => T = (fn) => fn(),
): PassResult {
  const first = checkpoint(db, 'PASSIVE');
  if (first.log < restartPages) return { log: first.log, restart: false, restarted: false };
  const restarted = holdWriter(() => checkpoint(db, 'RESTART')).busy === 0;
  return { log: first.log, restart: true, restarted };
}
