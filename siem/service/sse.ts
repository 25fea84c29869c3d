// The decision stream over server-sent events (text/event-stream): a DecisionPublisher that keeps
// one Subscriber per open stream, writes each its first frames (a snapshot or the delta since its
// revision, then `ready`) in order with the hub's changes, then every delta that follows what it
// holds, and heartbeats. A subscriber that falls behind or out of order is dropped (it resyncs on
// reconnect). Data lines never hold a newline: a compact JWS and our JSON are single-line by
// construction, and checked here.
import { EdgewardError } from '../../common/errors.js';
import type { AgentLedger } from './agents.js';
import type { DecisionMessage, DecisionPublisher, Signed } from './hub.js';

export function sseFrame(event: string, data: string, id?: number): string {
  if (/[\r\n]/.test(data) || /[\r\n]/.test(event)) throw new TypeError('SSE data must be one line');
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${data}\n\n`;
}

export function sseComment(text: string): string {
  return `: ${text.replace(/[\r\n]/g, ' ')}\n\n`;
}

/** The resume point: `?from=REV`, else the `Last-Event-ID` header, else none (a snapshot). */
export function resumeRevision(query: string | undefined, lastEventId: string | undefined): number | null {
  const pick = query ?? lastEventId;
  if (pick === undefined || pick === '') return null;
  if (!/^\d{1,15}$/.test(pick)) return NaN;
  return Number(pick);
}

/** One open stream. `sent` is the revision the subscriber holds after what we wrote. */
export interface Subscriber {
  readonly identity: string;
  sent: number;
  /** Writes a frame; false when the subscriber is too far behind (it is then closed). */
  send(frame: string): boolean;
  close(): void;
}

/** What the streams need of the decision hub. */
export interface StreamSource {
  readonly revision: number;
  readonly kid: string;
  readonly ledger: AgentLedger;
  signedSince(from: number | null): Promise<Signed>;
  inOrder<T>(fn: () => Promise<T>): Promise<T>;
}

export interface SseStreamsOptions {
  readonly hub: StreamSource;
  readonly now: () => number;
  /** Open streams at most (default 20,000). */
  readonly maxSubscribers?: number;
}

export class SseStreams implements DecisionPublisher {
  private readonly o: SseStreamsOptions;
  private readonly subs = new Set<Subscriber>();
  /** Subscribers dropped for being slow or out of order. */
  dropped = 0;

  constructor(o: SseStreamsOptions) {
    this.o = o;
  }

  get subscribers(): number {
    return this.subs.size;
  }

  /**
   * Adds a stream subscriber: its first frames (snapshot or delta, then `ready`) are written in
   * the same order as the changes, so it never sees a delta that does not follow what it holds.
   */
  subscribe(s: Subscriber, from: number | null): Promise<void> {
    if (this.subs.size >= (this.o.maxSubscribers ?? 20_000)) {
      return Promise.reject(new EdgewardError('ERR_SIEM_STREAM_LIMIT'));
    }
    const hub = this.o.hub;
    return hub.inOrder(async () => {
      const first = await hub.signedSince(from);
      s.sent = first.revision;
      if (first.kind !== 'current' && !s.send(sseFrame(first.kind, first.jws as string, first.revision)))
        return s.close();
      if (!s.send(sseFrame('ready', JSON.stringify({ revision: s.sent, kid: hub.kid })))) return s.close();
      this.subs.add(s);
      hub.ledger.connect(s.identity, this.o.now());
    });
  }

  unsubscribe(s: Subscriber): void {
    if (this.subs.delete(s)) this.o.hub.ledger.disconnect(s.identity, this.o.now());
  }

  publish(m: DecisionMessage): void {
    const frame = sseFrame(m.kind, m.jws, m.revision);
    for (const s of this.subs) {
      if (s.sent >= m.revision) continue; // it got a snapshot or delta at or past this already
      if (s.sent !== m.from) {
        this.drop(s); // cannot happen in order; a reconnect resyncs it
        continue;
      }
      s.sent = m.revision;
      if (!s.send(frame)) this.drop(s);
    }
  }

  resync(): void {
    for (const s of [...this.subs]) this.drop(s);
  }

  heartbeat(): void {
    const frame = sseComment(`hb ${this.o.hub.revision}`);
    for (const s of this.subs) if (!s.send(frame)) this.drop(s);
  }

  close(): void {
    for (const s of [...this.subs]) {
      this.unsubscribe(s);
      s.close();
    }
  }

  private drop(s: Subscriber): void {
    this.unsubscribe(s);
    this.dropped++;
    s.close();
  }
}
