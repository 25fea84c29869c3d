// The SIEM's HTTPS API (fastify, TLS 1.3, mTLS): event ingest, the signed decision stream and
// its polling fallback, acknowledgements, the analyst API, health and metrics. A thin adapter
// over the ingest pipeline, the correlator, the response engine and the decision hub.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Fastify, { LogController, type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import { systemClock, parseDuration, type Clock } from '../common/clock.js';
import {
  DECISION_ACTIONS,
  DECISION_SCOPE_SCHEMA,
  type DecisionAction,
  type DecisionScope,
} from '../common/decisions.js';
import { EdgewardError, toClientError } from '../common/errors.js';
import { toEdgewardError } from '../common/http-errors.js';
import { createEventIdFactory, type EdgeEvent } from '../common/events.js';
import type { LoadedIdentity } from '../common/identity-dir.js';
import { parseIdentity, serviceId } from '../common/identity.js';
import { createLogger, type Logger } from '../common/log.js';
import { PROMETHEUS_CONTENT_TYPE } from '../common/metrics.js';
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
import { applyRetention, openSqliteStore, type TimelineEntity } from './store/index.js';
import { openEventWriter, yieldingStore, type EventWriter } from './store/event-writer.js';
import { auditEvent, type AuditEntry } from './service/audit.js';
import { createCaRevoker, revocable, type CaRevoker } from './service/ca-link.js';
import { CRL_INTERVAL_MS, CrlWatch } from './service/crl-watch.js';
import { isReadAction, READ_AUDIT_FILE, ReadAuditLog } from './service/read-audit.js';
import { signerOf } from './service/decision-key.js';
import { DecisionHub, type Subscriber } from './service/hub.js';
import { IdentityRenewer } from './service/identity.js';
import { IngestPipeline } from './service/ingest.js';
import { createSiemMetrics } from './service/metrics.js';
import { MAX_BATCH_EVENTS, decodeBatch, stampBatch } from './service/parse-batch.js';
import {
  createAnalystAuthorizer,
  reporterOf,
  type AnalystExtension,
  type Principal,
  type ReporterPeer,
} from './service/peer.js';
import { ReporterGate, RevokedSerials } from './service/reporters.js';
import type { RunningSiem } from './running-siem.js';
import { resumeRevision } from './service/sse.js';

export interface SiemServerOptions {
  /** Holds siem.db (events and their timelines) and siem.state.db (alerts, decisions, revision). */
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  /** The SIEM's enrolled identity (spiffe://TD/svc/siem): TLS server certificate and signing key. */
  readonly identity: LoadedIdentity;
  /** With caUrl: renew the identity in this folder at 2/3 of its lifetime. */
  readonly identityDir?: string;
  /** The CA, for renewal and for revocations. */
  readonly caUrl?: string;
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
}

const STREAM_BUFFER_LIMIT = 4 * 1024 * 1024;
const TIMELINE_KINDS: readonly TimelineEntity[] = [
  'identity',
  'source.identity',
  'destination.identity',
  'source.ip',
  'serial',
];

const str = (max: number, pattern?: string): Record<string, unknown> => ({
  type: 'string',
  minLength: 1,
  maxLength: max,
  ...(pattern ? { pattern } : {}),
});
const DIGITS = '^[0-9]{1,15}$';
const SCHEMAS = {
  ack: {
    type: 'object',
    required: ['revision'],
    additionalProperties: false,
    properties: { revision: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } },
  },
  manual: {
    type: 'object',
    required: ['scope', 'action', 'ttl', 'reason'],
    additionalProperties: false,
    properties: {
      scope: DECISION_SCOPE_SCHEMA,
      action: { enum: DECISION_ACTIONS },
      ttl: str(16, '^[0-9]{1,9}(ms|s|m|h|d)$'),
      reason: { type: 'string', maxLength: 512 },
      revoke: { type: 'boolean' },
    },
  },
  idParam: {
    type: 'object',
    required: ['id'],
    properties: { id: str(64, '^[A-Za-z0-9._:-]+$') },
  },
  fromQuery: {
    type: 'object',
    additionalProperties: false,
    properties: { from: str(15, DIGITS) },
  },
  alertsQuery: {
    type: 'object',
    additionalProperties: false,
    properties: { since: str(15, DIGITS), rule: str(128, '^[A-Za-z0-9._-]+$'), limit: str(5, DIGITS) },
  },
  timelineParams: {
    type: 'object',
    required: ['kind', 'value'],
    properties: { kind: { enum: TIMELINE_KINDS }, value: str(2048) },
  },
  timelineQuery: {
    type: 'object',
    additionalProperties: false,
    properties: { since: str(15, DIGITS), until: str(15, DIGITS), limit: str(5, DIGITS) },
  },
} as const;

const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));

export async function startSiemServer(o: SiemServerOptions): Promise<RunningSiem> {
  const clock = o.clock ?? systemClock;
  const now = (): number => clock.now();
  const log = o.log ?? createLogger('siem');
  let identity = o.identity;
  const trustDomain = parseIdentity(identity.identity).trustDomain;
  if (identity.identity !== serviceId(trustDomain, 'siem'))
    throw new EdgewardError('ERR_SIEM_IDENTITY', `the SIEM runs as ${serviceId(trustDomain, 'siem')}`);
  const metrics = createSiemMetrics();
  const ownStore = openSqliteStore(
    join(o.dataDir, 'siem.db'),
    o.synchronous ? { synchronous: o.synchronous } : {},
  );
  // Ingested events are inserted through their own connection (on a worker thread by default);
  // the store's connection keeps the other writes and every read.
  let writer: EventWriter;
  try {
    writer = await openEventWriter(join(o.dataDir, 'siem.db'), {
      ...(o.synchronous ? { synchronous: o.synchronous } : {}),
      thread: o.ingestThread ?? true,
    });
  } catch (err) {
    ownStore.close();
    throw err;
  }
  // The store's writes take priority over the next group of ingested events.
  const store = yieldingStore(ownStore, writer);
  const newId = createEventIdFactory(randomBytes);
  const engine = new ResponseEngine({ trustDomain, config: o.playbooks });
  engine.importState(store.loadResponseState());
  const reporterPolicy = o.reporterPolicy ?? loadReporterPolicy(defaultPolicyPath('reporter-policy.yaml'));
  const budgets = reporterPolicy.budgets;
  const revoked = new RevokedSerials();
  const gate = new ReporterGate({
    policy: compileReporterPolicy(reporterPolicy),
    revoked,
    decisions: () => ({ revision: engine.revision, active: () => engine.active() }),
    now,
  });
  const revoker: CaRevoker | undefined =
    o.caUrl === undefined ? undefined : createCaRevoker({ caUrl: o.caUrl, identity: () => identity });
  const revokeRules = new Set(o.revokeRules ?? []);

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
    signer: signerOf(identity),
    now,
    log,
    ...(o.maxSubscribers !== undefined ? { maxSubscribers: o.maxSubscribers } : {}),
    onPublished: (c) => metrics.publishSeconds.observe(c.publishMs / 1000),
  });
  // Decisions stored before scopes had one canonical form are rewritten or lifted, and published.
  const repaired = hub.change((e) => e.repairScopes());
  if (repaired.rewritten.length + repaired.lifted.length > 0)
    log.warn(repaired, 'decision scopes made canonical');

  const eventListeners = new Set<(events: readonly EdgeEvent[]) => void>();
  const revokedListeners = new Set<(serials: readonly string[]) => void>();
  const alertListeners = new Set<(alert: Alert) => void>();
  const notify = <T>(set: Set<(x: T) => void>, x: T): void => {
    for (const fn of set) {
      try {
        fn(x);
      } catch (err) {
        log.error({ err }, 'a listener failed');
      }
    }
  };
  const onAlerts = (alerts: Alert[]): void => {
    for (const a of alerts) metrics.alerts.inc({ rule: a.ruleId });
    for (const a of alerts) notify(alertListeners, a);
    // Decisions first (their commit is on the path to enforcement), the alerts' own commit after.
    // Both go to the state file: neither waits for the ingest writer's transaction.
    let outcome: ReturnType<DecisionHub['handleAlerts']> | undefined;
    try {
      outcome = hub.handleAlerts(alerts);
    } catch (err) {
      log.error({ err }, 'response engine failed');
    }
    try {
      store.insertAlerts(alerts);
    } catch (err) {
      log.error({ err }, 'could not store alerts');
    }
    if (outcome === undefined) return;
    if (outcome.applied.length > 0) metrics.decisions.inc({ outcome: 'applied' }, outcome.applied.length);
    if (outcome.pending.length > 0) metrics.decisions.inc({ outcome: 'pending' }, outcome.pending.length);
    if (outcome.simulated.length > 0)
      metrics.decisions.inc({ outcome: 'simulated' }, outcome.simulated.length);
    for (const s of outcome.skipped) metrics.decisions.inc({ outcome: `skipped_${s.reason}` });
    if (revokeRules.size > 0 && revoker !== undefined) {
      const ruleOf = new Map(alerts.map((a) => [a.id, a.ruleId]));
      for (const d of outcome.applied) {
        if (!revocable(d.scope) || !d.alerts.some((id) => revokeRules.has(ruleOf.get(id) ?? ''))) continue;
        revokeAtCa(d.scope, d.reason).then(
          (serials) => log.info({ decision: d.id, scope: d.scope, serials }, 'revoked at the CA'),
          (err: unknown) => log.error({ err, decision: d.id }, 'revocation at the CA failed'),
        );
      }
    }
  };

  const ingest = new IngestPipeline({
    writer,
    correlator: new Correlator(o.rules, {
      maxGroupsPerReporter: budgets.correlationKeys,
      ...(o.correlator ?? {}),
    }),
    log,
    onAlerts,
    onCommitted: (events) => {
      // The CA's revocations count at once, before the next CRL poll lists them.
      const serials = revoked.learn(events);
      if (serials.length > 0) notify(revokedListeners, serials);
      notify(eventListeners, events);
    },
    onGroupCommit: () => metrics.commits.inc(),
    ...(o.maxQueuedEvents !== undefined ? { maxQueuedEvents: o.maxQueuedEvents } : {}),
    ...(o.maxCommitEvents !== undefined ? { maxCommitEvents: o.maxCommitEvents } : {}),
  });
  const maxBatch = o.maxBatchEvents ?? MAX_BATCH_EVENTS;
  const bodyLimit = o.bodyLimit ?? 1024 * 1024;

  const reads = new ReadAuditLog(join(o.dataDir, READ_AUDIT_FILE), log);
  const audit = (a: AuditEntry): void => {
    if (isReadAction(a.action)) return reads.append(a, now());
    try {
      store.insertEvents([auditEvent(a, { siem: identity.identity, now: now(), id: newId(now()) })]);
    } catch (err) {
      log.error({ err, action: a.action }, 'could not store an audit event');
    }
  };
  const authorizeAnalyst = createAnalystAuthorizer(trustDomain, o.analyst);

  /** Refuses a reporter whose certificate is revoked or under one of our own decisions. */
  const standing = (peer: ReporterPeer): void => {
    const why = gate.standing(peer);
    if (why !== null) {
      metrics.reporterRefusals.inc({ kind: peer.kind, reporter: peer.identity, code: why });
      throw new EdgewardError(why);
    }
  };
  const overBudget = (peer: ReporterPeer, n: number): EdgewardError => {
    metrics.reporterRefusals.inc({
      kind: peer.kind,
      reporter: peer.identity,
      code: 'ERR_SIEM_REPORTER_RATE',
    });
    return new EdgewardError('ERR_SIEM_REPORTER_RATE', undefined, {
      detail: { retryAfter: gate.retryAfter(peer.identity, n) },
    });
  };
  /** Who may follow, poll and acknowledge the decision stream: the policy's subscribers, unrevoked. */
  const subscriber = (req: FastifyRequest): ReporterPeer => {
    const peer = reporterOf(req, trustDomain);
    if (revoked.has(peer.serial)) throw new EdgewardError('ERR_SIEM_REPORTER_REVOKED');
    if (!gate.policy.maySubscribe(peer.kind)) throw new EdgewardError('ERR_SIEM_SUBSCRIBER_FORBIDDEN');
    return peer;
  };
  /** Open decision streams per identity (bounded by the reporter policy's budget). */
  const streamsOf = new Map<string, number>();

  /** Runs an analyst operation: authorizes, audits success and failure, returns the answer. */
  async function analyst<T>(
    req: FastifyRequest,
    action: string,
    what: string,
    fn: (p: Principal) => Promise<T> | T,
    facts?: (r: T) => { decisionId?: string; revision?: number },
  ): Promise<T> {
    let p: Principal | undefined;
    try {
      p = authorizeAnalyst(req);
      const r = await fn(p);
      audit({ action, principal: p, ip: req.ip, ok: true, message: what, ...facts?.(r) });
      return r;
    } catch (err) {
      const code = err instanceof EdgewardError ? err.code : 'ERR_INTERNAL';
      audit({ action, principal: p, ip: req.ip, ok: false, code, message: what });
      throw err;
    }
  }

  const tls = (id: LoadedIdentity) => ({ key: id.keyPem, cert: id.certPem, ca: id.bundlePem });
  const app = Fastify({
    loggerInstance: log,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    requestTimeout: 30_000,
    keepAliveTimeout: 30_000,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    https: {
      ...tls(identity),
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      handshakeTimeout: 10_000,
    },
  });

  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const e = toEdgewardError(err);
    if (req.url.startsWith('/v1/events')) metrics.rejected.inc({ reason: e.code });
    if (e.code === 'ERR_INTERNAL') log.error({ err }, 'internal error');
    else log.debug({ code: e.code, url: req.url, detail: e.detail, reason: e.message }, 'refused');
    if (e.code === 'ERR_SIEM_OVERLOADED') void reply.header('retry-after', '1');
    if (e.code === 'ERR_SIEM_REPORTER_RATE')
      void reply.header('retry-after', String(Number(e.detail?.['retryAfter'] ?? 1)));
    void reply.status(e.statusCode).send(toClientError(e));
  });
  app.setNotFoundHandler((_req, reply) => {
    void reply.status(404).send(toClientError(new EdgewardError('ERR_NOT_FOUND')));
  });

  app.get('/healthz', async () => ({
    status: 'ok',
    trustDomain,
    revision: hub.revision,
    revokedSerials: revoked.size,
    ...(crlWatch
      ? { crl: { polls: crlWatch.polls, failures: crlWatch.failures, ok: crlWatch.lastError === null } }
      : {}),
  }));
  app.get('/metrics', async (_req, reply) => {
    const t = now();
    const lag = hub.ledger.maxLag(t);
    metrics.revision.set(undefined, hub.revision);
    metrics.active.set(undefined, engine.active().length);
    metrics.subscribers.set(undefined, hub.subscribers);
    metrics.agents.set(undefined, hub.ledger.list(t).filter((a) => a.connected > 0).length);
    metrics.lagRevisions.set(undefined, lag.behind);
    metrics.lagSeconds.set(undefined, lag.lagMs / 1000);
    metrics.queued.set(undefined, ingest.queued);
    const wal = writer.walCheckpoints();
    metrics.walCheckpoints.set({ result: 'pass' }, wal.passes);
    metrics.walCheckpoints.set({ result: 'restart' }, wal.restarts);
    metrics.walCheckpoints.set({ result: 'refused' }, wal.refused);
    return reply.type(PROMETHEUS_CONTENT_TYPE).send(metrics.registry.render());
  });
  // Public: the certificate chain whose key signs decisions (verifiers check it against the bundle).
  app.get('/v1/decisions/key', async (_req, reply) =>
    reply.header('x-edgeward-kid', hub.kid).type('application/x-pem-file').send(identity.certPem),
  );

  // ---- ingest ----
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      ['application/json', 'application/x-ndjson'],
      { parseAs: 'buffer', bodyLimit },
      (_req, body, done) => done(null, body),
    );
    scope.post(
      '/v1/events',
      {
        bodyLimit,
        // Refuse before reading a body: who is it, may it be heard, and is there room?
        onRequest: async (req) => {
          const peer = reporterOf(req, trustDomain);
          standing(peer);
          if (!gate.hasBudget(peer.identity)) throw overBudget(peer, 1);
          if (!ingest.hasRoom(1)) throw new EdgewardError('ERR_SIEM_OVERLOADED');
        },
      },
      async (req, reply) => {
        const peer = reporterOf(req, trustDomain);
        if (!Buffer.isBuffer(req.body)) throw new EdgewardError('ERR_SIEM_BATCH_MALFORMED', 'no body');
        const ndjson = String(req.headers['content-type'] ?? '').startsWith('application/x-ndjson');
        const raw = decodeBatch(req.body, ndjson ? 'ndjson' : 'json', maxBatch);
        // Refused events cost the reporter too: the budget is what it sends, not what is kept.
        if (!gate.spend(peer.identity, raw.length)) throw overBudget(peer, raw.length);
        const stamped: EdgeEvent[] = stampBatch(raw, {
          observer: peer.identity,
          observerType: peer.kind,
          now: now(),
          newId,
          maxEvents: maxBatch,
        });
        const { accepted: events, refused } = gate.filter(peer, stamped);
        for (const r of refused)
          metrics.reporterRefusals.inc({ kind: peer.kind, reporter: peer.identity, code: r.code });
        if (events.length === 0 && refused.length > 0) {
          const first = refused[0] as (typeof refused)[number];
          throw new EdgewardError(first.code, undefined, { detail: { refused: refused.slice(0, 100) } });
        }
        const t0 = performance.now();
        await ingest.submit(events);
        metrics.commitSeconds.observe((performance.now() - t0) / 1000);
        metrics.ingested.inc(undefined, events.length);
        metrics.batches.inc();
        return reply
          .status(200)
          .send(refused.length === 0 ? { accepted: events.length } : { accepted: events.length, refused });
      },
    );
  });

  // ---- decision distribution (any identity of the trust domain) ----
  app.get<{ Querystring: { from?: string } }>(
    '/v1/decisions/stream',
    { schema: { querystring: SCHEMAS.fromQuery } },
    async (req, reply) => {
      const peer = subscriber(req);
      const lastId = req.headers['last-event-id'];
      const from = resumeRevision(req.query.from, typeof lastId === 'string' ? lastId : undefined);
      if (from !== null && Number.isNaN(from))
        throw new EdgewardError('ERR_INPUT_MALFORMED', 'Last-Event-ID must be a revision');
      if (hub.subscribers >= (o.maxSubscribers ?? 20_000)) throw new EdgewardError('ERR_SIEM_STREAM_LIMIT');
      const open = streamsOf.get(peer.identity) ?? 0;
      if (open >= budgets.decisionStreams)
        throw new EdgewardError('ERR_SIEM_STREAM_IDENTITY_LIMIT', undefined, {
          detail: { open, max: budgets.decisionStreams },
        });
      streamsOf.set(peer.identity, open + 1);
      let counted = true;
      const release = (): void => {
        if (!counted) return;
        counted = false;
        const n = (streamsOf.get(peer.identity) ?? 1) - 1;
        if (n <= 0) streamsOf.delete(peer.identity);
        else streamsOf.set(peer.identity, n);
      };
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
      });
      res.write(': edgeward decision stream\nretry: 1000\n\n');
      const sub: Subscriber = {
        identity: peer.identity,
        sent: -1,
        send(frame) {
          if (res.destroyed || res.writableEnded || res.writableLength > STREAM_BUFFER_LIMIT) return false;
          res.write(frame);
          return true;
        },
        close() {
          if (!res.writableEnded) res.end();
        },
      };
      res.on('close', () => {
        release();
        hub.unsubscribe(sub);
      });
      hub.subscribe(sub, from).catch((err: unknown) => {
        log.warn({ err, identity: peer.identity }, 'decision stream could not start');
        sub.close();
      });
    },
  );

  /** Polling fallback for agents, and the analysts' view when no `from` is given. */
  app.get<{ Querystring: { from?: string } }>(
    '/v1/decisions',
    { schema: { querystring: SCHEMAS.fromQuery } },
    async (req) => {
      if (req.query.from !== undefined) {
        subscriber(req);
        const s = await hub.signedSince(Number(req.query.from));
        return { kind: s.kind, revision: s.revision, ...(s.jws !== undefined ? { jws: s.jws } : {}) };
      }
      return analyst(req, 'siem.read.decisions', 'listed decisions', () => ({
        revision: hub.revision,
        active: engine.active(),
        pending: engine.pending(),
        simulated: engine.simulated(),
      }));
    },
  );

  app.post<{ Body: { revision: number } }>(
    '/v1/decisions/ack',
    { schema: { body: SCHEMAS.ack } },
    async (req) => {
      const peer = subscriber(req);
      const current = hub.revision;
      if (req.body.revision > current)
        throw new EdgewardError('ERR_SIEM_ACK_REVISION', undefined, {
          detail: { revision: req.body.revision, current },
        });
      hub.ledger.ack(peer.identity, req.body.revision, now());
      return { revision: req.body.revision, current };
    },
  );

  // ---- analyst API ----
  app.post<{
    Body: { scope: DecisionScope; action: DecisionAction; ttl: string; reason: string; revoke?: boolean };
  }>('/v1/decisions', { schema: { body: SCHEMAS.manual } }, async (req, reply) => {
    const b = req.body;
    const r = await analyst(
      req,
      'siem.decision.create',
      `quarantine ${b.scope.type} ${b.scope.value.slice(0, 200)} (${b.action}, ${b.ttl}): ${b.reason.slice(0, 200)}`,
      async () => {
        const ttlMs = parseDuration(b.ttl);
        if (!(ttlMs >= 1000 && ttlMs <= 365 * 86_400_000))
          throw new EdgewardError('ERR_INPUT_MALFORMED', 'ttl must be between 1s and 365d');
        const decision = hub.change((e, t) =>
          e.createManual(
            {
              scope: { type: b.scope.type, value: b.scope.value },
              action: b.action,
              ttlMs,
              reason: b.reason,
            },
            t,
          ),
        );
        if (b.revoke !== true) return { decision };
        try {
          return { decision, revoked: await revokeAtCa(decision.scope, decision.reason) };
        } catch (err) {
          const code = err instanceof EdgewardError ? err.code : 'ERR_INTERNAL';
          log.error({ err, decision: decision.id }, 'revocation at the CA failed');
          return { decision, revokeError: code };
        }
      },
      (x) => ({ decisionId: x.decision.id, revision: x.decision.revision }),
    );
    return reply.status(201).send(r);
  });

  app.post<{ Params: { id: string } }>(
    '/v1/decisions/:id/approve',
    { schema: { params: SCHEMAS.idParam } },
    async (req) =>
      analyst(
        req,
        'siem.decision.approve',
        `approve pending ${req.params.id}`,
        () => ({ decision: hub.change((e, t) => e.approve(req.params.id, t)) }),
        (x) => ({ decisionId: x.decision.id, revision: x.decision.revision }),
      ),
  );
  app.post<{ Params: { id: string } }>(
    '/v1/decisions/:id/reject',
    { schema: { params: SCHEMAS.idParam } },
    async (req) =>
      analyst(req, 'siem.decision.reject', `reject pending ${req.params.id}`, () => ({
        rejected: hub.change((e) => e.reject(req.params.id)),
      })),
  );
  app.post<{ Params: { id: string } }>(
    '/v1/decisions/:id/lift',
    { schema: { params: SCHEMAS.idParam } },
    async (req) =>
      analyst(
        req,
        'siem.decision.lift',
        `lift ${req.params.id}`,
        () => ({ lifted: hub.change((e) => e.lift(req.params.id)), revision: hub.revision }),
        (x) => ({ decisionId: x.lifted.id, revision: x.revision }),
      ),
  );
  app.get<{ Querystring: { since?: string; rule?: string; limit?: string } }>(
    '/v1/alerts',
    { schema: { querystring: SCHEMAS.alertsQuery } },
    async (req) =>
      analyst(req, 'siem.read.alerts', 'listed alerts', () => {
        const since = num(req.query.since);
        const limit = num(req.query.limit);
        return {
          alerts: store.alerts({
            ...(since !== undefined ? { since } : {}),
            ...(limit !== undefined ? { limit } : {}),
            ...(req.query.rule !== undefined ? { ruleId: req.query.rule } : {}),
          }),
        };
      }),
  );
  app.get<{
    Params: { kind: TimelineEntity; value: string };
    Querystring: { since?: string; until?: string; limit?: string };
  }>(
    '/v1/entities/:kind/:value/timeline',
    { schema: { params: SCHEMAS.timelineParams, querystring: SCHEMAS.timelineQuery } },
    async (req) =>
      analyst(
        req,
        'siem.read.timeline',
        `timeline of ${req.params.kind} ${req.params.value.slice(0, 200)}`,
        () => {
          const since = num(req.query.since);
          const until = num(req.query.until);
          const limit = num(req.query.limit);
          return {
            kind: req.params.kind,
            value: req.params.value,
            events: store.timeline({
              entity: req.params.kind,
              value: req.params.value,
              ...(since !== undefined ? { since } : {}),
              ...(until !== undefined ? { until } : {}),
              ...(limit !== undefined ? { limit } : {}),
            }),
          };
        },
      ),
  );
  app.get('/v1/agents', async (req) =>
    analyst(req, 'siem.read.agents', 'listed agents', () => ({
      revision: hub.revision,
      agents: hub.ledger.list(now()),
    })),
  );

  // ---- timers: expiry, heartbeats, retention, renewal ----
  hub.expire();
  const expiry = setInterval(() => {
    try {
      hub.expire();
    } catch (err) {
      log.error({ err }, 'decision expiry failed');
    }
  }, o.expireEveryMs ?? 1000);
  expiry.unref();
  const heartbeat = setInterval(() => hub.heartbeat(), o.heartbeatMs ?? 15_000);
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
  const crlWatch =
    o.caUrl !== undefined && (o.crlIntervalMs ?? CRL_INTERVAL_MS) > 0
      ? new CrlWatch({
          caUrl: o.caUrl,
          identity: () => identity,
          intervalMs: o.crlIntervalMs ?? CRL_INTERVAL_MS,
          log,
          onCrl: (serials, thisUpdate) => {
            if (!revoked.applyCrl(serials, thisUpdate)) return;
            notify(revokedListeners, [...serials]);
          },
        })
      : undefined;
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
        app.server.setSecureContext({ ...tls(next), minVersion: 'TLSv1.3' });
        hub.setSigner(signerOf(next));
      },
    });
    renewer.start(identity);
  }

  await app.listen({ host: o.host, port: o.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  const hostForUrl =
    o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host.includes(':') ? `[${o.host}]` : o.host;
  let closed = false;
  return {
    url: `https://${hostForUrl}:${port}`,
    port,
    trustDomain,
    hub,
    store,
    ingest,
    metrics,
    identity: () => identity,
    subscribeEvents(fn) {
      eventListeners.add(fn);
      return () => void eventListeners.delete(fn);
    },
    subscribeAlerts(fn) {
      alertListeners.add(fn);
      return () => void alertListeners.delete(fn);
    },
    subscribeRevoked(fn) {
      revokedListeners.add(fn);
      return () => void revokedListeners.delete(fn);
    },
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
      if (retention) clearInterval(retention);
      renewer?.stop();
      crlWatch?.stop();
      await ingest.close();
      await hub.settled();
      hub.closeAll();
      await app.close();
      await writer.close();
      store.close();
      reads.close();
    },
  };
}
