// The gate between the ingest writer thread and the other users of the events file's write lock
// (the store's own connection, the checkpointer's RESTART). The writer is busy nearly all the time
// under load and takes the lock again at once after each commit, so SQLite's busy handler, which
// retries after sleeps of 1 to 100 ms, would rarely find it free. Instead a side that needs the
// lock raises WANT: the writer starts no new transaction while WANT > 0, and clears BUSY (waking
// the side) when the transaction it is in ends. The side then finds the lock free.

/** Slot: how many sides want the lock (> 0 holds the writer off). */
export const WANT = 0;
/** Slot: 1 while the writer thread is inside a transaction. */
export const BUSY = 1;

export const newGate = (): Int32Array => new Int32Array(new SharedArrayBuffer(8));

/**
 * Runs `fn` once the writer is out of its transaction (or after `waitMs` regardless), with the
 * writer held off until it returns. Each side sets its own flag before it reads the other's, so
 * the writer and `fn` never both go ahead.
 */
export function holdWriter<T>(gate: Int32Array, waitMs: number, fn: () => T): T {
  Atomics.add(gate, WANT, 1);
  try {
    const deadline = performance.now() + waitMs;
    for (;;) {
      const left = deadline - performance.now();
      if (Atomics.load(gate, BUSY) === 0 || left <= 0) break;
      Atomics.wait(gate, BUSY, 1, left);
    }
    return fn();
  } finally {
    Atomics.sub(gate, WANT, 1);
    Atomics.notify(gate, WANT);
  }
}

/** The writer's side: waits until no one wants the lock, then marks itself inside a transaction. */
export function enterGate(gate: Int32Array): void {
  for (;;) {
    for (let v = Atomics.load(gate, WANT); v !== 0; v = Atomics.load(gate, WANT))
      Atomics.wait(gate, WANT, v, 50);
    Atomics.store(gate, BUSY, 1);
    if (Atomics.load(gate, WANT) === 0) return;
    leaveGate(gate); // asked meanwhile: that side goes first
  }
}

/** The writer's side: out of its transaction; wakes a side waiting in holdWriter. */
export function leaveGate(gate: Int32Array): void {
  Atomics.store(gate, BUSY, 0);
  Atomics.notify(gate, BUSY);
}

/**
 * After the writer thread died: clears both slots. It may have died inside a transaction (BUSY),
 * and its checkpointer, which dies with it, inside holdWriter (WANT): otherwise the next writer
 * thread would wait for ever. Only from the thread that owns the gate, never inside holdWriter.
 */
export function resetGate(gate: Int32Array): void {
  Atomics.store(gate, WANT, 0);
  Atomics.store(gate, BUSY, 0);
  Atomics.notify(gate, WANT);
}
