// Batches security events to the SIEM (`POST /v1/events`, a JSON array, over mTLS). When the SIEM
// is unreachable the batch goes to the durable spool; spooled events are replayed first, in order.
// Every batch has an id (Edgeward-Batch-Id) from when it is formed until the SIEM accepted it, kept
// in the spool with its events: a batch sent again after a lost answer is stored once.
import * as https from 'node:https';
import type { SecureContext } from 'node:tls';
import type { Logger } from '../common/log.js';
import { EdgewardError } from '../common/errors.js';
import { validateEvent, type EdgeEvent } from '../common/events.js';
import { newBatchId, type Spool } from './spool.js';
import { poolFor, tlsOptions } from './https-client.js';
import { replicasFor, type ServiceUrls } from './replicas.js';

export interface EventSink {
  emit(event: EdgeEvent): void;
}

/**
 * Sends one batch under its id (the same id for every try of the same batch); resolves when the
 * SIEM accepted it (stored now or before), rejects otherwise.
 */
export type BatchSender = (batch: readonly EdgeEvent[], id: string) => Promise<void>;

export interface ReporterOptions {
  readonly spool: Spool;
  readonly send: BatchSender;
  readonly batchMax: number;
  readonly flushInterval: number;
  /** In-memory events awaiting a flush; beyond this they go straight to the spool. */
  readonly memoryMax?: number;
  readonly log: Logger;
  /** Called for every event accepted (tests, metrics). */
  readonly onEvent?: (e: EdgeEvent) => void;
}

export class Reporter implements EventSink {
  private queue: string[] = [];
  /** The batch being sent from the front of `queue`: its id and length (spooled with them on failure). */
  private sending: { readonly id: string; readonly count: number } | undefined;
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private stopped = false;
  /** Retry backoff while the SIEM is down (ms). */
  private backoff = 0;
  private nextTry = 0;
  sent = 0;
  invalid = 0;
  /** Events the SIEM refused as invalid (4xx): dropped so they cannot block the spool. */
  refused = 0;
  siemUp = true;

  constructor(private readonly o: ReporterOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.o.flushInterval);
    this.timer.unref();
    void this.flush();
  }

  emit(event: EdgeEvent): void {
    let clean: EdgeEvent;
    try {
      clean = validateEvent(event);
    } catch (err) {
      this.invalid += 1;
      this.o.log.warn(
        { err, action: event['event.action'] },
        'dropping an event that does not fit the schema',
      );
      return;
    }
    this.o.onEvent?.(clean);
    const body = JSON.stringify(clean);
    if (this.stopped) {
      this.o.spool.append([body]);
      return;
    }
    this.queue.push(body);
    if (this.queue.length >= (this.o.memoryMax ?? 10_000)) this.spoolQueue();
    else if (this.queue.length >= this.o.batchMax) void this.flush();
  }

  /** Sends what is spooled, then what is queued; on failure everything queued lands in the spool. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.flushing = this.doFlush().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  /** Stops the timer and spools whatever is still in memory (nothing is lost on a clean stop). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.flushing;
    this.spoolQueue();
  }

  private spoolQueue(): void {
    if (this.queue.length === 0) return;
    const q = this.queue;
    const head = this.sending;
    this.queue = [];
    this.sending = undefined;
    // The batch being sent keeps its id: if the SIEM stored it and the answer is lost, the copy
    // sent from the spool is recognised as the same batch.
    const split = head?.count ?? 0;
    let n = head !== undefined ? this.o.spool.append(q.slice(0, split), head.id) : 0;
    n += this.o.spool.append(split > 0 ? q.slice(split) : q);
    if (n < q.length) this.o.log.error({ dropped: q.length - n }, 'event spool full: events dropped');
  }

  /**
   * Sends a batch. A batch the SIEM refuses for what it is (4xx other than 408/429) would be
   * refused forever and block every later event, so it is dropped, logged and counted; any
   * other failure throws and the batch stays for a retry.
   */
  private async sendOrDrop(batch: readonly EdgeEvent[], id: string): Promise<boolean> {
    try {
      await this.o.send(batch, id);
      return true;
    } catch (err) {
      const status =
        err instanceof EdgewardError ? (err.detail?.['status'] as number | undefined) : undefined;
      if (status === undefined || status < 400 || status >= 500 || status === 408 || status === 429)
        throw err;
      this.refused += batch.length;
      this.o.log.error({ status, events: batch.length }, 'the SIEM refused a batch of events: dropped');
      return false;
    }
  }

  private async doFlush(): Promise<void> {
    if (Date.now() < this.nextTry) {
      // Still backing off: what came in meanwhile goes to disk, behind what is already there.
      this.spoolQueue();
      return;
    }
    try {
      while (this.o.spool.size > 0) {
        const next = this.o.spool.nextBatch(this.o.batchMax);
        const last = next?.rows[next.rows.length - 1];
        if (next === undefined || last === undefined) break;
        const { id, rows } = next;
        if (
          await this.sendOrDrop(
            rows.map((r) => JSON.parse(r.body) as EdgeEvent),
            id,
          )
        )
          this.sent += rows.length;
        this.o.spool.ack(last.seq);
      }
      while (this.queue.length > 0) {
        const q = this.queue;
        const batch = q.slice(0, this.o.batchMax);
        const sending = (this.sending = { id: newBatchId(), count: batch.length });
        const ok = await this.sendOrDrop(
          batch.map((b) => JSON.parse(b) as EdgeEvent),
          sending.id,
        );
        // Spooled meanwhile (the memory bound): the spool has it under its id and sends it again,
        // which the SIEM answers as a duplicate.
        if (this.queue !== q) break;
        this.sending = undefined;
        if (ok) this.sent += batch.length;
        q.splice(0, batch.length);
      }
      if (!this.siemUp) this.o.log.info('SIEM reachable again; spool drained');
      this.siemUp = true;
      this.backoff = 0;
    } catch (err) {
      if (this.siemUp) this.o.log.warn({ err }, 'SIEM unreachable; spooling events');
      this.siemUp = false;
      this.backoff = Math.min(30_000, Math.max(500, this.backoff * 2));
      this.nextTry = Date.now() + this.backoff;
      this.spoolQueue();
    }
  }
}

export interface HttpsSenderOptions {
  /** The SIEM's URL, or its replicas' URLs: a batch goes to the next when one is down. */
  readonly url: ServiceUrls;
  /** The SIEM's SPIFFE ID, checked against its certificate's one URI SAN. */
  readonly expect: string;
  readonly context: () => SecureContext;
  readonly timeout?: number;
}

/**
 * The production sender: one HTTPS POST per batch, mTLS with the reporter's current identity. With
 * several SIEM URLs a batch that meets a replica down (refused, timed out, 502/503/504) is sent to
 * the next one at once; only when every replica is down does it fail (and the reporter spools it).
 */
export function httpsBatchSender(o: HttpsSenderOptions): BatchSender {
  const replicas = replicasFor(o.url);
  return (batch, id) => {
    const body = Buffer.from(JSON.stringify(batch));
    return replicas.call((url) => postBatch(o, url, body, id));
  };
}

function postBatch(o: HttpsSenderOptions, url: string, body: Buffer, id: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const ctx = o.context();
    const req = https.request(
      `${url}/v1/events`,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': body.length,
          'edgeward-batch-id': id,
        },
        ...tlsOptions(ctx, o.expect),
        agent: poolFor(ctx),
        timeout: o.timeout ?? 10_000,
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          const s = res.statusCode ?? 0;
          if (s >= 200 && s < 300) resolve();
          else reject(new EdgewardError('ERR_AGENT_SIEM', `SIEM answered ${s}`, { detail: { status: s } }));
        });
      },
    );
    req.on('timeout', () =>
      req.destroy(new EdgewardError('ERR_AGENT_SIEM', 'SIEM timed out', { detail: { timeout: true } })),
    );
    req.on('error', (cause) =>
      reject(
        cause instanceof EdgewardError ? cause : new EdgewardError('ERR_AGENT_SIEM', undefined, { cause }),
      ),
    );
    req.end(body);
  });
}
