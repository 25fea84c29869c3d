// One correlation shard: holds the shard's lease (a key in a KV bucket whose entries expire, so a
// worker that dies is replaced within the lease time), rebuilds the shard's groups by replaying
// the shard subject from its checkpoint minus the longest window, then correlates what arrives and
// publishes the alerts with their deterministic ids as Nats-Msg-Id (a re-raised alert is stored
// once). The checkpoint moves only past messages whose alerts JetStream has acknowledged.
import { createHash } from 'node:crypto';
import { AckPolicy, DeliverPolicy, headers, nanos, type ConsumerMessages, type JsMsg, type KV } from 'nats';
import { validateEvent, type EdgeEvent } from '../../common/events.js';
import { EdgewardError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { RuleSet } from '../../policies/rules/index.js';
import { Correlator, DEFAULT_OPTIONS, type Alert, type CorrelatorOptions } from '../correlate/index.js';
import type { Bus } from './connect.js';
import { ROUTE_SEP, shardOf } from './layout.js';

export interface CorrelationWorkerOptions {
  readonly bus: Bus;
  readonly shard: number;
  readonly rules: RuleSet;
  readonly correlator?: CorrelatorOptions;
  /** This worker's name in the lease (host, pid). */
  readonly holder: string;
  readonly log: Logger;
  /** Each alert once JetStream acknowledged it (metrics, tests). */
  readonly onAlert?: (alert: Alert, duplicate: boolean) => void;
  /** How often the checkpoint is written (ms, default 1 s). */
  readonly checkpointEveryMs?: number;
}

interface Checkpoint {
  readonly seq: number;
  /** The stream time of that message (ms). */
  readonly time: number;
}

/** A bus message's JSON (strict UTF-8); `ERR_SIEM_BUS_MESSAGE` saying `refusal` when it is not. */
export function busJson(data: Uint8Array, refusal: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch (cause) {
    throw new EdgewardError('ERR_SIEM_BUS_MESSAGE', refusal, { cause });
  }
}

/** Parses a message of a corr or batch subject: a JSON array of event objects. */
export function parseEventMessage(data: Uint8Array): EdgeEvent[] {
  const v = busJson(data, 'not a JSON event array');
  if (!Array.isArray(v)) throw new EdgewardError('ERR_SIEM_BUS_MESSAGE', 'not a JSON event array');
  return v.map((e, i) => {
    try {
      const ev = validateEvent(e, { mode: 'stored' });
      if (typeof ev['event.id'] !== 'string') throw new TypeError('no event.id');
      return ev;
    } catch (cause) {
      throw new EdgewardError('ERR_SIEM_BUS_MESSAGE', `event ${i} is not a stored event`, { cause });
    }
  });
}

/**
 * The header that marks a message of a corr subject as chain events: inner alerts of the named
 * correlation, raised on another shard, for the outer correlations this shard keeps. Only
 * correlation workers publish it (ingest publishes event arrays without headers).
 */
export const CHAIN_HEADER = 'Edgeward-Chain';
const MAX_CHAIN_EVENTS = 256;

/** Parses chain events (inner alerts as outer events, see `Correlator.feedChained`). */
export function parseChainMessage(data: Uint8Array, inner: string): EdgeEvent[] {
  const v = busJson(data, 'chain events are not JSON');
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_CHAIN_EVENTS)
    throw new EdgewardError('ERR_SIEM_BUS_MESSAGE', `not an array of 1-${MAX_CHAIN_EVENTS} chain events`);
  for (const e of v as unknown[]) {
    const r = e as Record<string, unknown> | null;
    if (
      typeof r !== 'object' ||
      r === null ||
      Array.isArray(r) ||
      !Number.isFinite(r['@timestamp']) ||
      typeof r['event.id'] !== 'string' ||
      r['event.action'] !== 'siem.correlation' ||
      r['rule.id'] !== inner ||
      !Object.values(r).every((x) => typeof x === 'string' || Number.isFinite(x))
    )
      throw new EdgewardError('ERR_SIEM_BUS_MESSAGE', `not a chain event of ${inner.slice(0, 80)}`);
  }
  return v as EdgeEvent[];
}

interface Forwarded {
  readonly route: string;
  readonly inner: string;
  readonly event: EdgeEvent;
}

function parseCheckpoint(v: Uint8Array): Checkpoint | undefined {
  try {
    const c = JSON.parse(new TextDecoder().decode(v)) as Partial<Checkpoint>;
    if (Number.isSafeInteger(c.seq) && Number.isFinite(c.time)) return c as Checkpoint;
  } catch {
    // An unreadable checkpoint is no checkpoint: the shard replays what the stream holds.
  }
  return undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

export class CorrelationWorker {
  private readonly o: CorrelationWorkerOptions;
  private stopped = false;
  private messages: ConsumerMessages | undefined;
  private leaseRev = 0;
  private running: Promise<void> | undefined;
  /** Whether this worker holds the shard now. */
  holding = false;
  /** Events correlated (replay included) and alerts published since start. */
  events = 0;
  alerts = 0;

  constructor(o: CorrelationWorkerOptions) {
    if (!Number.isInteger(o.shard) || o.shard < 0 || o.shard >= o.bus.layout.shards)
      throw new TypeError(`shard must be 0..${o.bus.layout.shards - 1}`);
    this.o = o;
  }

  private get leaseKey(): string {
    return `shard.${this.o.shard}`;
  }

  /** Runs until stop(): waits for the shard's lease, then correlates; takes it again if lost. */
  start(): void {
    this.running ??= this.loop();
  }

  private async loop(): Promise<void> {
    const leases = this.o.bus.leases;
    while (!this.stopped) {
      try {
        this.leaseRev = await leases.create(this.leaseKey, this.o.holder);
      } catch {
        await sleep(Math.max(100, this.o.bus.limits.leaseMs / 4));
        continue;
      }
      this.holding = true;
      this.o.log.info({ shard: this.o.shard }, 'correlation shard taken');
      try {
        await this.run(leases);
      } catch (err) {
        if (!this.stopped) this.o.log.error({ err, shard: this.o.shard }, 'correlation shard failed');
      }
      this.holding = false;
      if (!this.stopped) await sleep(250);
    }
  }

  private async run(leases: KV): Promise<void> {
    const { bus, shard } = this.o;
    const n = bus.layout.shards;
    const opts = { ...DEFAULT_OPTIONS, ...(this.o.correlator ?? {}) };
    const forwarded: Forwarded[] = [];
    const correlator = new Correlator(
      this.o.rules,
      opts,
      n === 1 ? undefined : (rule, key) => shardOf(rule + ROUTE_SEP + key, n) === shard,
      (route, inner, event) => forwarded.push({ route, inner, event }),
    );
    const ckptKey = `shard.${shard}`;
    const got = await bus.checkpoints.get(ckptKey);
    const ckpt = got === null ? undefined : parseCheckpoint(got.value);
    // Every event that can still fall in a window open at the checkpoint was published after this:
    // an event's time is at most maxLeadMs past its ingest time, and older than the watermark minus
    // the lateness it is not correlated at all.
    const horizon = correlator.longestWindowMs + opts.latenessMs + opts.maxLeadMs + 1_000;
    // An ephemeral pull consumer (the ordered consumer of nats.js needs a newer server than 2.9):
    // if it is lost (server restart), the loop ends and the shard is rebuilt from the checkpoint.
    const info = await bus.jsm.consumers.add(bus.layout.eventsStream, {
      ack_policy: AckPolicy.None,
      filter_subject: bus.layout.corrSubject(shard),
      inactive_threshold: nanos(30_000),
      mem_storage: true,
      ...(ckpt === undefined
        ? { deliver_policy: DeliverPolicy.All }
        : {
            deliver_policy: DeliverPolicy.StartTime,
            opt_start_time: new Date(Math.max(0, ckpt.time - horizon)).toISOString(),
          }),
    });
    const consumer = await bus.js.consumers.get(bus.layout.eventsStream, info.name);
    const messages = await consumer.consume({ max_messages: 512 });
    this.messages = messages;
    let lost = false;
    const renew = setInterval(
      () => {
        leases.update(this.leaseKey, this.o.holder, this.leaseRev).then(
          (rev) => (this.leaseRev = rev),
          (err: unknown) => {
            if (lost || this.stopped) return;
            lost = true;
            this.o.log.warn({ err, shard }, 'correlation shard lease lost');
            void messages.close();
          },
        );
      },
      Math.max(50, bus.limits.leaseMs / 3),
    );
    let last: Checkpoint | undefined;
    let written = ckpt?.seq ?? 0;
    const save = async (): Promise<void> => {
      if (last === undefined || last.seq <= written) return;
      const c = last;
      await bus.checkpoints.put(ckptKey, JSON.stringify(c));
      written = c.seq;
    };
    const saver = setInterval(() => void save().catch(() => undefined), this.o.checkpointEveryMs ?? 1_000);
    try {
      for await (const m of messages) {
        if (lost || this.stopped) break;
        await this.handle(correlator, forwarded, m);
        last = { seq: m.seq, time: Math.floor(m.info.timestampNanos / 1e6) };
      }
      if (!lost) await save().catch(() => undefined);
    } finally {
      clearInterval(renew);
      clearInterval(saver);
      this.messages = undefined;
      if (!lost) await leases.delete(this.leaseKey).catch(() => undefined);
    }
  }

  private async handle(correlator: Correlator, forwarded: Forwarded[], m: JsMsg): Promise<void> {
    const inner = m.headers?.has(CHAIN_HEADER) === true ? m.headers.get(CHAIN_HEADER) : undefined;
    let events: EdgeEvent[];
    try {
      events = inner === undefined ? parseEventMessage(m.data) : parseChainMessage(m.data, inner);
    } catch (err) {
      this.o.log.error({ err, seq: m.seq, subject: m.subject }, 'unreadable message on a correlation shard');
      return;
    }
    this.events += events.length;
    let alerts: Alert[] = [];
    try {
      alerts = inner === undefined ? correlator.feed(events) : correlator.feedChained(inner, events);
    } catch (err) {
      this.o.log.error({ err, seq: m.seq }, 'correlation failed for a bus message');
    }
    const chain = forwarded.splice(0);
    if (alerts.length === 0 && chain.length === 0) return;
    const { js, layout: l } = this.o.bus;
    for (;;) {
      try {
        // Chain events go to the shard of their outer group, deduplicated by that route and the
        // inner alert's deterministic id (a shard rebuilt after a takeover raises it again).
        const pubs = await Promise.all([
          ...alerts.map((a) => js.publish(l.alertsSubject, JSON.stringify(a), { msgID: a.id })),
          ...chain.map((c) => {
            const h = headers();
            h.set(CHAIN_HEADER, c.inner);
            const id = createHash('sha256').update(c.route).update('\0').update(String(c.event['event.id']));
            return js.publish(l.corrSubject(shardOf(c.route, l.shards)), JSON.stringify([c.event]), {
              msgID: `chain-${id.digest('hex')}`,
              headers: h,
            });
          }),
        ]);
        pubs.slice(0, alerts.length).forEach((ack, i) => {
          this.alerts++;
          this.o.onAlert?.(alerts[i] as Alert, ack.duplicate);
        });
        return;
      } catch (err) {
        // The message is not done until its alerts are durable: retry while the bus is away.
        if (this.stopped) throw err;
        this.o.log.warn({ err, shard: this.o.shard }, 'alerts not acknowledged by the bus; retrying');
        await sleep(500);
      }
    }
  }

  /** Stops correlating and gives the lease back (a stopped worker's shard is taken at once). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.messages?.close();
    await this.running;
  }
}
