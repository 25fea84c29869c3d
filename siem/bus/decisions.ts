// Signed decision documents on JetStream. The replica that stored a revision in PostgreSQL appends
// its signed delta to one stream subject, with the revision as Nats-Msg-Id (published again by
// any replica, stored once); a replica that finds the stream behind the store (the committer died
// between commit and publish) appends what it can sign for the missing span: a delta from the
// stream's last revision, or a snapshot. Every replica reads the subject with an ordered consumer
// and hands each document to its decision hub. A stream of documents rather than a KV bucket keyed
// by scope: the signed document is the unit agents verify (a delta from one revision to the next,
// or a whole set), and a bucket per scope would need a signature per scope and lose the one
// revision order that makes "resume from my revision, exactly once, in order" a sequence read.
// A reader that finds a gap (a delta whose `from` is not its revision) starts again from a
// snapshot: one on the stream, or the SIEM's (GET /v1/decisions/stream).
import {
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  nanos,
  type ConsumerMessages,
} from 'nats';
import { parseBusDecision, type BusDecision } from '../../common/bus-decisions.js';
import type { Logger } from '../../common/log.js';
import type { DecisionMessage, DecisionPublisher, Signed } from '../service/hub.js';
import { ensureStream, type Bus } from './connect.js';

export { parseBusDecision, type BusDecision };

/** The deduplication key of a revision on the stream: the revision alone, whoever signed it. */
export const decisionMsgId = (revision: number): string => String(revision);

export interface BusDecisionsOptions {
  readonly bus: Bus;
  readonly log: Logger;
  /** The kid of the key this replica signs with now. */
  readonly kid: () => string;
}

/** One received document and its stream sequence. */
export interface ReceivedDecision {
  readonly doc: BusDecision;
  readonly seq: number;
}

export class NatsDecisionPublisher implements DecisionPublisher {
  /** Only the changes this replica stored go to the bus; what it followed, another one published. */
  readonly ownOnly = true;
  private readonly bus: Bus;
  private readonly log: Logger;
  private readonly kid: () => string;
  private chain: Promise<void> = Promise.resolve();
  private reader: ConsumerMessages | undefined;
  private reading: Promise<void> | undefined;
  /** The highest revision seen on the stream (read or published), 0 when empty. */
  streamRevision = 0;
  /** A revision the store had and the stream lacked, and since when (ms, performance clock). */
  private missing: { revision: number; since: number } | null = null;
  /** Documents JetStream acknowledged (new or duplicate), and those it did not. */
  published = 0;
  failed = 0;
  /** Catch-up documents this replica published for revisions another stored. */
  caughtUp = 0;
  /** Messages on the subject that were not decision documents. */
  refused = 0;

  private constructor(o: BusDecisionsOptions) {
    this.bus = o.bus;
    this.log = o.log;
    this.kid = o.kid;
  }

  /** Creates (or checks) the decisions stream: 30 days of documents, a 24 h dedupe window. */
  static async create(bus: Bus, log: Logger, kid: () => string): Promise<NatsDecisionPublisher> {
    const l = bus.layout;
    await ensureStream(bus.jsm, {
      name: l.decisionsStream,
      description: `edgeward signed decision deltas; shards=${l.shards}`,
      subjects: [l.decisionsSubject],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(30 * 86_400_000),
      max_bytes: 256 * 1024 ** 2,
      duplicate_window: nanos(86_400_000),
      num_replicas: 1,
    });
    const p = new NatsDecisionPublisher({ bus, log, kid });
    p.streamRevision = (await p.last())?.revision ?? 0;
    return p;
  }

  /** The stream's last document, or undefined when it holds none (or an unreadable one). */
  async last(): Promise<BusDecision | undefined> {
    const l = this.bus.layout;
    try {
      const m = await this.bus.jsm.streams.getMessage(l.decisionsStream, {
        last_by_subj: l.decisionsSubject,
      });
      return parseBusDecision(m.data);
    } catch (err) {
      if (/no message found|not found/i.test(String((err as Error).message))) return undefined;
      if ((err as { code?: unknown }).code === 'ERR_SIEM_BUS_MESSAGE') return undefined;
      throw err;
    }
  }

  publish(m: DecisionMessage): void {
    void this.send({ kind: 'delta', from: m.from, revision: m.revision, kid: this.kid(), jws: m.jws });
  }

  /**
   * Appends a document for revisions this replica holds but the stream does not (`signed`: what
   * the hub signs since the stream's last revision). Stored once, whoever sends it first.
   */
  catchUp(from: number, signed: Signed): Promise<void> {
    if (signed.kind === 'current' || signed.jws === undefined || signed.revision <= from) return this.chain;
    this.caughtUp++;
    this.log.warn(
      { from, revision: signed.revision, kind: signed.kind },
      'the decisions stream was behind the store: publishing the missing revisions',
    );
    return this.send({
      kind: signed.kind,
      from,
      revision: signed.revision,
      kid: this.kid(),
      jws: signed.jws,
    });
  }

  /**
   * How long (ms) the stream has lacked `revision` (the highest this replica knows of, stored or
   * held), 0 when it has it. The clock starts at the first call that finds a revision missing and
   * starts again once the stream has it, so each lost revision gets its own grace, and a steady
   * flow of decisions is never taken for a lost one.
   */
  missingMs(revision: number): number {
    const t = performance.now();
    if (this.missing !== null && this.missing.revision <= this.streamRevision) this.missing = null;
    if (revision <= this.streamRevision) return 0;
    this.missing ??= { revision, since: t };
    return t - this.missing.since;
  }

  /**
   * Whether the stream itself still lacks `revision`, asked of the server: this replica's reader
   * may only be behind (a loaded process), and then the document is on its way to it.
   */
  async lacks(revision: number): Promise<boolean> {
    const last = (await this.last())?.revision ?? 0;
    this.streamRevision = Math.max(this.streamRevision, last);
    return last < revision;
  }

  private send(body: BusDecision): Promise<void> {
    // One at a time, so this replica's documents reach the stream in revision order.
    this.chain = this.chain.then(() =>
      this.bus.js
        .publish(this.bus.layout.decisionsSubject, JSON.stringify(body), {
          msgID: decisionMsgId(body.revision),
        })
        .then(
          () => {
            this.published++;
            this.streamRevision = Math.max(this.streamRevision, body.revision);
          },
          (err: unknown) => {
            this.failed++;
            this.log.error({ err, revision: body.revision }, 'decision document not published on the bus');
          },
        ),
    );
    return this.chain;
  }

  /**
   * Reads the subject from its last message on (an ordered consumer: in stream order, resumed by
   * the client after a reconnect) and hands each document to `fn`, one at a time. Messages that
   * are not decision documents are counted and skipped.
   */
  async follow(fn: (d: ReceivedDecision) => Promise<void>): Promise<void> {
    const l = this.bus.layout;
    const c = await this.bus.js.consumers.get(l.decisionsStream, {
      filterSubjects: l.decisionsSubject,
      deliver_policy: DeliverPolicy.Last,
    });
    const messages = await c.consume({ max_messages: 64 });
    this.reader = messages;
    this.reading = (async () => {
      for await (const m of messages) {
        let doc: BusDecision;
        try {
          doc = parseBusDecision(m.data);
        } catch (err) {
          this.refused++;
          this.log.warn({ err, seq: m.seq }, 'a message on the decisions subject is not a decision document');
          continue;
        }
        this.streamRevision = Math.max(this.streamRevision, doc.revision);
        try {
          await fn({ doc, seq: m.seq });
        } catch (err) {
          this.log.error({ err, revision: doc.revision }, 'a decision document from the bus was not handled');
        }
      }
    })();
  }

  /** Readers find the gap themselves (the next delta's `from` is not their revision). */
  resync(): void {}

  close(): void {
    this.reader?.stop();
  }

  /** Resolves once every document handed so far was acknowledged or given up, and reading stopped. */
  async settled(): Promise<void> {
    await this.chain;
  }

  async stop(): Promise<void> {
    this.reader?.stop();
    await this.reading;
    await this.chain;
  }
}
