// Analyst actions as events in the SIEM's own store (observer = the SIEM), so they sit in the same
// timelines as what they acted on and are kept by the same retention.
import type { EdgeEvent } from '../../common/events.js';
import { stampEvent, validateEvent } from '../../common/events.js';
import { isTrustDomain, parseIdentity } from '../../common/identity.js';
import type { Principal } from './peer.js';

export interface AuditEntry {
  readonly action: string;
  readonly principal: Principal | undefined;
  readonly ip: string;
  readonly ok: boolean;
  readonly code?: string | undefined;
  readonly decisionId?: string | undefined;
  readonly revision?: number | undefined;
  readonly message: string;
}

function isSpiffe(id: string): boolean {
  try {
    return isTrustDomain(parseIdentity(id).trustDomain);
  } catch {
    return false;
  }
}

/** Builds the stored audit event (validated like any reporter's, then stamped). */
export function auditEvent(
  a: AuditEntry,
  ctx: { readonly siem: string; readonly now: number; readonly id: string },
): EdgeEvent {
  const who = a.principal === undefined ? 'unauthenticated' : `${a.principal.id} (${a.principal.via})`;
  const raw: Record<string, unknown> = {
    '@timestamp': ctx.now,
    'event.kind': 'event',
    'event.category': 'configuration',
    'event.type': a.action.startsWith('siem.read') ? 'info' : 'change',
    'event.action': a.action,
    'event.outcome': a.ok ? 'success' : 'failure',
    message: `${a.message} by ${who}`.slice(0, 1024),
    'source.ip': a.ip,
  };
  if (a.principal !== undefined && isSpiffe(a.principal.id)) raw['source.identity'] = a.principal.id;
  if (a.code !== undefined) raw['error.code'] = a.code;
  if (a.decisionId !== undefined && /^[A-Za-z0-9._:-]{1,64}$/.test(a.decisionId))
    raw['decision.id'] = a.decisionId;
  if (a.revision !== undefined) raw['decision.revision'] = a.revision;
  let v: EdgeEvent;
  try {
    v = validateEvent(raw);
  } catch {
    // A hostile value (odd IP string, oversized id) must not lose the audit record: keep the core.
    delete raw['source.ip'];
    delete raw['decision.id'];
    v = validateEvent(raw);
  }
  return stampEvent(v, { id: ctx.id, observer: ctx.siem, ingested: ctx.now });
}
