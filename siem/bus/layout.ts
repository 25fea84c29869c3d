// What the SIEM keeps on NATS JetStream and under which names: the `--bus` server list, the
// subjects and streams of one deployment (a prefix), their limits, and the shard of a group key.
// Pure: no connection here.
import { createHash } from 'node:crypto';
import { BUS_PREFIX, busDecisionNames } from '../../common/bus-decisions.js';
import { EdgewardError } from '../../common/errors.js';

/** Separates a rule id from its group key in a route (the correlator's key separator). */
export const ROUTE_SEP = '\u001f';

/**
 * The servers of `--bus`: a comma-separated list of nats://HOST:PORT or tls://HOST:PORT. Credentials
 * in the URL are refused (argv is visible to every user of the machine): they come from a file.
 */
export function parseBusUrls(text: string): string[] {
  const bad = (why: string): EdgewardError =>
    new EdgewardError('ERR_SIEM_BUS_URL', `--bus ${why}`, { detail: { why } });
  if (text.length === 0 || text.length > 4096) throw bad('is empty or too long');
  const out: string[] = [];
  for (const part of text.split(',')) {
    const s = part.trim();
    let u: URL;
    try {
      u = new URL(s);
    } catch (cause) {
      throw new EdgewardError('ERR_SIEM_BUS_URL', `--bus: ${JSON.stringify(s.slice(0, 80))} is not a URL`, {
        cause,
      });
    }
    if (u.protocol !== 'nats:' && u.protocol !== 'tls:')
      throw bad(`scheme ${u.protocol} is not nats: or tls:`);
    if (u.username !== '' || u.password !== '')
      throw bad('must not carry credentials (use --bus-token-file)');
    if (u.hostname === '') throw bad('has no host');
    if (u.port === '') throw bad(`${u.hostname} has no port`);
    if ((u.pathname !== '' && u.pathname !== '/') || u.search !== '' || u.hash !== '')
      throw bad('has a path, query or fragment');
    out.push(`${u.protocol}//${u.host}`);
  }
  if (out.length > 32) throw bad('lists more than 32 servers');
  return out;
}

export interface BusLimits {
  /** How long accepted events stay on the bus (ms): the longest a store or worker may lag. */
  readonly eventsMaxAgeMs: number;
  /**
   * Bytes of events the stream holds; beyond it the oldest go (they are in the store by then,
   * unless a consumer lags this far behind).
   */
  readonly eventsMaxBytes: number;
  /** Window in which a re-published batch (same reporter, same body) is stored once (ms). */
  readonly eventsDedupeMs: number;
  readonly alertsMaxAgeMs: number;
  readonly alertsMaxBytes: number;
  /** Window in which an alert raised again (a worker rebuilding its groups) is stored once (ms). */
  readonly alertsDedupeMs: number;
  /** A shard's lease: a worker that stops renewing it is replaced after this long (ms). */
  readonly leaseMs: number;
}

export const DEFAULT_LIMITS: BusLimits = {
  eventsMaxAgeMs: 86_400_000,
  eventsMaxBytes: 8 * 1024 ** 3,
  eventsDedupeMs: 15 * 60_000,
  alertsMaxAgeMs: 30 * 86_400_000,
  alertsMaxBytes: 1024 ** 3,
  alertsDedupeMs: 86_400_000,
  leaseMs: 5_000,
};

export const MAX_SHARDS = 256;

/** The names of one deployment on the bus. `prefix` is lower case; streams are its upper case. */
export interface BusLayout {
  readonly prefix: string;
  readonly shards: number;
  readonly eventsStream: string;
  readonly alertsStream: string;
  readonly leaseBucket: string;
  /** Each shard's checkpoint (last stream sequence fully handled, and its time). */
  readonly checkpointBucket: string;
  /** Whole accepted batches, for the event store. */
  readonly batchSubject: string;
  /** The events routed to one correlation shard. */
  corrSubject(shard: number): string;
  readonly alertsSubject: string;
  readonly decisionsStream: string;
  /** Signed decision deltas, in revision order. */
  readonly decisionsSubject: string;
}

const PREFIX = BUS_PREFIX;

export function busLayout(prefix: string, shards: number): BusLayout {
  if (!PREFIX.test(prefix)) throw new TypeError(`bus prefix ${prefix} is not [a-z][a-z0-9_]{0,31}`);
  if (!Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS)
    throw new TypeError(`shards must be 1..${MAX_SHARDS}`);
  const up = prefix.toUpperCase();
  const decisions = busDecisionNames(prefix);
  return {
    prefix,
    shards,
    eventsStream: `${up}_EVENTS`,
    alertsStream: `${up}_ALERTS`,
    leaseBucket: `${up}_LEASES`,
    checkpointBucket: `${up}_CHECKPOINTS`,
    batchSubject: `${prefix}.batch`,
    corrSubject: (k) => `${prefix}.corr.${k}`,
    alertsSubject: `${prefix}.alerts`,
    decisionsStream: decisions.stream,
    decisionsSubject: decisions.subject,
  };
}

/** The shard of a route (rule id, separator, group key): the same on every replica and worker. */
export function shardOf(route: string, shards: number): number {
  if (shards === 1) return 0;
  return createHash('sha256').update(route).digest().readUInt32BE(0) % shards;
}
