// The ingest pipeline: a bounded queue of validated batches, committed to the store in group
// transactions (concurrent requests share one commit), acknowledged only after the commit, then
// correlated and handed to the response engine.
import type { EdgeEvent } from '../../common/events.js';
import { EdgewardError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { Alert, Correlator } from '../correlate/index.js';
import type { SiemStore } from '../store/index.js';

export interface IngestOptions {
  readonly store: SiemStore;
  readonly correlator: Correlator;
  /** Events waiting for a commit beyond which new batches get 429 (memory stays bounded). */
  readonly maxQueuedEvents?: number;
  /** Largest group commit (events); more waits for the next transaction. */
  readonly maxCommitEvents?: number;
  readonly log: Logger;
  /** Called with the alerts of each committed group (after the batch was acknowledged). */
  readonly onAlerts: (alerts: Alert[]) => void;
  readonly onCommitted?: (events: readonly EdgeEvent[]) => void;
}

interface Waiting {
  readonly events: readonly EdgeEvent[];
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

export class IngestPipeline {
  readonly #o: IngestOptions;
  readonly #maxQueued: number;
  readonly #maxCommit: number;
  #queue: Waiting[] = [];
  #queued = 0;
  #scheduled = false;
  #closed = false;
  /** Commits (transactions) and events committed, for metrics and the bench. */
  commits = 0;
  committed = 0;

  constructor(o: IngestOptions) {
    this.#o = o;
    this.#maxQueued = o.maxQueuedEvents ?? 100_000;
    this.#maxCommit = o.maxCommitEvents ?? 20_000;
  }

  get queued(): number {
    return this.#queued;
  }

  /** Would a batch of n events fit now? (Checked before reading a body, and again on submit.) */
  hasRoom(n: number): boolean {
    return this.#queued + n <= this.#maxQueued;
  }

  /** Resolves once the batch is durably committed; rejects with ERR_SIEM_OVERLOADED when full. */
  submit(events: readonly EdgeEvent[]): Promise<void> {
    if (this.#closed) return Promise.reject(new EdgewardError('ERR_SIEM_UNAVAILABLE'));
    if (events.length === 0) return Promise.resolve();
    if (!this.hasRoom(events.length)) return Promise.reject(new EdgewardError('ERR_SIEM_OVERLOADED'));
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ events, resolve, reject });
      this.#queued += events.length;
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // setImmediate: every request parsed in this turn of the event loop joins the same commit.
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    if (this.#queue.length === 0) return;
    const group: Waiting[] = [];
    let n = 0;
    while (
      this.#queue.length > 0 &&
      (group.length === 0 || n + (this.#queue[0] as Waiting).events.length <= this.#maxCommit)
    ) {
      const w = this.#queue.shift() as Waiting;
      group.push(w);
      n += w.events.length;
    }
    const events: EdgeEvent[] = [];
    for (const w of group) for (const e of w.events) events.push(e);
    try {
      this.#o.store.insertEvents(events);
    } catch (err) {
      this.#queued -= n;
      this.#o.log.error({ err, events: n }, 'event commit failed; batches refused');
      for (const w of group) w.reject(err);
      if (this.#queue.length > 0) this.#schedule();
      return;
    }
    this.#queued -= n;
    this.commits++;
    this.committed += n;
    for (const w of group) w.resolve();
    if (this.#queue.length > 0) this.#schedule();
    this.#o.onCommitted?.(events);
    let alerts: Alert[];
    try {
      alerts = this.#o.correlator.feed(events);
    } catch (err) {
      // The events are stored; a correlation bug must not take ingest down with it.
      this.#o.log.error({ err }, 'correlation failed for a committed group');
      return;
    }
    if (alerts.length > 0) this.#o.onAlerts(alerts);
  }

  /** Refuses new batches and commits what is queued. */
  close(): void {
    this.#closed = true;
    while (this.#queue.length > 0) this.#flush();
  }
}
