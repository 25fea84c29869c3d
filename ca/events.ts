// The CA's security events in the shared event schema (common/events.ts), for the SIEM:
// enrollments and renewals with their method, refusals with their code, revocations.
import type { EdgeEvent } from '../common/events.js';
import { parseIdentity } from '../common/identity.js';
import type { CaEvent } from './service.js';

const ACTIONS: Record<string, { success: string; failure: string }> = {
  enroll: { success: 'enroll.success', failure: 'enroll.failure' },
  'enroll.begin': { success: 'enroll.success', failure: 'enroll.failure' },
  renew: { success: 'renewal.success', failure: 'renewal.failure' },
  'renew.begin': { success: 'renewal.success', failure: 'renewal.failure' },
  revoke: { success: 'revocation', failure: 'revocation.failure' },
  revocation: { success: 'revocation', failure: 'revocation.failure' },
};

/** Attestation refusals (a method's coded verdict) are reported as attestation failures. */
function isAttestationCode(code: string | undefined): boolean {
  return (
    code !== undefined &&
    (code.startsWith('ERR_ATT_') || code.startsWith('ERR_CA_TOKEN_') || code === 'ERR_CA_IDENTITY_BOUND')
  );
}

function isIdentity(uri: string): boolean {
  try {
    parseIdentity(uri);
    return true;
  } catch {
    return false;
  }
}

export function caEventToEdgeEvent(e: CaEvent, now: number): EdgeEvent {
  const names = ACTIONS[e.action] ?? { success: `${e.action}.success`, failure: `${e.action}.failure` };
  const attestation = e.outcome === 'failure' && isAttestationCode(e.code);
  const out: Record<string, string | number> = {
    '@timestamp': now,
    'event.kind': 'event',
    'event.category': 'iam',
    'event.action': attestation ? 'attestation.failure' : names[e.outcome],
    'event.outcome': e.outcome,
  };
  // Only a proven identity is the subject rules key on; a claim is evidence about the source address.
  if (e.identity) out['source.identity'] = e.identity;
  // A malformed claim is left out (it stays in the audit log), so the event still reaches the SIEM.
  if (e.claimedIdentity && isIdentity(e.claimedIdentity))
    out['attestation.claimed_identity'] = e.claimedIdentity;
  if (e.ip) out['source.ip'] = e.ip.replace(/^::ffff:/, '');
  if (e.method) out['attestation.method'] = e.method;
  if (e.code) {
    out['error.code'] = e.code;
    out['event.reason'] = e.code;
    if (attestation)
      out['attestation.reason'] = e.code.replace(/^ERR_(ATT_(TPM|PUF)_|CA_)/, '').toLowerCase();
  }
  if (e.serial) out['tls.client.x509.serial_number'] = e.serial;
  if (e.spkiSha256) out['tls.client.x509.spki_sha256'] = e.spkiSha256;
  if (e.notAfter) out['tls.client.x509.not_after'] = e.notAfter;
  return out as EdgeEvent;
}
