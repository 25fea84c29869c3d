// What the listeners share: the enforcement index, limits, the current identity, the event sink
// and the metrics. Built once by agent.ts; listeners only read it (limits change on reload).
import type { Socket } from 'node:net';
import type { Clock } from '../common/clock.js';
import type { EdgeEvent } from '../common/events.js';
import { socketIp } from '../common/ip.js';
import type { Logger } from '../common/log.js';
import type { Enforcer } from './enforcement.js';
import type { HandshakeRateLimiter, LimitsConfig } from './limits.js';
import { Metrics } from './metrics.js';
import type { EventSink } from '../client/index.js';
import type { IdentityMaterial } from './rotation.js';

export interface AgentMetrics {
  readonly registry: Metrics;
  readonly handshakeFailures: (labels: { reason: string; listener: string }) => void;
  readonly denials: (labels: { reason: string; listener: string }) => void;
  readonly accepted: (labels: { listener: string; direction: string }) => void;
  readonly kills: (labels: { reason: string }) => void;
  readonly bytes: (labels: { listener: string; direction: string; flow: string }, by: number) => void;
  readonly decisionRevision: (v: number) => void;
  readonly rotations: (labels: { outcome: string }) => void;
}

export function createAgentMetrics(): AgentMetrics {
  const r = new Metrics();
  const bytes = r.counter(
    'edgeward_agent_bytes_total',
    'Bytes relayed, by listener, direction and flow (rx from peer, tx to peer)',
  );
  return {
    registry: r,
    handshakeFailures: r.counter(
      'edgeward_agent_handshake_failures_total',
      'TLS handshakes refused, by reason (error code)',
    ),
    denials: r.counter(
      'edgeward_agent_denials_total',
      'Connections refused after the handshake (policy, revocation, quarantine), by reason',
    ),
    accepted: r.counter('edgeward_agent_connections_accepted_total', 'Connections accepted, by listener'),
    kills: r.counter(
      'edgeward_agent_kills_total',
      'Live connections cut by enforcement (decision, CRL, expiry, policy reload)',
    ),
    bytes: (labels, by) => bytes(labels, by),
    decisionRevision: r.gauge('edgeward_agent_decision_revision', 'Decision revision applied'),
    rotations: r.counter('edgeward_agent_rotations_total', 'Certificate rotations, by outcome'),
  };
}

export interface AgentContext {
  readonly clock: Clock;
  readonly log: Logger;
  readonly enforcer: Enforcer;
  readonly limiter: HandshakeRateLimiter;
  readonly trustDomain: string;
  /** The agent's own identity (for observer fields). */
  readonly selfId: string;
  readonly events: EventSink;
  readonly metrics: AgentMetrics;
  limits: LimitsConfig;
  identity(): IdentityMaterial;
  /** Open sockets (handshaking and live) across all listeners, for maxConnections. */
  open: number;
}

export function baseEvent(
  ctx: AgentContext,
  action: string,
  extra: Partial<Record<string, string | number>>,
): EdgeEvent {
  const e: Record<string, string | number> = {
    '@timestamp': ctx.clock.now(),
    'event.action': action,
  };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== '') e[k] = v;
  return e as EdgeEvent;
}

/** Address fields of a socket in the event schema's forms. */
export function addressFields(
  s: Socket,
  side: 'source' | 'destination' = 'source',
): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  // Canonical (::ffff:a.b.c.d is a.b.c.d; a link-local zone dropped), as the SIEM stores it.
  const ip = socketIp(s.remoteAddress);
  if (ip) out[`${side}.ip`] = ip.text;
  if (s.remotePort !== undefined) out[`${side}.port`] = s.remotePort;
  return out;
}
