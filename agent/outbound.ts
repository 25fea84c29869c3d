// An outbound listener: plaintext from loopback (or a unix socket), mutual TLS 1.3 to the remote
// peer, whose one URI SAN must equal `expect`. With TLS 1.3 the client's secureConnect comes
// before the server has judged our certificate, so "accepted" is reported at the first byte back.
import * as net from 'node:net';
import type { Socket } from 'node:net';
import * as tls from 'node:tls';
import { socketIp, tryParseIp } from '../common/ip.js';
import type { OutboundConfig } from './config.js';
import { baseEvent } from './context.js';
import type { LiveConn, Refusal } from './enforcement.js';
import { Listener } from './listener.js';
import { relay } from './relay.js';
import { certFacts, verifyPeerIdentity, type CertFacts } from './tls-identity.js';

export class OutboundListener extends Listener<OutboundConfig, net.Server> {
  async start(): Promise<void> {
    // Half-open on both legs: the relay passes a FIN on as a FIN (see relay.ts).
    const server = net.createServer({ allowHalfOpen: true }, (s) => this.onLocal(s));
    server.on('error', (err) =>
      this.ctx.log.error({ err, listener: this.cfg.name }, 'outbound listener error'),
    );
    await this.serve(server);
  }

  /** A new expected identity: live connections to another peer are cut (see Listener.update). */
  protected refusalUnder(c: LiveConn): Refusal | null {
    return c.identity === this.cfg.expect
      ? null
      : { code: 'ERR_AGENT_PEER_MISMATCH', reason: 'configuration reload: peer no longer expected' };
  }

  private emit(
    action: string,
    local: Socket,
    r: Refusal | null,
    facts: Partial<CertFacts>,
    extra: Record<string, string | number> = {},
  ): void {
    this.ctx.events.emit(
      baseEvent(this.ctx, action, {
        'source.ip': socketIp(local.remoteAddress)?.text,
        'source.identity': this.ctx.selfId,
        // The configured host may be a name: only an address goes into the address field.
        'destination.ip': tryParseIp(this.cfg.connect.host)?.text,
        'destination.port': this.cfg.connect.port,
        'destination.identity': facts.identity,
        'event.outcome': r ? 'failure' : 'success',
        'error.code': r?.code,
        'event.reason': r?.reason.slice(0, 256),
        'decision.id': r?.decisionId,
        'decision.revision': r?.revision,
        'network.direction': 'outbound',
        'network.transport': 'tcp',
        ...extra,
      }),
    );
  }

  private onLocal(local: Socket): void {
    const ctx = this.ctx;
    const cfg = this.cfg;
    if (ctx.open >= ctx.limits.maxConnections) {
      ctx.metrics.handshakeFailures({ reason: 'ERR_AGENT_MAX_CONNECTIONS', listener: cfg.name });
      this.emit(
        'handshake.failure',
        local,
        { code: 'ERR_AGENT_MAX_CONNECTIONS', reason: 'connection limit reached' },
        {},
      );
      local.destroy();
      return;
    }
    ctx.open += 1;
    local.once('close', () => {
      ctx.open -= 1;
    });
    local.on('error', () => undefined);
    const m = ctx.identity();
    // Node's tls.connect takes allowHalfOpen (passed to its TLSSocket); @types/node omits it.
    const options: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
      host: cfg.connect.host,
      port: cfg.connect.port,
      allowHalfOpen: true,
      secureContext: m.context,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      rejectUnauthorized: true,
      checkServerIdentity: (_h, cert) => verifyPeerIdentity(cert, cfg.expect),
    };
    const remote = tls.connect(options);
    let handshook = false;
    const hsTimer = setTimeout(() => {
      if (!handshook)
        remote.destroy(Object.assign(new Error('handshake timeout'), { code: 'ERR_TLS_HANDSHAKE_TIMEOUT' }));
    }, ctx.limits.handshakeTimeout);
    hsTimer.unref();
    remote.once('error', (err: NodeJS.ErrnoException) => {
      if (handshook) return;
      clearTimeout(hsTimer);
      const code =
        err instanceof Error && 'code' in err && err.code === 'ERR_AGENT_PEER_MISMATCH'
          ? 'ERR_AGENT_PEER_MISMATCH'
          : err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT'
            ? 'ERR_AGENT_HANDSHAKE_TIMEOUT'
            : 'ERR_AGENT_HANDSHAKE';
      ctx.metrics.handshakeFailures({ reason: code, listener: cfg.name });
      this.emit('handshake.failure', local, { code, reason: (err.code ?? err.message).slice(0, 200) }, {});
      local.destroy();
    });
    remote.once('secureConnect', () => {
      handshook = true;
      clearTimeout(hsTimer);
      let facts: CertFacts;
      try {
        facts = certFacts(remote.getPeerCertificate(), ctx.trustDomain);
      } catch {
        this.deny(
          local,
          remote,
          { code: 'ERR_AGENT_CERT_IDENTITY', reason: 'peer certificate identity unusable' },
          {},
        );
        return;
      }
      const peer = { ...facts, ip: remote.remoteAddress ?? cfg.connect.host };
      const refusal = ctx.enforcer.check(peer, 'outbound');
      if (refusal) {
        this.deny(local, remote, refusal, facts);
        return;
      }
      this.relay(local, remote, peer);
    });
  }

  private deny(local: Socket, remote: tls.TLSSocket, r: Refusal, facts: Partial<CertFacts>): void {
    this.ctx.metrics.denials({ reason: r.code, listener: this.cfg.name });
    this.emit('connection.denied', local, r, facts);
    remote.destroy();
    local.destroy();
  }

  private relay(local: Socket, remote: tls.TLSSocket, peer: CertFacts & { ip: string }): void {
    const ctx = this.ctx;
    const cfg = this.cfg;
    let killReason: Refusal | null = null;
    let confirmed = false;
    let lastError: string | undefined;
    remote.on('error', (err: NodeJS.ErrnoException) => {
      lastError = err.code ?? err.message;
    });
    // The server may still refuse our certificate after our secureConnect: only its first byte
    // proves it accepted us.
    remote.once('data', () => {
      confirmed = true;
      ctx.metrics.accepted({ listener: cfg.name, direction: 'outbound' });
      this.emit('connection.accepted', local, null, peer, {
        'tls.client.x509.serial_number': peer.serial,
        'tls.version': '1.3',
      });
    });
    const deadlineByCert = peer.notAfter - ctx.clock.now();
    const conn: LiveConn = {
      ...peer,
      direction: 'outbound',
      listener: cfg.name,
      kill: (r) => {
        killReason = r;
        ctx.metrics.kills({ reason: r.code });
        destroy();
      },
    };
    const destroy = relay(remote, local, {
      idleTimeout: ctx.limits.idleTimeout,
      deadline: Math.min(ctx.limits.maxLifetime, deadlineByCert),
      onIdle: () => {
        killReason = { code: 'ERR_AGENT_UPSTREAM', reason: 'idle timeout' };
      },
      onDeadline: () => {
        killReason =
          deadlineByCert <= ctx.limits.maxLifetime
            ? { code: 'ERR_AGENT_CERT_EXPIRED', reason: 'peer certificate expired' }
            : { code: 'ERR_AGENT_UPSTREAM', reason: 'maximum connection lifetime' };
      },
      onClose: (rx, tx) => {
        this.live.delete(conn);
        ctx.enforcer.remove(conn);
        ctx.metrics.bytes({ listener: cfg.name, direction: 'outbound', flow: 'rx' }, rx);
        ctx.metrics.bytes({ listener: cfg.name, direction: 'outbound', flow: 'tx' }, tx);
        if (!confirmed && killReason === null && lastError?.startsWith('ERR_SSL')) {
          // A TLS alert before any byte back: the server refused our certificate after all.
          ctx.metrics.handshakeFailures({ reason: 'ERR_AGENT_HANDSHAKE', listener: cfg.name });
          this.emit(
            'handshake.failure',
            local,
            { code: 'ERR_AGENT_HANDSHAKE', reason: `peer refused us: ${lastError}` },
            peer,
          );
          return;
        }
        if (!confirmed && killReason === null) {
          this.emit('connection.closed', local, null, peer, {
            'event.outcome': 'unknown',
            'event.reason': 'closed before the peer sent anything',
          });
          return;
        }
        this.emit(
          'connection.closed',
          local,
          killReason && killReason.code !== 'ERR_AGENT_UPSTREAM' ? killReason : null,
          peer,
          {
            ...(killReason ? { 'event.reason': killReason.reason.slice(0, 256) } : {}),
          },
        );
      },
    });
    this.live.add(conn);
    ctx.enforcer.add(conn);
  }
}
