// The connection to NATS JetStream: connects to the `--bus` servers (reconnecting forever), creates
// or verifies the deployment's streams and lease bucket with explicit limits, and says whether the
// bus is up right now, so ingest can answer 503 at once instead of waiting on a dead socket.
import {
  connect,
  DiscardPolicy,
  Events,
  RetentionPolicy,
  StorageType,
  nanos,
  type JetStreamClient,
  type JetStreamManager,
  type KV,
  type NatsConnection,
  type StreamConfig,
} from 'nats';
import type { SecureContext } from 'node:tls';
import { natsTlsOptions } from '../../client/index.js';
import { EdgewardError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { DEFAULT_LIMITS, type BusLayout, type BusLimits } from './layout.js';

export interface BusOptions {
  readonly servers: readonly string[];
  readonly layout: BusLayout;
  readonly limits?: Partial<BusLimits>;
  /** From a file or the environment, never argv. */
  readonly token?: string;
  /**
   * For tls:// servers that require client certificates: the SIEM's mesh certificate (read at
   * each connection), and the server's SPIFFE ID (its one URI SAN, chained to the bundle).
   */
  readonly tls?: { readonly context: () => SecureContext; readonly expect: string };
  /** The connection's name on the server (monitoring). */
  readonly name: string;
  readonly log: Logger;
  /** How long the first connection may take (ms, default 5 s). */
  readonly connectTimeoutMs?: number;
}

export interface Bus {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly layout: BusLayout;
  readonly limits: BusLimits;
  readonly leases: KV;
  readonly checkpoints: KV;
  /** False between a disconnect and the next reconnect. */
  up(): boolean;
  close(): Promise<void>;
}

const describe = (l: BusLayout, what: string): string => `edgeward ${what}; shards=${l.shards}`;

function eventsConfig(l: BusLayout, lim: BusLimits): Partial<StreamConfig> {
  return {
    name: l.eventsStream,
    description: describe(l, 'accepted events'),
    subjects: [l.batchSubject, `${l.prefix}.corr.*`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(lim.eventsMaxAgeMs),
    max_bytes: lim.eventsMaxBytes,
    duplicate_window: nanos(lim.eventsDedupeMs),
    num_replicas: 1,
  };
}

function alertsConfig(l: BusLayout, lim: BusLimits): Partial<StreamConfig> {
  return {
    name: l.alertsStream,
    description: describe(l, 'raised alerts'),
    subjects: [l.alertsSubject],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(lim.alertsMaxAgeMs),
    max_bytes: lim.alertsMaxBytes,
    duplicate_window: nanos(lim.alertsDedupeMs),
    num_replicas: 1,
  };
}

/** Creates the stream, or checks that the existing one has this layout and brings its limits to these. */
export async function ensureStream(jsm: JetStreamManager, want: Partial<StreamConfig>): Promise<void> {
  const name = want.name as string;
  let have: StreamConfig | undefined;
  try {
    have = (await jsm.streams.info(name)).config;
  } catch (err) {
    if (!/stream not found/i.test(String((err as Error).message))) throw err;
  }
  if (have === undefined) {
    await jsm.streams.add(want);
    return;
  }
  const sameSubjects = [...have.subjects].sort().join(' ') === [...(want.subjects ?? [])].sort().join(' ');
  if (!sameSubjects || have.description !== want.description || have.storage !== want.storage)
    throw new EdgewardError('ERR_SIEM_BUS_STREAM', `stream ${name} has another layout`, {
      detail: { stream: name, subjects: have.subjects, description: have.description },
    });
  if (
    have.max_age !== want.max_age ||
    have.max_bytes !== want.max_bytes ||
    have.duplicate_window !== want.duplicate_window ||
    have.discard !== want.discard
  )
    await jsm.streams.update(name, want);
}

/** Connects and makes the layout; refuses with ERR_SIEM_BUS_UNAVAILABLE if no server answers. */
export async function connectBus(o: BusOptions): Promise<Bus> {
  const limits: BusLimits = { ...DEFAULT_LIMITS, ...(o.limits ?? {}) };
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: [...o.servers],
      name: o.name,
      ...(o.token !== undefined ? { token: o.token } : {}),
      ...(o.tls !== undefined ? { tls: natsTlsOptions(o.tls.context, o.tls.expect) } : {}),
      timeout: o.connectTimeoutMs ?? 5_000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 100,
      pingInterval: 2_000,
      maxPingOut: 2,
    });
  } catch (cause) {
    throw new EdgewardError('ERR_SIEM_BUS_UNAVAILABLE', `cannot connect to ${o.servers.join(',')}`, {
      cause,
    });
  }
  let up = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === Events.Disconnect) {
        if (up) o.log.warn({ server: s.data }, 'event bus disconnected');
        up = false;
      } else if (s.type === Events.Reconnect) {
        up = true;
        o.log.info({ server: s.data }, 'event bus reconnected');
      }
    }
  })();
  try {
    const jsm = await nc.jetstreamManager();
    await ensureStream(jsm, eventsConfig(o.layout, limits));
    await ensureStream(jsm, alertsConfig(o.layout, limits));
    const js = nc.jetstream();
    const leases = await js.views.kv(o.layout.leaseBucket, { ttl: limits.leaseMs, history: 1 });
    const checkpoints = await js.views.kv(o.layout.checkpointBucket, { history: 1 });
    return {
      nc,
      js,
      jsm,
      layout: o.layout,
      limits,
      leases,
      checkpoints,
      up: () => up && !nc.isClosed(),
      async close() {
        if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
      },
    };
  } catch (err) {
    await nc.close();
    if (err instanceof EdgewardError) throw err;
    throw new EdgewardError('ERR_SIEM_BUS_UNAVAILABLE', 'cannot set up the bus streams', { cause: err });
  }
}

/** Deletes the deployment's streams and bucket (tests, and an operator starting over). */
export async function deleteBusLayout(jsm: JetStreamManager, l: BusLayout): Promise<void> {
  for (const s of [
    l.eventsStream,
    l.alertsStream,
    l.decisionsStream,
    `KV_${l.leaseBucket}`,
    `KV_${l.checkpointBucket}`,
  ]) {
    try {
      await jsm.streams.delete(s);
    } catch (err) {
      if (!/stream not found/i.test(String((err as Error).message))) throw err;
    }
  }
}
