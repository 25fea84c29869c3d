// The ingest pipeline: a bounded queue of validated batches, committed by the event writer (its
// own connection, on a second thread) in group transactions: while one group commits, the next
// requests queue up and go together in the next one, so groups grow with the load. A batch is
// acknowledged only after its group's commit; groups are then correlated in commit order and
// their alerts handed to the response engine.
import type { EdgeEvent } from '../../common/events.js';
import { EdgewardError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { Alert, Correlator } from '../correlate/index.js';
import type { BatchKey, BatchOutcome, EventBatch, EventWriter } from '../store/index.js';

export interface IngestOptions {
  readonly writer: EventWriter;
  readonly correlator: Correlator;
  /**
   * Events accepted and not yet committed and correlated, beyond which new batches get 429
   * (memory stays bounded).
   */
  readonly maxQueuedEvents?: number;
  /**
   * Largest group commit (events); more waits for the next transaction. The store's other writes
   * (decisions, alerts, audit) wait for the group being committed, so this bounds their wait too.
   */
  readonly maxCommitEvents?: number;
  readonly log: Logger;
  /**
   * Called with the alerts of each committed group (after the batch was acknowledged), in commit
   * order; `close` waits for the promises it returns.
   */
  readonly onAlerts: (alerts: Alert[]) => void | Promise<void>;
  readonly onCommitted?: (events: readonly EdgeEvent[]) => void;
  /** Called once per group commit with its size (metrics). */
  readonly onGroupCommit?: (events: number) => void;
}

interface Waiting {
  readonly events: readonly EdgeEvent[];
  readonly batch: EventBatch;
  readonly resolve: (o: BatchOutcome) => void;
  readonly reject: (err: unknown) => void;
}

/** What the events route hands accepted batches to: the in-process pipeline, or the bus. */
export interface EventIngest {
  /** Events accepted and not yet durable and handed on. */
  readonly queued: number;
  /** Would a batch of n events fit now? */
  hasRoom(n: number): boolean;
  /**
   * Resolves once the batch is durable. `name` names the batch on the bus (Nats-Msg-Id); `key` is
   * the reporter's batch id, which the store keeps with the batch. A batch whose name or key was
   * stored already is answered as a duplicate and not stored (nor correlated) again.
   */
  submit(events: readonly EdgeEvent[], name?: string, key?: BatchKey): Promise<BatchOutcome>;
  close(): Promise<void>;
}

export class IngestPipeline implements EventIngest {
  private readonly o: IngestOptions;
  private readonly maxQueued: number;
  private readonly maxCommit: number;
  private queue: Waiting[] = [];
  private queuedEvents = 0;
  private scheduled = false;
  private inFlight: Promise<void> | undefined;
  /** Committed groups not yet correlated, in commit order. */
  private readonly toCorrelate: EdgeEvent[][] = [];
  private correlating = false;
  /** Alert handling not yet finished (close waits for it). */
  private readonly handling = new Set<Promise<void>>();
  private closed = false;
  /** Commits (transactions) and events committed, for metrics and the bench. */
  commits = 0;
  committed = 0;

  constructor(o: IngestOptions) {
    this.o = o;
    this.maxQueued = o.maxQueuedEvents ?? 100_000;
    this.maxCommit = o.maxCommitEvents ?? 10_000;
  }

  /** Events accepted and not yet committed and correlated. */
  get queued(): number {
    return this.queuedEvents;
  }

  /** Would a batch of n events fit now? (Checked before reading a body, and again on submit.) */
  hasRoom(n: number): boolean {
    return this.queuedEvents + n <= this.maxQueued;
  }

  /**
   * Resolves once the batch is durably committed (or found stored already under its key);
   * rejects with ERR_SIEM_OVERLOADED when full.
   */
  submit(events: readonly EdgeEvent[], _name?: string, key?: BatchKey): Promise<BatchOutcome> {
    if (this.closed) return Promise.reject(new EdgewardError('ERR_SIEM_UNAVAILABLE'));
    if (events.length === 0) return Promise.resolve({ duplicate: false, accepted: 0 });
    if (!this.hasRoom(events.length)) return Promise.reject(new EdgewardError('ERR_SIEM_OVERLOADED'));
    let batch: EventBatch;
    try {
      batch = this.o.writer.prepare(events, key);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new TypeError(String(err)));
    }
    return new Promise<BatchOutcome>((resolve, reject) => {
      this.queue.push({ events, batch, resolve, reject });
      this.queuedEvents += events.length;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight !== undefined) return;
    this.scheduled = true;
    // setImmediate: every request parsed in this turn of the event loop joins the same commit.
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  /** Sends the next group to the writer, unless one is being committed. */
  private flush(): void {
    if (this.inFlight !== undefined || this.queue.length === 0) return;
    const group: Waiting[] = [];
    let n = 0;
    while (
      this.queue.length > 0 &&
      (group.length === 0 || n + (this.queue[0] as Waiting).events.length <= this.maxCommit)
    ) {
      const w = this.queue.shift() as Waiting;
      group.push(w);
      n += w.events.length;
    }
    this.inFlight = this.o.writer
      .write(group.map((w) => w.batch))
      .then(
        (outcomes) => this.onCommitted(group, n, outcomes),
        (err: unknown) => this.onFailed(group, n, err),
      )
      .catch((err: unknown) => this.o.log.error({ err }, 'ingest pipeline failed after a commit'));
  }

  private onCommitted(group: readonly Waiting[], n: number, outcomes: readonly BatchOutcome[]): void {
    this.inFlight = undefined;
    // Duplicates were not stored: they are neither counted nor correlated again.
    const events: EdgeEvent[] = [];
    group.forEach((w, i) => {
      if (outcomes[i]?.duplicate === true) return;
      for (const e of w.events) events.push(e);
    });
    // Still counted in `queued` until correlated: memory stays bounded if correlation lags.
    this.queuedEvents -= n - events.length;
    this.commits++;
    this.committed += events.length;
    this.o.onGroupCommit?.(events.length);
    group.forEach((w, i) => w.resolve(outcomes[i] ?? { duplicate: false, accepted: w.events.length }));
    // The writer gets the requests that queued during this commit at once; this group is
    // correlated on the next turn, after its acknowledgements are on their way.
    this.flush();
    if (events.length === 0) return;
    this.toCorrelate.push(events);
    if (!this.correlating) {
      this.correlating = true;
      setImmediate(() => this.correlate());
    }
  }

  private onFailed(group: readonly Waiting[], n: number, err: unknown): void {
    this.inFlight = undefined;
    this.queuedEvents -= n;
    this.o.log.error({ err, events: n }, 'event commit failed; batches refused');
    for (const w of group) w.reject(err);
    this.flush();
  }

  private correlate(): void {
    // One group per turn of the event loop: requests that arrived meanwhile are parsed in
    // between, so the writer's next group fills sooner.
    const events = this.toCorrelate.shift();
    if (events !== undefined) {
      try {
        this.o.onCommitted?.(events);
      } catch (err) {
        this.o.log.error({ err }, 'a committed-events listener failed');
      }
      let alerts: Alert[] = [];
      try {
        alerts = this.o.correlator.feed(events);
      } catch (err) {
        // The events are stored; a correlation bug must not take ingest down with it.
        this.o.log.error({ err }, 'correlation failed for a committed group');
      }
      if (alerts.length > 0) {
        const failed = (err: unknown): void =>
          this.o.log.error({ err }, 'alert handling failed for a committed group');
        try {
          const handled = this.o.onAlerts(alerts);
          if (handled instanceof Promise) {
            const p = handled.catch(failed).finally(() => this.handling.delete(p));
            this.handling.add(p);
          }
        } catch (err) {
          failed(err);
        }
      }
      this.queuedEvents -= events.length;
    }
    if (this.toCorrelate.length > 0) setImmediate(() => this.correlate());
    else this.correlating = false;
  }

  /** Refuses new batches, commits what is queued and correlates it. */
  async close(): Promise<void> {
    this.closed = true;
    for (;;) {
      if (this.inFlight !== undefined) await this.inFlight;
      else if (this.queue.length > 0) this.flush();
      else break;
    }
    while (this.toCorrelate.length > 0) this.correlate();
    while (this.handling.size > 0) await Promise.all(this.handling);
  }
}
