// The CA's security events (CaService's onEvent) as events of the shared schema, so the CA can
// report to the SIEM through the agent's Reporter (spool + httpsBatchSender) like any agent.
import type { CaEvent } from '../../ca/service.js';
import { validateEvent, type EdgeEvent } from '../../common/events.js';

function actionOf(e: CaEvent): string {
  const kind = e.action.toLowerCase();
  const ok = e.outcome === 'success';
  if (kind.startsWith('enroll')) {
    // An attestation verdict the CA refused is what the attestation rules count.
    if (!ok && e.code?.startsWith('ERR_ATT_') === true) return 'attestation.failure';
    return ok ? 'enroll.success' : 'enroll.failure';
  }
  if (kind.startsWith('renew')) {
    if (!ok && e.code?.startsWith('ERR_ATT_') === true) return 'attestation.failure';
    return ok ? 'renewal.success' : 'renewal.failure';
  }
  if (kind === 'revocation' || kind === 'revoke') return ok ? 'revocation' : 'ca.revoke.failure';
  const safe = kind.replace(/[^a-z0-9_.-]/g, '-').slice(0, 60);
  return `ca.${safe === '' ? 'event' : safe}`;
}

/** Maps one CA event; optional fields that do not fit the schema are left out, never the event. */
export function caEventToEdgeEvent(e: CaEvent, now: number): EdgeEvent {
  const core: Record<string, unknown> = {
    '@timestamp': now,
    'event.kind': 'event',
    'event.category': 'iam',
    'event.action': actionOf(e),
    'event.outcome': e.outcome,
    'observer.type': 'ca',
  };
  const optional: Record<string, unknown> = {
    'source.identity': e.identity,
    'source.ip': e.ip,
    'attestation.method': e.method,
    'error.code': e.code,
    'tls.client.x509.serial_number': e.serial
      ?.toLowerCase()
      .replace(/:/g, '')
      .replace(/^0+(?=.)/, ''),
    'tls.client.x509.spki_sha256': e.spkiSha256?.toLowerCase(),
  };
  const out: Record<string, unknown> = { ...core };
  for (const [k, v] of Object.entries(optional)) {
    if (v === undefined) continue;
    try {
      validateEvent({ ...core, [k]: v });
      out[k] = v;
    } catch {
      // dropped: a malformed optional value must not lose the event
    }
  }
  return validateEvent(out);
}
