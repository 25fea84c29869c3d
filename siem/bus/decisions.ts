// Signed decision deltas on JetStream: a DecisionPublisher that appends each of the hub's signed
// deltas to one stream subject, in revision order, with `KID.REVISION` as Nats-Msg-Id (published
// again, stored once). A stream of deltas rather than a KV bucket keyed by scope: the signed
// document is the unit agents verify (a delta from one revision to the next, or a whole set), and
// a bucket per scope would need a signature per scope and lose the one revision order that makes
// "resume from my revision, exactly once, in order" a sequence read. A reader that finds a gap
// (a delta whose `from` is not its revision) takes a snapshot from the SIEM (GET
// /v1/decisions/stream), as after an SSE resync.
import { DiscardPolicy, RetentionPolicy, StorageType, nanos } from 'nats';
import type { BusDecision } from '../../common/bus-decisions.js';
import type { Logger } from '../../common/log.js';
import type { DecisionMessage, DecisionPublisher } from '../service/hub.js';
import { ensureStream, type Bus } from './connect.js';

export { parseBusDecision, type BusDecision } from '../../common/bus-decisions.js';

export class NatsDecisionPublisher implements DecisionPublisher {
  private readonly bus: Bus;
  private readonly log: Logger;
  private readonly kid: () => string;
  private chain: Promise<void> = Promise.resolve();
  /** Deltas JetStream acknowledged, and those it did not (readers then see a gap and resync). */
  published = 0;
  failed = 0;

  private constructor(bus: Bus, log: Logger, kid: () => string) {
    this.bus = bus;
    this.log = log;
    this.kid = kid;
  }

  /** Creates (or checks) the decisions stream: 30 days of deltas, a 24 h dedupe window. */
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
    return new NatsDecisionPublisher(bus, log, kid);
  }

  publish(m: DecisionMessage): void {
    const kid = this.kid();
    const body: BusDecision = { kind: 'delta', from: m.from, revision: m.revision, kid, jws: m.jws };
    // One at a time, so the stream holds the deltas in revision order.
    this.chain = this.chain.then(() =>
      this.bus.js
        .publish(this.bus.layout.decisionsSubject, JSON.stringify(body), { msgID: `${kid}.${m.revision}` })
        .then(
          () => void this.published++,
          (err: unknown) => {
            this.failed++;
            this.log.error({ err, revision: m.revision }, 'decision delta not published on the bus');
          },
        ),
    );
  }

  /** Readers find the gap themselves (the next delta's `from` is not their revision). */
  resync(): void {}

  close(): void {}

  /** Resolves once every delta handed so far was acknowledged or given up. */
  settled(): Promise<void> {
    return this.chain;
  }
}
