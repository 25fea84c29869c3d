// Batches security events to the SIEM (`POST /v1/events`, a JSON array, over mTLS). When the SIEM
// is unreachable or asks the reporter to wait (429 with Retry-After) the batch goes to the durable
// spool; spooled events are replayed first, in order. Every batch has an id (Edgeward-Batch-Id)
// from when it is formed until the SIEM accepted it, kept in the spool with its events: a batch
// sent again after a lost answer is stored once. A batch the SIEM refused unstored (413, 429) loses
// its id and may be formed again smaller.
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

/** The longest wait a Retry-After can impose (s): a SIEM asking for more is retried after this. */
export const MAX_RETRY_AFTER_S = 300;

/**
 * How long to wait after the SIEM asked for `retryAfter` seconds: at least that (at least 1 s, at
 * most MAX_RETRY_AFTER_S), plus up to a quarter of it more (at most 5 s), so that reporters refused
 * together do not come back together.
 */
export function retryDelayMs(retryAfter: number, random: () => number = Math.random): number {
  const s = Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil(retryAfter)));
  return s * 1000 + Math.floor(random() * Math.min(5000, s * 250));
}

/** Retry-After as seconds (delta-seconds or an HTTP-date, RFC 9110 10.2.3); undefined when absent or malformed. */
export function parseRetryAfter(v: string | string[] | undefined, now = Date.now()): number | undefined {
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  if (/^\d{1,10}$/.test(t)) return Number(t);
  if (t.length > 64 || !/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(t))
    return undefined;
  const at = Date.parse(t);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

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
  /** Jitter source for Retry-After waits (tests). */
  readonly random?: () => number;
}

export class Reporter implements EventSink {
  private queue: string[] = [];
  /** The batch being sent from the front of `queue`: its id and length (spooled with them on failure). */
  private sending: { readonly id: string; readonly count: number } | undefined;
  /** The spool's rows being sent (first and last seq), while they are. */
  private spooledSending: { readonly from: number; readonly to: number } | undefined;
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
  /** The same, by HTTP status. */
  readonly refusedByStatus = new Map<number, number>();
  /** 429 answers (the batch kept for later), by the SIEM's error code. */
  readonly throttled = new Map<string, number>();
  siemUp = true;
  /**
   * Events per batch now: batchMax, halved at each 429 or 413 (a batch bigger than the reporter's
   * whole budget, or than the SIEM's body limit, would be refused forever), doubled back at each
   * accepted batch.
   */
  private batchLimit: number;

  constructor(private readonly o: ReporterOptions) {
    this.batchLimit = o.batchMax;
  }

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
   * Sends a batch: 'sent', or 'dropped' when the SIEM refuses it for what it is (4xx other than
   * 408, 413 and 429: it would be refused forever and block every later event, so it is logged and
   * counted), or 'split' when it is too large (413): the batch size is halved and the same events go
   * again at once, smaller (a single event too large is dropped). Any other failure throws and the
   * batch stays for a retry.
   */
  private async sendOrDrop(batch: readonly EdgeEvent[], id: string): Promise<'sent' | 'dropped' | 'split'> {
    try {
      await this.o.send(batch, id);
      this.batchLimit = Math.min(this.o.batchMax, this.batchLimit * 2);
      return 'sent';
    } catch (err) {
      const status = statusOf(err);
      if (status === undefined || status < 400 || status >= 500 || status === 408 || status === 429)
        throw err;
      if (status === 413 && batch.length > 1) {
        this.batchLimit = Math.max(1, Math.floor(batch.length / 2));
        return 'split';
      }
      this.refused += batch.length;
      this.refusedByStatus.set(status, (this.refusedByStatus.get(status) ?? 0) + batch.length);
      this.o.log.error(
        { status, code: codeOf(err), events: batch.length },
        'the SIEM refused a batch of events: dropped',
      );
      return 'dropped';
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
        const next = this.o.spool.nextBatch(this.batchLimit);
        const first = next?.rows[0];
        const last = next?.rows[next.rows.length - 1];
        if (next === undefined || first === undefined || last === undefined) break;
        this.spooledSending = { from: first.seq, to: last.seq };
        const r = await this.sendOrDrop(
          next.rows.map((row) => JSON.parse(row.body) as EdgeEvent),
          next.id,
        );
        this.spooledSending = undefined;
        if (r === 'split') {
          // Refused as too large, so not stored: its rows may form smaller batches with new ids.
          this.o.spool.unname(first.seq, last.seq);
          continue;
        }
        if (r === 'sent') this.sent += next.rows.length;
        this.o.spool.ack(last.seq);
      }
      while (this.queue.length > 0) {
        const q = this.queue;
        const batch = q.slice(0, this.batchLimit);
        const sending = (this.sending = { id: newBatchId(), count: batch.length });
        const r = await this.sendOrDrop(
          batch.map((b) => JSON.parse(b) as EdgeEvent),
          sending.id,
        );
        // Spooled meanwhile (the memory bound): the spool has it under its id and sends it again,
        // which the SIEM answers as a duplicate.
        if (this.queue !== q) break;
        this.sending = undefined;
        if (r === 'split') continue;
        if (r === 'sent') this.sent += batch.length;
        q.splice(0, batch.length);
      }
      if (!this.siemUp) this.o.log.info('SIEM reachable again; spool drained');
      this.siemUp = true;
      this.backoff = 0;
    } catch (err) {
      const spooled = this.spooledSending;
      this.spooledSending = undefined;
      const status = statusOf(err);
      const retryAfter = err instanceof EdgewardError ? err.detail?.['retryAfter'] : undefined;
      if (status === 429) {
        // Reachable, but over its budget or its queue: the batch waits in the spool at least as
        // long as the SIEM asked, and goes again smaller (it may be larger than the whole budget).
        // Refused unstored, it keeps no id: it is formed again at the smaller size.
        if (spooled !== undefined) this.o.spool.unname(spooled.from, spooled.to);
        this.sending = undefined;
        // The label set stays small whatever codes a SIEM invents.
        let code = codeOf(err) ?? 'unknown';
        if (!this.throttled.has(code) && this.throttled.size >= 16) code = 'other';
        this.throttled.set(code, (this.throttled.get(code) ?? 0) + 1);
        this.batchLimit = Math.max(1, Math.floor(this.batchLimit / 2));
        const wait = retryDelayMs(typeof retryAfter === 'number' ? retryAfter : 1, this.o.random);
        this.o.log.warn(
          { code, retryAfter, waitMs: wait },
          'the SIEM asked the reporter to wait; spooling events',
        );
        this.backoff = 0;
        this.nextTry = Date.now() + wait;
      } else {
        if (this.siemUp) this.o.log.warn({ err }, 'SIEM unreachable; spooling events');
        this.siemUp = false;
        this.backoff = Math.min(30_000, Math.max(500, this.backoff * 2));
        // A replica that said when to come back (503 with Retry-After) is not asked sooner.
        this.nextTry =
          Date.now() +
          (typeof retryAfter === 'number'
            ? Math.max(this.backoff, retryDelayMs(retryAfter, this.o.random))
            : this.backoff);
      }
      this.spoolQueue();
    }
  }
}

function statusOf(err: unknown): number | undefined {
  const s = err instanceof EdgewardError ? err.detail?.['status'] : undefined;
  return typeof s === 'number' ? s : undefined;
}

function codeOf(err: unknown): string | undefined {
  const c = err instanceof EdgewardError ? err.detail?.['code'] : undefined;
  return typeof c === 'string' ? c : undefined;
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
        const s = res.statusCode ?? 0;
        // A refusal's coded body is small; more than this is not read.
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (s >= 200 && s < 300) return;
          if (size < 4096) chunks.push(c);
          size += c.length;
        });
        res.on('end', () => {
          if (s >= 200 && s < 300) return resolve();
          const detail: Record<string, unknown> = { status: s };
          const code = codeIn(Buffer.concat(chunks).subarray(0, 4096));
          if (code !== undefined) detail['code'] = code;
          const retryAfter = parseRetryAfter(res.headers['retry-after']);
          if (retryAfter !== undefined) detail['retryAfter'] = retryAfter;
          reject(
            new EdgewardError('ERR_AGENT_SIEM', `SIEM answered ${s}${code ? ` ${code}` : ''}`, { detail }),
          );
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

/** The `code` of the SIEM's fixed error shape, when the body is one (anything else: undefined). */
function codeIn(body: Buffer): string | undefined {
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    const c = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)['code'] : undefined;
    return typeof c === 'string' && /^ERR_[A-Z0-9_]{1,64}$/.test(c) ? c : undefined;
  } catch {
    return undefined;
  }
}
