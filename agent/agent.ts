// The running agent: wires identity rotation, the enforcement index, listeners, the reporter,
// the CRL poller, the decision stream and the admin endpoint; applies a reloaded config.
import { join } from 'node:path';
import { systemClock, type Clock } from '../common/clock.js';
import { EdgewardError } from '../common/errors.js';
import type { DecisionSet } from '../common/decisions.js';
import type { EdgeEvent } from '../common/events.js';
import { serviceId } from '../common/identity.js';
import { createLogger, type Logger } from '../common/log.js';
import { AdminServer, type Health } from './admin.js';
import type { AgentConfig } from './config.js';
import { baseEvent, createAgentMetrics, type AgentContext, type AgentMetrics } from './context.js';
import { CrlPoller, httpsCrlFetcher, type CrlFetcher, type CrlStatus } from './crl-poller.js';
import {
  DecisionStreamClient,
  DecisionStore,
  NatsDecisionClient,
  peekDecision,
  type DecisionVerifier,
  httpsBatchSender,
  Reporter,
  type BatchSender,
  type EventSink,
  Spool,
} from '../client/index.js';
import { Enforcer } from './enforcement.js';
import { InboundListener } from './inbound.js';
import { HandshakeRateLimiter } from './limits.js';
import { OutboundListener } from './outbound.js';
import { Rotation, type IdentityMaterial, type IdentityRefresher } from './rotation.js';
import { readFile } from 'node:fs/promises';

export interface AgentDeps {
  readonly verifier: DecisionVerifier;
  /** Renewal with the current certificate (client/renew.ts). */
  readonly renew?: IdentityRefresher;
  /** Enrollment through attestation (client/enroll.ts). */
  readonly enroll?: IdentityRefresher;
  readonly clock?: Clock;
  readonly log?: Logger;
  /** Replaces the SIEM reporter (tests that capture events). */
  readonly sink?: EventSink;
  /** Replaces the HTTPS batch sender of the reporter. */
  readonly sender?: BatchSender;
  /** Replaces the HTTPS CRL fetch; null disables CRL polling. */
  readonly fetchCrl?: CrlFetcher | null;
  /** Renewal point as a fraction of the lifetime (default 2/3). */
  readonly renewAt?: number;
}

const notWired =
  (what: string): IdentityRefresher =>
  () =>
    Promise.reject(new EdgewardError('ERR_AGENT_ROTATION', `${what} is not wired into this agent`));

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Where the decision set in force came from, for /healthz. */
export type DecisionSource = 'stored' | 'stream' | 'nats' | 'file';

/**
 * What /healthz says of the decisions. `verified`: a verified set is enforced; `none`: nothing
 * stored or received yet; `refused`: the stored set did not verify (the agent fails closed until
 * a verified snapshot arrives).
 */
export interface DecisionStatus {
  readonly state: 'verified' | 'none' | 'refused';
  readonly source: DecisionSource | null;
  readonly revision: number;
  readonly issuedAt: number | null;
  readonly error: string | null;
}

/** Refusals of a peer, logged at info besides the event (the log names who was turned away and why). */
const REFUSALS = new Set(['handshake.failure', 'connection.denied']);

function logRefusal(log: Logger, e: EdgeEvent): void {
  const action = e['event.action'];
  if (typeof action !== 'string' || !REFUSALS.has(action)) return;
  log.info(
    {
      action,
      code: e['error.code'],
      reason: e['event.reason'],
      direction: e['network.direction'],
      ip: e['source.ip'],
      peer: e['network.direction'] === 'outbound' ? e['destination.identity'] : e['source.identity'],
      serial: e['tls.client.x509.serial_number'],
      decision: e['decision.id'],
    },
    'peer refused',
  );
}

const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

export class Agent {
  readonly enforcer: Enforcer;
  readonly metrics: AgentMetrics;
  readonly rotation: Rotation;
  readonly inbound = new Map<string, InboundListener>();
  readonly outbound = new Map<string, OutboundListener>();
  readonly store: DecisionStore;
  readonly ctx: AgentContext;
  reporter: Reporter | null = null;
  admin: AdminServer | null = null;
  crl: CrlPoller | null = null;
  stream: DecisionStreamClient | null = null;
  /** The decisions stream on NATS (`siem.nats`), beside or instead of the SSE stream. */
  bus: NatsDecisionClient | null = null;
  private spool: Spool | null = null;
  private applyChain: Promise<unknown> = Promise.resolve();
  private readonly log: Logger;
  private readonly clock: Clock;
  private sinkProxy: { target: EventSink };
  /** Where events go without a SIEM: the log, each at info. */
  private readonly logSink: EventSink = {
    emit: (e) => this.log.info({ event: e }, 'security event (no SIEM configured)'),
  };
  private started = false;
  private decisionsState: {
    state: DecisionStatus['state'];
    source: DecisionSource | null;
    error: string | null;
  } = { state: 'none', source: null, error: null };

  private constructor(
    public config: AgentConfig,
    private readonly deps: AgentDeps,
  ) {
    this.clock = deps.clock ?? systemClock;
    this.log = deps.log ?? createLogger('agent');
    this.enforcer = new Enforcer(this.clock);
    this.metrics = createAgentMetrics();
    this.sinkProxy = { target: { emit: () => undefined } };
    const sinkProxy = this.sinkProxy;
    this.rotation = new Rotation({
      dir: config.identity.dir,
      id: config.identity.id,
      clock: this.clock,
      log: this.log,
      renew: deps.renew ?? notWired('renewal'),
      enroll: deps.enroll ?? notWired('enrollment'),
      ...(deps.renewAt !== undefined ? { renewAt: deps.renewAt } : {}),
      onSwap: (m, why) => this.onSwap(m, why),
      onFailure: (err, what) => {
        this.metrics.rotations({ outcome: 'failure' });
        sinkProxy.target.emit(
          baseEvent(this.ctx, what === 'renew' ? 'renewal.failure' : 'enroll.failure', {
            'event.outcome': 'failure',
            'error.code': err instanceof EdgewardError ? err.code : 'ERR_AGENT_ROTATION',
            'event.reason': (err instanceof Error ? err.message : String(err)).slice(0, 256),
            'source.identity': config.identity.id,
          }),
        );
      },
    });
    const rotation = this.rotation;
    this.ctx = {
      clock: this.clock,
      log: this.log,
      enforcer: this.enforcer,
      limiter: new HandshakeRateLimiter(
        this.clock,
        config.limits.handshakeRate,
        config.limits.handshakeBurst,
      ),
      trustDomain: config.identity.trustDomain,
      selfId: config.identity.id,
      events: {
        emit: (e) => {
          // Without a SIEM every event is logged already (logSink).
          if (sinkProxy.target !== this.logSink) logRefusal(this.log, e);
          sinkProxy.target.emit(e);
        },
      },
      metrics: this.metrics,
      limits: config.limits,
      identity: () => rotation.current,
      open: 0,
    };
    this.store = new DecisionStore(
      join(config.state.dir, 'decisions.json'),
      deps.verifier,
      config.identity.trustDomain,
    );
    this.registerCollected();
  }

  static async start(config: AgentConfig, deps: AgentDeps): Promise<Agent> {
    const a = new Agent(config, deps);
    try {
      await a.boot();
    } catch (err) {
      await a.stop().catch(() => undefined);
      throw err;
    }
    return a;
  }

  get events(): EventSink {
    return this.ctx.events;
  }

  private registerCollected(): void {
    const r = this.metrics.registry;
    r.collected('edgeward_agent_connections', 'Live connections per peer identity', () =>
      Array.from(this.enforcer.countsByIdentity(), ([identity, n]) => [{ identity }, n] as const).map(
        ([l, n]) => [l, n],
      ),
    );
    r.collected(
      'edgeward_agent_certificate_expiry_timestamp_seconds',
      'When the agent certificate expires (notAfter), seconds since the Unix epoch',
      () => {
        try {
          return [[{ identity: this.config.identity.id }, Math.floor(this.rotation.current.notAfter / 1000)]];
        } catch {
          return [];
        }
      },
    );
    r.collected('edgeward_agent_spool_events', 'Events waiting in the on-disk spool', () => [
      [{}, this.spool?.size ?? 0],
    ]);
    r.collected(
      'edgeward_agent_spool_dropped_total',
      'Events refused because the spool was full',
      () => [[{}, this.spool?.dropped ?? 0]],
      'counter',
    );
    r.collected(
      'edgeward_agent_events_refused_total',
      'Events the SIEM refused for what they are (4xx), dropped so they do not block the spool, by HTTP status',
      () => [...(this.reporter?.refusedByStatus ?? [])].map(([status, n]) => [{ status: String(status) }, n]),
      'counter',
    );
    r.collected(
      'edgeward_agent_siem_throttled_total',
      'Batches the SIEM answered 429 (kept in the spool and sent again after Retry-After), by error code',
      () => [...(this.reporter?.throttled ?? [])].map(([code, n]) => [{ code }, n]),
      'counter',
    );
    r.collected('edgeward_agent_crl_revoked', 'Serials on the last verified CRL', () => [
      [{}, this.crl?.revokedCount ?? 0],
    ]);
    r.collected(
      'edgeward_agent_crl_next_update_timestamp_seconds',
      'The nextUpdate of the CRL in force, seconds since the Unix epoch (in the past: stale, still enforced)',
      () => {
        const next = this.crl?.status().nextUpdate ?? null;
        return next === null ? [] : [[{}, Math.floor(next / 1000)]];
      },
    );
    r.collected('edgeward_agent_crl_stale', '1 while the CRL in force is past its nextUpdate', () => [
      [{}, this.crl?.status().state === 'stale' ? 1 : 0],
    ]);
    r.collected(
      'edgeward_agent_fail_closed',
      '1 while every connection is refused because the stored decisions or CRL did not verify',
      () => {
        const closed = this.enforcer.failingClosed;
        return (['decisions', 'crl'] as const).map((what) => [{ what }, closed.includes(what) ? 1 : 0]);
      },
    );
    r.collected(
      'edgeward_agent_decision_bus_messages_total',
      'Messages of the NATS decisions stream, by outcome (applied, skipped, refused, gap)',
      () =>
        this.bus === null
          ? []
          : Object.entries(this.bus.counts).map(([outcome, n]): [{ outcome: string }, number] => [
              { outcome },
              n,
            ]),
      'counter',
    );
    this.metrics.decisionRevision(0);
  }

  private async boot(): Promise<void> {
    const c = this.config;
    await this.rotation.start();
    this.startSink(c);
    // Both stored states are enforced before any listener opens, without the network: a start cut
    // off from the SIEM and the CA still refuses what they last said to refuse.
    await this.restoreDecisions();
    await this.loadDecisionsFile(c);
    this.crl = this.createCrl(c);
    await this.crl?.restore();
    for (const ic of c.inbound) {
      const l = new InboundListener(ic, this.ctx);
      await l.start();
      this.inbound.set(ic.name, l);
    }
    for (const oc of c.outbound) {
      const l = new OutboundListener(oc, this.ctx);
      await l.start();
      this.outbound.set(oc.name, l);
    }
    await this.startAdmin(c);
    this.crl?.start();
    this.startStream(c);
    this.startBus(c);
    this.started = true;
  }

  /** The stored set, re-verified with the chains stored beside it; one that does not verify fails closed. */
  private async restoreDecisions(): Promise<void> {
    let set: DecisionSet | null;
    try {
      set = await this.store.load();
    } catch (err) {
      // The listeners still open (the node keeps its identity and its health endpoint), but refuse
      // every connection until a verified snapshot replaces what cannot be trusted.
      const code = err instanceof EdgewardError ? err.code : 'ERR_AGENT_DECISION_STORE';
      this.decisionsState = { state: 'refused', source: null, error: code };
      this.log.error(
        { err },
        'stored decisions are refused: every connection is refused until a verified snapshot arrives',
      );
      this.enforcer.failClosed('decisions', `the stored decisions are refused (${code})`);
      return;
    }
    if (set) {
      this.enforce(set, 'store');
      this.decisionsState = { state: 'verified', source: 'stored', error: null };
    }
  }

  private health(): Health {
    let certOk = false;
    let expiresIn = 0;
    try {
      expiresIn = Math.floor((this.rotation.current.notAfter - this.clock.now()) / 1000);
      certOk = expiresIn > 0;
    } catch {
      certOk = false;
    }
    const c = this.config;
    const set = this.store.current;
    const decisions: DecisionStatus = {
      ...this.decisionsState,
      revision: this.enforcer.decisionRevision,
      issuedAt: set?.issuedAt ?? null,
    };
    const crl: CrlStatus | null = this.crl?.status() ?? null;
    const failClosed = this.enforcer.failingClosed;
    const wantsDecisions = c.decisions.stream || c.decisions.file !== null || c.siem?.nats != null;
    const status =
      !this.started || !certOk || failClosed.length > 0
        ? 'unhealthy'
        : crl?.state === 'stale' || crl?.state === 'none' || (wantsDecisions && decisions.state === 'none')
          ? 'degraded'
          : 'ok';
    return {
      status,
      detail: {
        identity: c.identity.id,
        certificateSecondsToExpiry: expiresIn,
        decisionRevision: decisions.revision,
        decisions: { ...decisions, issuedAt: iso(decisions.issuedAt) },
        crl: crl
          ? { ...crl, thisUpdate: iso(crl.thisUpdate), nextUpdate: iso(crl.nextUpdate) }
          : { state: 'off' },
        failClosed,
        connections: this.enforcer.size,
        siemReachable: this.reporter?.siemUp ?? null,
        decisionStream: this.stream?.connected ?? null,
        decisionBus: this.bus
          ? { connected: this.bus.connected, sequence: this.bus.seq, messages: { ...this.bus.counts } }
          : null,
      },
    };
  }

  private startSink(c: AgentConfig): void {
    if (this.deps.sink) {
      this.sinkProxy.target = this.deps.sink;
      return;
    }
    if (!c.siem) {
      this.sinkProxy.target = this.logSink;
      return;
    }
    const siem = c.siem;
    this.spool ??= new Spool(join(c.state.dir, 'spool.sqlite'), {
      maxEvents: siem.spoolMaxEvents,
      maxBytes: siem.spoolMaxBytes,
    });
    this.reporter = new Reporter({
      spool: this.spool,
      send:
        this.deps.sender ??
        httpsBatchSender({ url: siem.urls, expect: siem.id, context: () => this.rotation.current.context }),
      batchMax: siem.batchMax,
      flushInterval: siem.flushInterval,
      log: this.log,
    });
    this.reporter.start();
    this.sinkProxy.target = this.reporter;
  }

  private async startAdmin(c: AgentConfig): Promise<void> {
    if (!c.admin) return;
    this.admin = new AdminServer(c.admin.listen, {
      health: () => this.health(),
      metrics: () => this.metrics.registry.render(),
    });
    await this.admin.start();
  }

  private crlFetcher(c: AgentConfig): CrlFetcher {
    return (
      this.deps.fetchCrl ??
      httpsCrlFetcher(c.ca.urls, serviceId(c.identity.trustDomain, 'ca'), () => this.rotation.current)
    );
  }

  /** The CRL poller (not started); null when CRL polling is off (tests). */
  private createCrl(c: AgentConfig): CrlPoller | null {
    if (this.deps.fetchCrl === null) return null;
    return new CrlPoller({
      fetch: this.crlFetcher(c),
      enforcer: this.enforcer,
      identity: () => this.rotation.current,
      interval: c.ca.crlInterval,
      log: this.log,
      clock: this.clock,
      file: join(c.state.dir, 'crl.der'),
      onKill: (n) => this.log.warn({ killed: n }, 'connections cut: certificates revoked'),
    });
  }

  private startStream(c: AgentConfig): void {
    if (!c.siem || !c.decisions.stream) return;
    this.stream = new DecisionStreamClient({
      url: c.siem.urls,
      expect: c.siem.id,
      context: () => this.rotation.current.context,
      log: this.log,
      revision: () => this.store.revision,
      // With NATS beside it, whichever brings a revision first applies it; the other's copy is
      // skipped rather than refused (a refusal would make the stream reconnect).
      apply: (kind, token) =>
        c.siem?.nats
          ? this.applyNewDecisionToken(kind, token, 'stream').then((r) => r ?? this.store.revision)
          : this.applyDecisionToken(kind, token, 'stream'),
    });
    this.stream.start();
  }

  /** A delta at or below the applied revision (read unverified: it is only skipped, never applied). */
  private alreadyApplied(token: string): boolean {
    const p = peekDecision(token);
    return (
      this.store.current !== null &&
      typeof p?.revision === 'number' &&
      Number.isSafeInteger(p.revision) &&
      p.revision <= this.store.revision
    );
  }

  private startBus(c: AgentConfig): void {
    const siem = c.siem;
    if (!siem?.nats) return;
    this.bus = new NatsDecisionClient({
      servers: siem.nats.urls,
      stream: siem.nats.stream,
      subject: siem.nats.subject,
      expectServer: siem.nats.id,
      siem: siem.urls,
      expectSiem: siem.id,
      context: () => this.rotation.current.context,
      log: this.log,
      revision: () => this.store.revision,
      hasSet: () => this.store.current !== null,
      apply: (kind, token) => this.applyNewDecisionToken(kind, token, 'nats'),
      positionFile: join(c.state.dir, 'decisions-nats.json'),
    });
    this.bus.start();
  }

  private async loadDecisionsFile(c: AgentConfig): Promise<void> {
    if (!c.decisions.file) return;
    try {
      const token = (await readFile(c.decisions.file, 'utf8')).trim();
      await this.applyDecisionToken('snapshot', token, 'file');
    } catch (err) {
      if (err instanceof EdgewardError && err.code === 'ERR_AGENT_DECISION_REVISION') return;
      this.log.error({ err, file: c.decisions.file }, 'offline decisions file refused');
    }
  }

  /** Verifies, persists and enforces one signed snapshot or delta; strictly one at a time. */
  applyDecisionToken(
    kind: 'snapshot' | 'delta',
    token: string,
    source: Exclude<DecisionSource, 'stored'> = 'stream',
  ): Promise<number> {
    return this.queueApply(kind, token, source, false) as Promise<number>;
  }

  /**
   * As applyDecisionToken, for two sources of the same revisions (SSE and NATS): a delta at or
   * below the applied revision, decided in turn with the other applies, is a copy the other source
   * brought first and is skipped (null) rather than refused.
   */
  applyNewDecisionToken(
    kind: 'snapshot' | 'delta',
    token: string,
    source: Exclude<DecisionSource, 'stored'>,
  ): Promise<number | null> {
    return this.queueApply(kind, token, source, true);
  }

  private queueApply(
    kind: 'snapshot' | 'delta',
    token: string,
    source: Exclude<DecisionSource, 'stored'>,
    skipApplied: boolean,
  ): Promise<number | null> {
    const run = async (): Promise<number | null> => {
      if (skipApplied && kind === 'delta' && this.alreadyApplied(token)) return null;
      const r =
        kind === 'snapshot' ? await this.store.applySnapshot(token) : await this.store.applyDelta(token);
      // Enforce first (this is the decision-to-kill path), then wait for the disk before acknowledging.
      if (r.changed) this.enforce(r.set, kind);
      this.decisionsState = { state: 'verified', source, error: null };
      try {
        await r.persisted;
      } catch (err) {
        this.log.error({ err }, 'decisions enforced but not persisted; they will be lost on restart');
      }
      return r.set.revision;
    };
    const p = this.applyChain.then(run, run);
    this.applyChain = p.catch(() => undefined);
    return p;
  }

  private enforce(set: DecisionSet, source: string): void {
    const killed = this.enforcer.applyDecisions(set);
    this.metrics.decisionRevision(set.revision);
    this.ctx.events.emit(
      baseEvent(this.ctx, 'decision.applied', {
        'event.outcome': 'success',
        'decision.revision': set.revision,
        'event.reason': `${set.decisions.length} decisions from ${source}; ${killed.length} connections cut`,
        'source.identity': this.config.identity.id,
      }),
    );
  }

  private onSwap(m: IdentityMaterial, why: string): void {
    for (const l of this.inbound.values()) l.setIdentity(m);
    this.metrics.rotations({ outcome: why });
    this.ctx.events.emit(
      baseEvent(this.ctx, 'rotation', {
        'event.outcome': 'success',
        'event.reason': why,
        'source.identity': m.id,
        'tls.client.x509.serial_number': m.serial,
        'tls.client.x509.not_after': m.notAfter,
      }),
    );
  }

  /** Applies a validated new configuration. Anything that cannot be applied leaves the old one in place. */
  async reload(next: AgentConfig): Promise<void> {
    const cur = this.config;
    if (!sameJson(next.identity, cur.identity) || !sameJson(next.state, cur.state)) {
      throw new EdgewardError(
        'ERR_AGENT_CONFIG_INVALID',
        'identity and state changes need a restart; keeping the running configuration',
      );
    }
    // Bind new listeners first: if one fails, nothing has changed yet.
    const started: (InboundListener | OutboundListener)[] = [];
    const newIn = new Map<string, InboundListener>();
    const newOut = new Map<string, OutboundListener>();
    try {
      for (const ic of next.inbound) {
        const old = this.inbound.get(ic.name);
        if (old && old.config.listen.text === ic.listen.text) continue;
        const l = new InboundListener(ic, this.ctx);
        if (old) await old.close(); // same name, new address: free the old one
        await l.start();
        started.push(l);
        newIn.set(ic.name, l);
      }
      for (const oc of next.outbound) {
        const old = this.outbound.get(oc.name);
        if (old && old.config.listen.text === oc.listen.text) continue;
        const l = new OutboundListener(oc, this.ctx);
        if (old) await old.close();
        await l.start();
        started.push(l);
        newOut.set(oc.name, l);
      }
    } catch (err) {
      for (const l of started) await l.close();
      throw new EdgewardError(
        'ERR_AGENT_CONFIG_INVALID',
        `cannot bind a new listener: ${(err as Error).message}`,
        { cause: err },
      );
    }
    this.config = next;
    this.ctx.limits = next.limits;
    this.ctx.limiter.setRate(next.limits.handshakeRate, next.limits.handshakeBurst);
    for (const [name, l] of this.inbound) {
      const nc = next.inbound.find((i) => i.name === name);
      if (!nc) {
        await l.close();
        this.inbound.delete(name);
      } else if (!newIn.has(name)) l.update(nc);
    }
    for (const [name, l] of newIn) this.inbound.set(name, l);
    for (const [name, l] of this.outbound) {
      const nc = next.outbound.find((o) => o.name === name);
      if (!nc) {
        await l.close();
        this.outbound.delete(name);
      } else if (!newOut.has(name)) l.update(nc);
    }
    for (const [name, l] of newOut) this.outbound.set(name, l);
    if (!sameJson(next.admin, cur.admin)) {
      await this.admin?.close();
      this.admin = null;
      await this.startAdmin(next);
    }
    if (!sameJson(next.ca, cur.ca)) this.crl?.reconfigure(this.crlFetcher(next), next.ca.crlInterval);
    if (!sameJson(next.siem, cur.siem) || !sameJson(next.decisions, cur.decisions)) {
      this.stream?.stop();
      this.stream = null;
      await this.bus?.stop();
      this.bus = null;
      if (!this.deps.sink) {
        await this.reporter?.stop();
        this.reporter = null;
        this.startSink(next);
      }
      this.startStream(next);
      this.startBus(next);
    }
    await this.loadDecisionsFile(next);
    try {
      await this.rotation.reload();
    } catch (err) {
      this.log.warn({ err }, 'identity folder reload failed; keeping the current identity');
    }
  }

  async stop(): Promise<void> {
    this.started = false;
    this.rotation.stop();
    this.crl?.stop();
    this.stream?.stop();
    await this.bus?.stop();
    for (const l of this.inbound.values()) await l.close();
    for (const l of this.outbound.values()) await l.close();
    await this.admin?.close();
    await this.reporter?.stop();
    this.spool?.close();
    this.metrics.registry.close();
    this.log.info({ identity: this.config.identity.id }, 'agent stopped');
  }
}
