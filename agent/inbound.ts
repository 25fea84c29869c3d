// An inbound mTLS listener: TLS 1.3 only, a client certificate chained to the bundle required,
// the peer's one URI SAN checked by the pure authorization function and the enforcement index,
// then relayed to the local target, optionally behind a PROXY v2 header naming the peer.
import { constants as cryptoConstants } from 'node:crypto';
import * as net from 'node:net';
import type { Socket } from 'node:net';
import * as tls from 'node:tls';
import type { TLSSocket } from 'node:tls';
import type { ErrorCode } from '../common/errors.js';
import { EdgewardError } from '../common/errors.js';
import { normalizeSerial } from '../common/x509.js';
import { authorize } from '../policies/index.js';
import type { InboundConfig, ListenAddress } from './config.js';
import { addressFields, baseEvent, type AgentContext } from './context.js';
import type { LiveConn, Refusal } from './enforcement.js';
import { buildProxyV2 } from './proxy-protocol.js';
import { Listener } from './listener.js';
import { Relay, relayOf, type RelayOptions } from './relay.js';
import type { IdentityMaterial } from './rotation.js';
import { PeerFactsCache, type CertFacts } from './tls-identity.js';

const RATE_EVENT_EVERY = 10_000;

/** An unverified certificate's serial for the event, canonical, or nothing if it is not one. */
function reportedSerial(hex: string): string | undefined {
  try {
    return normalizeSerial(hex);
  } catch {
    return undefined;
  }
}

/** Maps Node's chain verification result onto our reasons. */
export function chainRefusal(authorizationError: unknown): { code: ErrorCode; reason: string } {
  const e =
    typeof authorizationError === 'string'
      ? authorizationError
      : authorizationError instanceof Error
        ? authorizationError.message
        : '';
  if (e === 'CERT_HAS_EXPIRED' || e === 'CERT_NOT_YET_VALID')
    return { code: 'ERR_AGENT_CERT_EXPIRED', reason: e };
  return { code: 'ERR_AGENT_UNTRUSTED_CHAIN', reason: e || 'unverified' };
}

export function connectOptions(a: ListenAddress): net.NetConnectOpts {
  return a.kind === 'unix' ? { path: a.path } : { host: a.host, port: a.port };
}

/**
 * The inbound server's TLS options: the identity's, plus no session tickets. Every inbound
 * connection then does a full mutual handshake with its chain verified against the current
 * bundle (no resumption of a session made before a rotation), and the server neither spends CPU
 * on sealing two tickets per handshake nor keeps the memory that costs per connection.
 */
export function serverContextOptions(m: IdentityMaterial): tls.SecureContextOptions {
  return {
    ...m.contextOptions,
    secureOptions: (m.contextOptions.secureOptions ?? 0) | cryptoConstants.SSL_OP_NO_TICKET,
  };
}

export class InboundListener extends Listener<InboundConfig, tls.Server> {
  private readonly rateEvents = new Map<string, number>();
  /** Parsed peer certificates by their SHA-256; every check except the parse still runs per connection. */
  readonly peerFacts: PeerFactsCache;
  /** One shared listener for every accepted socket's close (no closure per connection). */
  private readonly onTcpClose = (): void => {
    this.ctx.open -= 1;
  };

  constructor(cfg: InboundConfig, ctx: AgentContext) {
    super(cfg, ctx);
    this.peerFacts = new PeerFactsCache(ctx.trustDomain);
  }

  async start(): Promise<void> {
    const m = this.ctx.identity();
    const server = tls.createServer({
      ...serverContextOptions(m),
      requestCert: true,
      // Half-open on both legs: the relay passes a FIN on as a FIN (see relay.ts).
      allowHalfOpen: true,
      // Verification happens in onSecure so each refusal gets its precise reason in the events.
      rejectUnauthorized: false,
      handshakeTimeout: this.ctx.limits.handshakeTimeout,
    });
    server.on('connection', (s: Socket) => this.onTcp(s));
    server.on('secureConnection', (s: TLSSocket) => this.onSecure(s));
    server.on('tlsClientError', (err: NodeJS.ErrnoException, s: TLSSocket) => this.onHandshakeError(err, s));
    server.on('error', (err) =>
      this.ctx.log.error({ err, listener: this.cfg.name }, 'inbound listener error'),
    );
    await this.serve(server);
  }

  /** A new policy refuses the peer: its live connections are cut (see Listener.update). */
  protected refusalUnder(c: LiveConn, cfg: InboundConfig): Refusal | null {
    const v = authorize(cfg.policy, c.identity);
    return v.allowed ? null : { code: 'ERR_POLICY_AUTHZ_DENIED', reason: `policy reload: ${v.reason}` };
  }

  setIdentity(m: IdentityMaterial): void {
    // Atomic for new handshakes; established connections keep the context they were made with.
    this.server?.setSecureContext(serverContextOptions(m));
  }

  private onTcp(s: Socket): void {
    const ip = s.remoteAddress ?? '';
    if (this.ctx.open >= this.ctx.limits.maxConnections) {
      this.refuseEarly(s, 'ERR_AGENT_MAX_CONNECTIONS', 'connection limit reached');
      return;
    }
    if (!this.ctx.limiter.take(ip)) {
      const last = this.rateEvents.get(ip) ?? 0;
      const now = this.ctx.clock.now();
      // One event per source per window: a handshake flood must not flood the SIEM as well.
      if (now - last >= RATE_EVENT_EVERY) {
        if (this.rateEvents.size > 10_000) this.rateEvents.clear();
        this.rateEvents.set(ip, now);
        this.refuseEarly(s, 'ERR_AGENT_HANDSHAKE_RATE', 'handshake rate per source exceeded');
      } else {
        this.ctx.metrics.handshakeFailures({ reason: 'ERR_AGENT_HANDSHAKE_RATE', listener: this.cfg.name });
        s.destroy();
      }
      return;
    }
    this.ctx.open += 1;
    s.on('close', this.onTcpClose);
  }

  private refuseEarly(s: Socket, code: ErrorCode, reason: string): void {
    this.ctx.metrics.handshakeFailures({ reason: code, listener: this.cfg.name });
    this.ctx.events.emit(
      baseEvent(this.ctx, 'handshake.failure', {
        ...addressFields(s),
        'event.outcome': 'failure',
        'error.code': code,
        'event.reason': reason,
        'network.direction': 'inbound',
        'network.transport': 'tcp',
      }),
    );
    s.destroy();
  }

  private onHandshakeError(err: NodeJS.ErrnoException, s: TLSSocket): void {
    const code: ErrorCode =
      err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'ERR_AGENT_HANDSHAKE_TIMEOUT' : 'ERR_AGENT_HANDSHAKE';
    this.ctx.metrics.handshakeFailures({ reason: code, listener: this.cfg.name });
    this.ctx.events.emit(
      baseEvent(this.ctx, 'handshake.failure', {
        ...addressFields(s),
        'event.outcome': 'failure',
        'error.code': code,
        'event.reason': (err.code ?? err.message).slice(0, 200),
        'network.direction': 'inbound',
        'network.transport': 'tcp',
      }),
    );
    s.destroy();
  }

  private refuse(
    s: TLSSocket,
    action: 'handshake.failure' | 'connection.denied',
    r: Refusal,
    facts?: Partial<CertFacts>,
  ): void {
    if (action === 'handshake.failure')
      this.ctx.metrics.handshakeFailures({ reason: r.code, listener: this.cfg.name });
    else this.ctx.metrics.denials({ reason: r.code, listener: this.cfg.name });
    this.ctx.events.emit(
      baseEvent(this.ctx, action, {
        ...addressFields(s),
        'event.outcome': 'failure',
        'error.code': r.code,
        'event.reason': r.reason.slice(0, 256),
        'source.identity': facts?.identity,
        'destination.identity': this.ctx.selfId,
        'tls.client.x509.serial_number': facts?.serial,
        'tls.client.x509.spki_sha256': facts?.spki,
        'decision.id': r.decisionId,
        'decision.revision': r.revision,
        'network.direction': 'inbound',
        'network.transport': 'tcp',
      }),
    );
    s.destroy();
  }

  private onSecure(s: TLSSocket): void {
    const cert = s.getPeerCertificate();
    if (!cert || Object.keys(cert).length === 0) {
      this.refuse(s, 'handshake.failure', {
        code: 'ERR_AGENT_NO_CLIENT_CERT',
        reason: 'no client certificate',
      });
      return;
    }
    if (!s.authorized) {
      const serial = reportedSerial(cert.serialNumber);
      this.refuse(s, 'handshake.failure', chainRefusal(s.authorizationError), serial ? { serial } : {});
      return;
    }
    let facts: CertFacts;
    try {
      // Only chain-verified certificates reach the cache.
      facts = this.peerFacts.get(cert);
    } catch (err) {
      const r =
        err instanceof EdgewardError
          ? { code: err.code, reason: err.message }
          : { code: 'ERR_AGENT_CERT_IDENTITY' as const, reason: 'bad identity' };
      this.refuse(s, 'handshake.failure', r);
      return;
    }
    const peer = { ...facts, ip: s.remoteAddress ?? '' };
    const refusal = this.ctx.enforcer.check(peer, 'inbound');
    if (refusal) {
      this.refuse(
        s,
        refusal.code === 'ERR_AGENT_CERT_EXPIRED' ? 'handshake.failure' : 'connection.denied',
        refusal,
        facts,
      );
      return;
    }
    const verdict = authorize(this.cfg.policy, facts.identity);
    if (!verdict.allowed) {
      this.refuse(
        s,
        'connection.denied',
        {
          code: 'ERR_POLICY_AUTHZ_DENIED',
          reason: `authorization: ${verdict.reason}${verdict.rule ? ` (${verdict.rule})` : ''}`,
        },
        facts,
      );
      return;
    }
    this.forward(s, peer, verdict.rule);
  }

  private forward(s: TLSSocket, peer: CertFacts & { ip: string }, rule: string): void {
    const cfg = this.cfg;
    const up = net.connect({ ...connectOptions(cfg.forward), allowHalfOpen: true });
    if (cfg.proxyProtocol) {
      try {
        up.write(
          buildProxyV2(
            {
              srcIp: s.remoteAddress ?? '',
              srcPort: s.remotePort ?? 0,
              dstIp: s.localAddress ?? '',
              dstPort: s.localPort ?? 0,
            },
            peer.identity,
          ),
        );
      } catch (err) {
        this.ctx.log.error({ err }, 'cannot build PROXY v2 header');
        up.destroy();
        s.destroy();
        return;
      }
    }
    const conn = new InboundConn(this, s, up, peer);
    this.live.add(conn);
    this.ctx.enforcer.add(conn);
    this.ctx.metrics.accepted({ listener: cfg.name, direction: 'inbound' });
    this.ctx.events.emit(
      baseEvent(this.ctx, 'connection.accepted', {
        ...addressFields(s),
        'event.outcome': 'success',
        'source.identity': peer.identity,
        'destination.identity': this.ctx.selfId,
        'tls.client.x509.serial_number': peer.serial,
        'tls.client.x509.spki_sha256': peer.spki,
        'tls.version': '1.3',
        'rule.id': rule.slice(0, 128),
        'network.direction': 'inbound',
        'network.transport': 'tcp',
      }),
    );
  }

  /** @internal An InboundConn is gone: unindex it and report why. */
  closed(c: InboundConn, rx: number, tx: number): void {
    const ctx = this.ctx;
    this.live.delete(c);
    ctx.enforcer.remove(c);
    ctx.metrics.bytes({ listener: c.listener, direction: 'inbound', flow: 'rx' }, rx);
    ctx.metrics.bytes({ listener: c.listener, direction: 'inbound', flow: 'tx' }, tx);
    const r = c.killReason;
    ctx.events.emit(
      baseEvent(ctx, 'connection.closed', {
        ...addressFields(c.relay.secure),
        'event.outcome': r && r.code !== 'ERR_AGENT_UPSTREAM' ? 'failure' : 'success',
        'error.code': r?.code,
        'event.reason': r?.reason.slice(0, 256),
        'decision.id': r?.decisionId,
        'decision.revision': r?.revision,
        'source.identity': c.identity,
        'destination.identity': ctx.selfId,
        'tls.client.x509.serial_number': c.serial,
        'network.direction': 'inbound',
      }),
    );
  }

  /** @internal The local target could not be reached. */
  upstreamFailed(c: InboundConn, err: NodeJS.ErrnoException): void {
    this.ctx.events.emit(
      baseEvent(this.ctx, 'connection.closed', {
        ...addressFields(c.relay.secure),
        'event.outcome': 'failure',
        'error.code': 'ERR_AGENT_UPSTREAM',
        'event.reason': `local target ${this.cfg.forward.text}: ${err.code ?? 'error'}`,
        'source.identity': c.identity,
        'network.direction': 'inbound',
      }),
    );
  }
}

/**
 * One live inbound connection: what the enforcement index needs (the peer's facts, shared with
 * the identity cache) and the relay. Its methods live on the prototype: an idle connection holds
 * no closures of its own.
 */
class InboundConn implements LiveConn, RelayOptions {
  readonly direction = 'inbound' as const;
  readonly identity: string;
  readonly serial: string;
  readonly spki: string;
  readonly ip: string;
  readonly notAfter: number;
  readonly listener: string;
  readonly idleTimeout: number;
  readonly deadline: number;
  readonly relay: Relay;
  killReason: Refusal | null = null;
  private upOk = false;
  private readonly certEndsFirst: boolean;

  constructor(
    private readonly owner: InboundListener,
    s: TLSSocket,
    up: Socket,
    peer: CertFacts & { ip: string },
  ) {
    const limits = owner.ctx.limits;
    this.identity = peer.identity;
    this.serial = peer.serial;
    this.spki = peer.spki;
    this.ip = peer.ip;
    this.notAfter = peer.notAfter;
    this.listener = owner.name;
    const deadlineByCert = peer.notAfter - owner.ctx.clock.now();
    this.certEndsFirst = deadlineByCert <= limits.maxLifetime;
    this.idleTimeout = limits.idleTimeout;
    this.deadline = Math.min(limits.maxLifetime, deadlineByCert);
    this.relay = new Relay(s, up, this);
    up.on('connect', upConnected);
    up.on('error', upFailed);
  }

  kill(r: Refusal): void {
    this.killReason = r;
    this.owner.ctx.metrics.kills({ reason: r.code });
    this.relay.destroy();
  }

  onIdle(): void {
    this.killReason = { code: 'ERR_AGENT_UPSTREAM', reason: 'idle timeout' };
  }

  onDeadline(): void {
    if (this.certEndsFirst) {
      this.killReason = { code: 'ERR_AGENT_CERT_EXPIRED', reason: 'peer certificate expired' };
      this.owner.ctx.metrics.kills({ reason: 'ERR_AGENT_CERT_EXPIRED' });
    } else this.killReason = { code: 'ERR_AGENT_UPSTREAM', reason: 'maximum connection lifetime' };
  }

  onClose(rx: number, tx: number): void {
    this.owner.closed(this, rx, tx);
  }

  /** @internal */
  upConnected(): void {
    this.upOk = true;
  }

  /** @internal */
  upError(err: NodeJS.ErrnoException): void {
    if (!this.upOk) this.owner.upstreamFailed(this, err);
  }
}

function upConnected(this: Socket): void {
  (relayOf(this)?.options as InboundConn | undefined)?.upConnected();
}

function upFailed(this: Socket, err: NodeJS.ErrnoException): void {
  (relayOf(this)?.options as InboundConn | undefined)?.upError(err);
}
