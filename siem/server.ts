// The SIEM service's composition root: opens the stores, builds the ingest pipeline, the
// correlator, the response engine and the decision hub, and serves them over HTTPS (TLS 1.3,
// mTLS) through the route plugins of siem/routes/. It owns the timers (expiry, heartbeats,
// retention, the CRL watch, identity renewal) and the order of shutdown.
import type { ServiceUrls } from '../client/index.js';
import { join } from 'node:path';
import { createPublicKey, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { verifyDecisions } from '../common/decision-jws.js';
import { systemClock, type Clock } from '../common/clock.js';
import type { DecisionScope } from '../common/decisions.js';
import { EdgewardError } from '../common/errors.js';
import { createEventIdFactory, type EdgeEvent } from '../common/events.js';
import { createHttpsServer, listeningUrl, setServerTls } from '../common/http-server.js';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { LoadedIdentity } from '../common/identity-dir.js';
import { parseIdentity, serviceId } from '../common/identity.js';
import { createLogger, type Logger } from '../common/log.js';
import {
  defaultPolicyPath,
  compileReporterPolicy,
  loadReporterPolicy,
  type ReporterPolicy,
  type PlaybookConfig,
} from '../policies/index.js';
import type { RuleSet } from '../policies/rules/index.js';
import { Correlator, type Alert, type CorrelatorOptions } from './correlate/index.js';
import { ResponseEngine } from './playbooks/index.js';
import { analystRoutes } from './routes/analyst.js';
import { createAnalystRunner, type SiemRouteContext } from './routes/context.js';
import { decisionRoutes } from './routes/decisions.js';
import { eventRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import type { RunningSiem } from './running-siem.js';
import { createAlertResponder } from './service/alert-response.js';
import { auditEvent, type AuditEntry } from './service/audit.js';
import { createCaRevoker, type CaRevoker } from './service/ca-link.js';
import { CRL_FILE, CRL_INTERVAL_MS, CrlWatch } from './service/crl-watch.js';
import { isReadAction, READ_AUDIT_FILE, ReadAuditLog } from './service/read-audit.js';
import { signerOf } from './service/decision-key.js';
import { SseStreams } from './service/sse.js';
import { Feed } from './service/feed.js';
import { DecisionHub } from './service/hub.js';
import { IdentityRenewer } from './service/identity.js';
import { IngestPipeline, type EventIngest } from './service/ingest.js';
import { createSiemMetrics } from './service/metrics.js';
import { MAX_BATCH_EVENTS } from './service/parse-batch.js';
import { createAnalystAuthorizer, sourceOf, type AnalystExtension } from './service/peer.js';
import { ReporterGate, RevokedSerials } from './service/reporters.js';
import { applyRetention } from './store/index.js';
import {
  BusIngest,
  busLayout,
  connectBus,
  CorrelationWorker,
  DurableLoop,
  NatsDecisionPublisher,
  type Bus,
  type BusDecision,
  type BusLimits,
} from './bus/index.js';
import { sqliteStores, type SiemStoreFactory } from './store/stores.js';

export interface SiemServerOptions {
  /** The SIEM's data folder (with the default stores: siem.db and siem.state.db). */
  readonly dataDir: string;
  /** Opens the store and the event writer (default: SQLite files in dataDir). */
  readonly stores?: SiemStoreFactory;
  readonly host: string;
  readonly port: number;
  /** The SIEM's enrolled identity (spiffe://TD/svc/siem): TLS server certificate and signing key. */
  readonly identity: LoadedIdentity;
  /** With caUrl: renew the identity in this folder at 2/3 of its lifetime. */
  readonly identityDir?: string;
  /** The CA, for renewal and for revocations. */
  readonly caUrl?: ServiceUrls;
  readonly rules: RuleSet;
  readonly playbooks: PlaybookConfig;
  readonly clock?: Clock;
  readonly log?: Logger;
  readonly retentionDays?: number;
  /** Largest request body (default 1 MiB). */
  readonly bodyLimit?: number;
  readonly maxBatchEvents?: number;
  readonly maxQueuedEvents?: number;
  readonly heartbeatMs?: number;
  readonly expireEveryMs?: number;
  /** How often to read the revision other replicas stored, on a shared store (default 250 ms). */
  readonly followMs?: number;
  /**
   * With the bus: how long the decisions stream may lag the store before this replica publishes
   * the missing revisions itself (default 1 s; the replica that stored them publishes at once).
   */
  readonly busCatchUpMs?: number;
  readonly maxSubscribers?: number;
  /** SQLite durability: FULL (default, survives power loss) or NORMAL (survives a crash). */
  readonly synchronous?: 'FULL' | 'NORMAL';
  /** Insert ingested events on a second thread (default true; false: on the event loop). */
  readonly ingestThread?: boolean;
  /** Largest group commit of ingested events (default 10,000). */
  readonly maxCommitEvents?: number;
  /** Rule ids whose decisions also revoke the identity or serial at the CA. */
  readonly revokeRules?: readonly string[];
  readonly correlator?: CorrelatorOptions;
  /** Analyst authentication besides the admin certificate (the dashboard's sessions). */
  readonly analyst?: AnalystExtension;
  /** Who may report what and subscribe (default: policies/default/reporter-policy.yaml). */
  readonly reporterPolicy?: ReporterPolicy;
  /** How often the CA's CRL is fetched (default 60 s; 0: never, revocation events only). */
  readonly crlIntervalMs?: number;
  /** Accepted events, correlation and alerts through NATS JetStream instead of in process. */
  readonly bus?: SiemBusOptions;
}

export interface SiemBusOptions {
  readonly servers: readonly string[];
  /** From a file or the environment. */
  readonly token?: string;
  /** Names the deployment's streams and subjects (default `edgeward`). */
  readonly prefix?: string;
  readonly shards: number;
  /** The shards this process stands ready to correlate (it takes those whose lease is free). */
  readonly correlate: readonly number[];
  /**
   * Replicas with one shared store share a group (they split the stream); each SQLite replica
   * has its own (each stores every event and handles every alert). Default `siem`.
   */
  readonly group?: string;
  readonly limits?: Partial<BusLimits>;
}

/** The TLS context of an identity, made again when the identity is renewed. */
function contextCache(): (id: LoadedIdentity) => SecureContext {
  let last: { certPem: string; context: SecureContext } | undefined;
  return (id) => {
    if (last?.certPem !== id.certPem)
      last = {
        certPem: id.certPem,
        context: createSecureContext({ key: id.keyPem, cert: id.certPem, ca: id.bundlePem }),
      };
    return last.context;
  };
}

export async function startSiemServer(o: SiemServerOptions): Promise<RunningSiem> {
  const clock = o.clock ?? systemClock;
  const now = (): number => clock.now();
  const log = o.log ?? createLogger('siem');
  let identity = o.identity;
  const trustDomain = parseIdentity(identity.identity).trustDomain;
  if (identity.identity !== serviceId(trustDomain, 'siem'))
    throw new EdgewardError('ERR_SIEM_IDENTITY', `the SIEM runs as ${serviceId(trustDomain, 'siem')}`);
  const reporterPolicy = o.reporterPolicy ?? loadReporterPolicy(defaultPolicyPath('reporter-policy.yaml'));
  const metrics = createSiemMetrics(reporterPolicy.budgets);
  metrics.registry.collected(
    'edgeward_siem_certificate_expiry_timestamp_seconds',
    'When the SIEM certificate expires (notAfter), seconds since the Unix epoch',
    'gauge',
    () => [[{}, Math.floor(identity.notAfter / 1000)]],
  );
  const stores = await (o.stores ?? sqliteStores)({
    dataDir: o.dataDir,
    ...(o.synchronous ? { synchronous: o.synchronous } : {}),
    ...(o.ingestThread !== undefined ? { ingestThread: o.ingestThread } : {}),
  });
  const { store, writer } = stores;
  // The adapter's own metrics, each name once, read at every scrape.
  const adapterMetrics = stores.metrics?.bind(stores);
  if (adapterMetrics !== undefined) {
    const named = new Map(adapterMetrics().map((m) => [m.name, m]));
    for (const m of named.values())
      metrics.registry.collected(m.name, m.help, m.type, () =>
        adapterMetrics()
          .filter((x) => x.name === m.name)
          .map((x) => [x.labels ?? {}, x.value] as const),
      );
  }
  const newId = createEventIdFactory(randomBytes);
  const engine = new ResponseEngine({ trustDomain, config: o.playbooks });
  engine.importState(await store.loadResponseState());
  const revoked = new RevokedSerials();
  const gate = new ReporterGate({
    policy: compileReporterPolicy(reporterPolicy),
    revoked,
    decisions: () => ({ revision: engine.revision, active: () => engine.active() }),
    now,
  });
  const revoker: CaRevoker | undefined =
    o.caUrl === undefined ? undefined : createCaRevoker({ caUrl: o.caUrl, identity: () => identity });
  const revokeAtCa = async (scope: DecisionScope, why: string): Promise<string[]> => {
    if (revoker === undefined) throw new EdgewardError('ERR_SIEM_CA_LINK', 'no CA configured (--ca)');
    try {
      const r = await revoker.revoke(scope, why);
      metrics.revocations.inc({ outcome: 'success' });
      return r;
    } catch (err) {
      metrics.revocations.inc({ outcome: 'failure' });
      throw err;
    }
  };

  const hub = new DecisionHub({
    engine,
    store,
    acks: stores.acks,
    signer: signerOf(identity),
    now,
    log,
    onPublished: (c) => metrics.publishSeconds.observe(c.publishMs / 1000),
  });
  // On a store shared by replicas, each says which agents hold its streams (one name per process).
  const presence = hub.ledger.sharePresence(
    `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`,
    log,
  );
  const maxSubscribers = o.maxSubscribers ?? 20_000;
  const streams = new SseStreams({ hub, now, maxSubscribers });
  hub.addPublisher(streams);
  // Decisions stored before scopes had one canonical form are rewritten or lifted, and published.
  await hub.ledger.refresh();
  const repaired = await hub.change((e) => e.repairScopes());
  if (repaired.rewritten.length + repaired.lifted.length > 0)
    log.warn(repaired, 'decision scopes made canonical');

  const events = new Feed<readonly EdgeEvent[]>(log);
  const revokedSerials = new Feed<readonly string[]>(log);
  const alerts = new Feed<Alert>(log);
  const correlatorOptions: CorrelatorOptions = {
    maxGroupsPerReporter: reporterPolicy.budgets.correlationKeys,
    maxEntriesPerReporter: reporterPolicy.budgets.correlationEntries,
    ...(o.correlator ?? {}),
  };
  const onAlerts = createAlertResponder({
    hub,
    store,
    metrics,
    log,
    revokeRules: new Set(o.revokeRules ?? []),
    canRevoke: revoker !== undefined,
    revoke: revokeAtCa,
    onAlert: (a) => alerts.notify(a),
  });
  const onCommitted = (batch: readonly EdgeEvent[]): void => {
    // The CA's revocations count at once, before the next CRL poll lists them.
    const serials = revoked.learn(batch);
    if (serials.length > 0) revokedSerials.notify(serials);
    events.notify(batch);
  };
  let bus: Bus | undefined;
  let decisionBus: NatsDecisionPublisher | undefined;
  // A document from the bus is taken as signed only when it verifies with this replica's own key
  // (replicas share it); otherwise, and on any gap, the store says what the revision holds.
  const followBusDecision = async (doc: BusDecision): Promise<void> => {
    if (doc.revision <= hub.revision) return;
    if (doc.kind === 'delta' && doc.from === hub.revision && doc.kid === hub.kid) {
      try {
        const v = await verifyDecisions(doc.jws, {
          publicKey: createPublicKey(identity.key),
          trustDomain,
          lastApplied: doc.from,
          now: now(),
          kid: hub.kid,
        });
        if (v.kind === 'delta') {
          await hub.applyDelta(v.delta, doc.jws);
          return;
        }
      } catch (err) {
        log.warn({ err, revision: doc.revision }, 'a decision document on the bus did not verify');
      }
    }
    await hub.follow();
  };
  /** Publishes the revisions this replica holds beyond the decisions stream's last one. */
  const catchUpDecisions = async (): Promise<void> => {
    if (decisionBus === undefined || bus?.up() !== true) return;
    const from = Math.max(decisionBus.streamRevision, (await decisionBus.last())?.revision ?? 0);
    if (from >= hub.revision) return;
    const signed = await hub.inOrder(() => hub.signedSince(from));
    await decisionBus.catchUp(from, signed);
  };
  /**
   * The poll of the stored revision. With the bus up, a revision another replica stored comes on
   * the decisions stream as that replica's signed document, the one every agent must get: this
   * replica reads the store for it (and signs a document of its own) only once the stream itself
   * has lacked it for the grace time (its replica died between commit and publish), and then
   * publishes it. The revision is read once per poll: a second read could find a revision stored
   * a moment ago, whose document is still on its way.
   */
  const graceMs = o.busCatchUpMs ?? 1_000;
  const followStore = async (): Promise<void> => {
    if (decisionBus === undefined || store.revision === undefined) {
      await hub.follow();
      return;
    }
    const stored = await store.revision();
    const head = Math.max(stored, hub.revision);
    if (bus?.up() !== true) {
      if (stored > hub.revision) await hub.follow();
      return;
    }
    if (decisionBus.missingMs(head) < graceMs || !(await decisionBus.lacks(head))) return;
    if (stored > hub.revision) await hub.follow();
    await catchUpDecisions();
  };
  const busLoops: DurableLoop[] = [];
  const workers: CorrelationWorker[] = [];
  let ingest: EventIngest;
  if (o.bus === undefined) {
    ingest = new IngestPipeline({
      writer,
      correlator: new Correlator(o.rules, correlatorOptions),
      log,
      onAlerts,
      onCommitted,
      onGroupCommit: () => metrics.commits.inc(),
      ...(o.maxQueuedEvents !== undefined ? { maxQueuedEvents: o.maxQueuedEvents } : {}),
      ...(o.maxCommitEvents !== undefined ? { maxCommitEvents: o.maxCommitEvents } : {}),
    });
  } else {
    const b = o.bus;
    const busContext = contextCache();
    try {
      bus = await connectBus({
        servers: b.servers,
        layout: busLayout(b.prefix ?? 'edgeward', b.shards),
        name: `edgeward-siem-${process.pid}`,
        log,
        ...(b.token !== undefined ? { token: b.token } : {}),
        ...(b.limits !== undefined ? { limits: b.limits } : {}),
        // Over TLS the SIEM presents its mesh certificate and knows the server as spiffe://TD/svc/nats.
        ...(b.servers.some((s) => s.startsWith('tls://'))
          ? { tls: { context: () => busContext(identity), expect: serviceId(trustDomain, 'nats') } }
          : {}),
      });
    } catch (err) {
      await stores.close();
      throw err;
    }
    // Decisions go on the bus only from one revision sequence: replicas on one shared store.
    if (store.revision !== undefined) {
      try {
        decisionBus = await NatsDecisionPublisher.create(bus, log, () => hub.kid);
        await decisionBus.follow((r) => followBusDecision(r.doc));
      } catch (err) {
        await bus.close();
        await stores.close();
        throw err;
      }
      hub.addPublisher(decisionBus);
    }
    const router = new Correlator(o.rules, correlatorOptions);
    ingest = new BusIngest({
      bus,
      routes: (e) => router.routes(e),
      log,
      ...(o.maxQueuedEvents !== undefined ? { maxQueuedEvents: o.maxQueuedEvents } : {}),
    });
    const group = b.group ?? 'siem';
    const durable = (name: string) => ({
      bus: bus as Bus,
      durable: `${name}-${group}`,
      log,
      onSetAside: () => metrics.busSetAside.inc({ consumer: name }),
    });
    busLoops.push(
      await DurableLoop.batches(
        durable('store'),
        async (batch) => {
          await writer.write([writer.prepare(batch)]);
          metrics.commits.inc();
          onCommitted(batch);
        },
        async (batch) =>
          batch[0] !== undefined && (await store.event(batch[0]['event.id'] as string)) !== undefined,
      ),
      await DurableLoop.alerts(durable('respond'), onAlerts),
    );
    for (const shard of b.correlate) {
      const w = new CorrelationWorker({
        bus,
        shard,
        rules: o.rules,
        correlator: correlatorOptions,
        holder: `${group}/${process.pid}`,
        log,
      });
      w.start();
      workers.push(w);
    }
  }

  const reads = new ReadAuditLog(join(o.dataDir, READ_AUDIT_FILE), log);
  const audit = async (a: AuditEntry): Promise<void> => {
    if (isReadAction(a.action)) return reads.append(a, now());
    try {
      await store.insertEvents([auditEvent(a, { siem: identity.identity, now: now(), id: newId(now()) })]);
    } catch (err) {
      log.error({ err, action: a.action }, 'could not store an audit event');
    }
  };
  const crlIntervalMs = o.crlIntervalMs ?? CRL_INTERVAL_MS;
  const crlWatch =
    o.caUrl !== undefined && crlIntervalMs > 0
      ? new CrlWatch({
          caUrl: o.caUrl,
          identity: () => identity,
          intervalMs: crlIntervalMs,
          log,
          onCrl: (serials, thisUpdate) => {
            if (!revoked.applyCrl(serials, thisUpdate)) return false;
            revokedSerials.notify([...serials]);
            return true;
          },
          now,
          file: join(o.dataDir, CRL_FILE),
        })
      : undefined;
  await crlWatch?.restore();
  if (crlWatch !== undefined) {
    const w = crlWatch;
    metrics.registry.collected(
      'edgeward_siem_crl_stale',
      '1 while the CA CRL in force is past its nextUpdate (its serials still refused), or none was verified yet',
      'gauge',
      () => [[{}, w.status().state === 'current' ? 0 : 1]],
    );
    metrics.registry.collected(
      'edgeward_siem_crl_next_update_seconds',
      'The nextUpdate of the CA CRL in force, seconds since the Unix epoch',
      'gauge',
      () => {
        const next = w.status().nextUpdate;
        return next === null ? [] : [[{}, next / 1000]];
      },
    );
  }

  const tls = (id: LoadedIdentity) => ({ key: id.keyPem, cert: id.certPem, ca: id.bundlePem });
  const app = createHttpsServer({
    log,
    bodyLimit: 64 * 1024,
    timeouts: { requestMs: 30_000, keepAliveMs: 30_000 },
    tls: { ...tls(identity), requestCert: true },
    onRefusal: (e, _err, req, reply) => {
      if (req.url.startsWith('/v1/events')) metrics.rejected.inc({ reason: e.code }, 1, sourceOf(req));
      if (e.code === 'ERR_SIEM_OVERLOADED') void reply.header('retry-after', '1');
      if (e.code === 'ERR_SIEM_BUS_UNAVAILABLE') void reply.header('retry-after', '2');
      if (e.code === 'ERR_SIEM_REPORTER_RATE')
        void reply.header('retry-after', String(Number(e.detail?.['retryAfter'] ?? 1)));
    },
  });
  const routes: SiemRouteContext = {
    trustDomain,
    hub,
    streams,
    engine,
    store,
    stores,
    ingest,
    gate,
    revoked,
    subscribeRevoked: (fn) => revokedSerials.subscribe(fn),
    metrics,
    log,
    now,
    newId,
    identity: () => identity,
    crlWatch: () => crlWatch,
    budgets: reporterPolicy.budgets,
    maxBatchEvents: o.maxBatchEvents ?? MAX_BATCH_EVENTS,
    bodyLimit: o.bodyLimit ?? 1024 * 1024,
    maxSubscribers,
    analyst: createAnalystRunner(createAnalystAuthorizer(trustDomain, o.analyst), audit),
    revokeAtCa,
  };
  await app.register(healthRoutes(routes));
  await app.register(eventRoutes(routes));
  await app.register(decisionRoutes(routes));
  await app.register(analystRoutes(routes));

  // ---- timers: expiry, heartbeats, retention, the CRL, renewal ----
  const expire = (): Promise<void> =>
    hub.expire().then(
      () => undefined,
      (err: unknown) => log.error({ err }, 'decision expiry failed'),
    );
  await expire();
  const expiry = setInterval(() => void expire(), o.expireEveryMs ?? 1000);
  expiry.unref();
  // Replicas on one store: each follows the decisions the others store (by the stored revision).
  // With the bus the decisions stream brings them at once; this poll stays as the safety net for a
  // publish that never came (bus down, its replica killed), and publishes what it found missing,
  // a revision stored before this start among them, after the same grace (its replica may be
  // publishing it right now).
  let following = false;
  const follow = setInterval(() => {
    if (following) return;
    following = true;
    void followStore()
      .catch((err: unknown) => log.warn({ err }, 'could not read the decisions other replicas stored'))
      .finally(() => (following = false));
  }, o.followMs ?? 250);
  follow.unref();
  if (store.revision === undefined) clearInterval(follow);
  const heartbeat = setInterval(() => streams.heartbeat(), o.heartbeatMs ?? 15_000);
  heartbeat.unref();
  let retention: NodeJS.Timeout | undefined;
  if (o.retentionDays !== undefined) {
    const days = o.retentionDays;
    const run = (): void =>
      void applyRetention(store, days, now()).then(
        (n) => n > 0 && log.info({ deleted: n }, 'retention'),
        (err: unknown) => log.error({ err }, 'retention failed'),
      );
    run();
    retention = setInterval(run, 3_600_000);
    retention.unref();
  }
  crlWatch?.start();
  let renewer: IdentityRenewer | undefined;
  if (o.identityDir !== undefined && o.caUrl !== undefined) {
    renewer = new IdentityRenewer({
      dir: o.identityDir,
      caUrl: o.caUrl,
      now,
      log,
      onRenewed(next) {
        identity = next;
        setServerTls(app, tls(next));
        hub.setSigner(signerOf(next));
      },
    });
    renewer.start(identity);
  }

  await app.listen({ host: o.host, port: o.port });
  const { url, port } = listeningUrl(app, o.host, o.port);
  let closed = false;
  return {
    url,
    port,
    trustDomain,
    hub,
    store,
    stores,
    ingest,
    metrics,
    identity: () => identity,
    subscribeEvents: (fn) => events.subscribe(fn),
    subscribeAlerts: (fn) => alerts.subscribe(fn),
    subscribeRevoked: (fn) => revokedSerials.subscribe(fn),
    revoked,
    audit,
    now,
    async renewNow() {
      if (renewer === undefined)
        throw new EdgewardError('ERR_SIEM_IDENTITY', 'no identity folder or CA to renew with');
      return renewer.renewNow();
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(expiry);
      clearInterval(heartbeat);
      clearInterval(follow);
      if (retention) clearInterval(retention);
      renewer?.stop();
      crlWatch?.stop();
      await ingest.close();
      for (const w of workers) await w.stop();
      for (const l of busLoops) await l.close();
      await decisionBus?.stop();
      await bus?.close();
      await hub.settled();
      hub.close();
      await presence.stop();
      await app.close();
      await stores.close();
      reads.close();
    },
  };
}
