// Ingest over the bus: an accepted batch is published to JetStream, whole on the batch subject
// (for the event store) and, event by event, on the subjects of the correlation shards that own
// the groups it touches; the reporter's acknowledgement waits for JetStream's. Each message carries
// a Nats-Msg-Id made from the batch's name (from the reporter's batch id, or else its body), so a
// batch retried on another replica within the dedupe window is stored once, and answered as a
// duplicate when JetStream found every message of it a duplicate.
import { randomUUID } from 'node:crypto';
import type { PubAck } from 'nats';
import type { EdgeEvent } from '../../common/events.js';
import type { BatchOutcome } from '../store/index.js';
import { EdgewardError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { EventIngest } from '../service/ingest.js';
import type { Bus } from './connect.js';
import { shardOf } from './layout.js';

export interface BusIngestOptions {
  readonly bus: Bus;
  /** The (rule, group) routes of an event: the correlator's `routes`. */
  readonly routes: (e: EdgeEvent) => readonly string[];
  /** Events being published at once, beyond which new batches get 429. */
  readonly maxQueuedEvents?: number;
  /** How long JetStream may take to acknowledge (ms, default 5 s); then 503. */
  readonly publishTimeoutMs?: number;
  readonly log: Logger;
}

/** Room left under the server's max_payload for headers and framing. */
const PAYLOAD_MARGIN = 4096;

/** Splits encoded events into JSON arrays of at most `max` bytes each (one event may exceed it alone). */
export function chunkEvents(encoded: readonly string[], max: number): string[] {
  const out: string[] = [];
  let cur: string[] = [];
  let size = 2;
  for (const s of encoded) {
    const n = Buffer.byteLength(s) + 1;
    if (cur.length > 0 && size + n > max) {
      out.push(`[${cur.join(',')}]`);
      cur = [];
      size = 2;
    }
    cur.push(s);
    size += n;
  }
  if (cur.length > 0) out.push(`[${cur.join(',')}]`);
  return out;
}

export class BusIngest implements EventIngest {
  private readonly o: BusIngestOptions;
  private readonly maxQueued: number;
  private inFlight = 0;
  private closed = false;
  private readonly pending = new Set<Promise<unknown>>();
  /** Batches and events published (acknowledged by JetStream), and batches JetStream found duplicate. */
  published = 0;
  duplicates = 0;

  constructor(o: BusIngestOptions) {
    this.o = o;
    this.maxQueued = o.maxQueuedEvents ?? 100_000;
  }

  get queued(): number {
    return this.inFlight;
  }

  hasRoom(n: number): boolean {
    return this.inFlight + n <= this.maxQueued;
  }

  submit(events: readonly EdgeEvent[], name?: string): Promise<BatchOutcome> {
    if (this.closed) return Promise.reject(new EdgewardError('ERR_SIEM_UNAVAILABLE'));
    if (events.length === 0) return Promise.resolve({ duplicate: false, accepted: 0 });
    if (!this.o.bus.up()) return Promise.reject(new EdgewardError('ERR_SIEM_BUS_UNAVAILABLE'));
    if (!this.hasRoom(events.length)) return Promise.reject(new EdgewardError('ERR_SIEM_OVERLOADED'));
    this.inFlight += events.length;
    const p = this.publish(events, name ?? randomUUID()).finally(() => {
      this.inFlight -= events.length;
      this.pending.delete(p);
    });
    this.pending.add(p);
    return p;
  }

  private async publish(events: readonly EdgeEvent[], key: string): Promise<BatchOutcome> {
    const { bus } = this.o;
    const l = bus.layout;
    const max = Math.max(1024, bus.nc.info?.max_payload ?? 1024 * 1024) - PAYLOAD_MARGIN;
    const encoded = events.map((e) => JSON.stringify(e));
    const byShard = new Map<number, string[]>();
    for (let i = 0; i < events.length; i++) {
      const shards = new Set<number>();
      for (const r of this.o.routes(events[i] as EdgeEvent)) shards.add(shardOf(r, l.shards));
      for (const k of shards) {
        let list = byShard.get(k);
        if (list === undefined) byShard.set(k, (list = []));
        list.push(encoded[i] as string);
      }
    }
    const sends: Promise<PubAck>[] = [];
    const timeout = this.o.publishTimeoutMs ?? 5_000;
    const send = (subject: string, id: string, body: string): void => {
      sends.push(bus.js.publish(subject, body, { msgID: id, timeout }));
    };
    chunkEvents(encoded, max).forEach((b, i) => send(l.batchSubject, `${key}.b${i}`, b));
    for (const [k, list] of byShard)
      chunkEvents(list, max).forEach((b, i) => send(l.corrSubject(k), `${key}.c${k}.${i}`, b));
    let acks: PubAck[];
    try {
      acks = await Promise.all(sends);
    } catch (cause) {
      this.o.log.warn({ err: cause, events: events.length }, 'the bus did not acknowledge a batch');
      throw new EdgewardError('ERR_SIEM_BUS_UNAVAILABLE', 'the bus did not acknowledge the batch', { cause });
    }
    this.published++;
    const duplicate = acks.every((a) => a.duplicate);
    if (duplicate) this.duplicates++;
    return { duplicate, accepted: events.length };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.pending]);
  }
}
