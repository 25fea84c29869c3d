// The stateful side of a SIEM on the bus: durable pull consumers that hand the raised alerts to the
// response engine and the accepted batches to the event store. A message is acknowledged only
// after its handler returned, so a replica killed in between gets it again (redelivered).
import { AckPolicy, DeliverPolicy, nanos, type ConsumerMessages, type JsMsg } from 'nats';
import { EdgewardError } from '../../common/errors.js';
import type { EdgeEvent } from '../../common/events.js';
import type { Logger } from '../../common/log.js';
import type { Alert } from '../correlate/index.js';
import type { Bus } from './connect.js';
import { busJson, parseEventMessage } from './correlation-worker.js';

export interface DurableOptions {
  readonly bus: Bus;
  /** The durable consumer's name: replicas sharing one share the work (one store, one ledger). */
  readonly durable: string;
  readonly log: Logger;
  /**
   * How long a message may stay unacknowledged before it is given again, here or to another
   * replica (ms, default 10 s): a replica killed with messages in hand delays them this long.
   */
  readonly ackWaitMs?: number;
  /**
   * Deliveries of a message whose handler keeps failing with an error that is not a passing
   * outage before it is set aside (default 10): it stays on the stream at its sequence, this
   * consumer stops asking for it, and the messages after it go on.
   */
  readonly maxDeliver?: number;
  /**
   * Wait before a failed message is given again (ms, default 1 s); after an error that is not a
   * passing outage it doubles with each delivery, up to 60 s.
   */
  readonly retryMs?: number;
  /** A message set aside (metrics). */
  readonly onSetAside?: (seq: number, err: unknown) => void;
}

/** Errors that pass by themselves (the store or the bus away, a lost race): retried without end. */
const PASSING = new Set<string>([
  'ERR_STORE_UNAVAILABLE',
  'ERR_SIEM_UNAVAILABLE',
  'ERR_SIEM_BUS_UNAVAILABLE',
  'ERR_SIEM_REVISION_CONFLICT',
  'ERR_SIEM_OVERLOADED',
]);

export function isPassing(err: unknown): boolean {
  return err instanceof EdgewardError && PASSING.has(err.code);
}

const DURABLE = /^[a-z][a-z0-9_-]{0,63}$/;

async function durableMessages(
  o: DurableOptions,
  stream: string,
  subject: string,
): Promise<ConsumerMessages> {
  if (!DURABLE.test(o.durable)) throw new TypeError(`durable name ${o.durable} is not [a-z][a-z0-9_-]{0,63}`);
  const { jsm, js } = o.bus;
  const config = {
    durable_name: o.durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: subject,
    ack_wait: nanos(o.ackWaitMs ?? 10_000),
    max_ack_pending: 1_024,
  };
  try {
    const have = await jsm.consumers.info(stream, o.durable);
    if (have.config.filter_subject !== subject)
      throw new EdgewardError(
        'ERR_SIEM_BUS_STREAM',
        `consumer ${o.durable} on ${stream} reads another subject`,
      );
  } catch (err) {
    if (err instanceof EdgewardError) throw err;
    await jsm.consumers.add(stream, config);
  }
  return (await js.consumers.get(stream, o.durable)).consume({ max_messages: 256 });
}

/** Parses an alert published by a correlation worker; refuses anything else. */
export function parseAlertMessage(data: Uint8Array): Alert {
  const v = busJson(data, 'alert is not JSON');
  const a = v as Partial<Alert> | null;
  if (
    typeof a !== 'object' ||
    a === null ||
    typeof a.id !== 'string' ||
    typeof a.ruleId !== 'string' ||
    typeof a.time !== 'number' ||
    typeof a.groupBy !== 'object' ||
    typeof a.trigger !== 'object'
  )
    throw new EdgewardError('ERR_SIEM_BUS_MESSAGE', 'not an alert');
  return a as Alert;
}

export class DurableLoop {
  private readonly done: Promise<void>;
  private readonly messages: ConsumerMessages;

  private constructor(messages: ConsumerMessages, handle: (m: JsMsg) => Promise<void>, o: DurableOptions) {
    this.messages = messages;
    const maxDeliver = o.maxDeliver ?? 10;
    const retryMs = o.retryMs ?? 1_000;
    this.done = (async () => {
      for await (const m of messages) {
        try {
          await handle(m);
          m.ack();
        } catch (err) {
          const tries = m.info.deliveryCount;
          if (!isPassing(err) && tries >= maxDeliver) {
            // A poison message: it stays on the stream (`nats stream get STREAM SEQ`), the rest go on.
            o.log.error(
              { err, seq: m.seq, subject: m.subject, tries, consumer: o.durable },
              'a bus message failed every delivery: set aside on the stream',
            );
            m.term(`failed ${tries} deliveries`);
            o.onSetAside?.(m.seq, err);
            continue;
          }
          // Not acknowledged: given again, here or on another replica, after a wait that grows
          // unless the error is an outage that passes.
          o.log.error({ err, seq: m.seq, subject: m.subject, tries }, 'a bus message could not be handled');
          m.nak(isPassing(err) ? retryMs : Math.min(60_000, retryMs * 2 ** Math.min(tries - 1, 16)));
        }
      }
    })();
  }

  /** Alerts from every correlation worker, handed on in stream order. */
  static async alerts(
    o: DurableOptions,
    onAlerts: (alerts: Alert[]) => void | Promise<void>,
  ): Promise<DurableLoop> {
    const l = o.bus.layout;
    const messages = await durableMessages(o, l.alertsStream, l.alertsSubject);
    return new DurableLoop(
      messages,
      async (m) => {
        let alert: Alert;
        try {
          alert = parseAlertMessage(m.data);
        } catch (err) {
          o.log.error({ err, seq: m.seq }, 'unreadable alert on the bus: skipped');
          return;
        }
        await onAlerts([alert]);
      },
      o,
    );
  }

  /**
   * Accepted batches for the event store. `store` commits one batch; `known` says whether a batch
   * redelivered after a crash was committed already (its first event is stored).
   */
  static async batches(
    o: DurableOptions,
    store: (events: EdgeEvent[]) => Promise<void>,
    known: (events: readonly EdgeEvent[]) => Promise<boolean>,
  ): Promise<DurableLoop> {
    const l = o.bus.layout;
    const messages = await durableMessages(o, l.eventsStream, l.batchSubject);
    return new DurableLoop(
      messages,
      async (m) => {
        let events: EdgeEvent[];
        try {
          events = parseEventMessage(m.data);
        } catch (err) {
          o.log.error({ err, seq: m.seq }, 'unreadable batch on the bus: skipped');
          return;
        }
        if (m.redelivered && (await known(events))) return;
        await store(events);
      },
      o,
    );
  }

  async close(): Promise<void> {
    await this.messages.close();
    await this.done;
  }
}
