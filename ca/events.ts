// The CA's security events in the shared event schema (common/events.ts), for the SIEM:
// enrollments and renewals with their method, refusals with their code, revocations.
import type { AttestationEvidence } from '../attestation/index.js';
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

/** Digests as the schema takes them: lower-case hex of at most 128 characters. */
const digest = (v: string | undefined): string | undefined =>
  v !== undefined && /^[0-9a-f]{1,128}$/.test(v) ? v : undefined;
/** PCR indices 0..23 as a comma-separated list. */
const pcrList = (v: readonly number[] | undefined): string | undefined =>
  v === undefined
    ? undefined
    : v
        .filter((i) => Number.isInteger(i) && i >= 0 && i <= 23)
        .slice(0, 24)
        .join(',');
const count = (v: number | undefined): number | undefined =>
  v !== undefined && Number.isInteger(v) && v >= 0 && v <= 65_535 ? v : undefined;

/** A method's evidence as event fields (attestation.tpm.*, attestation.puf.*), each bounded. */
export function evidenceFields(ev: AttestationEvidence): Record<string, string | number> {
  const fields: Record<string, string | number | undefined> = {
    'attestation.tpm.ek_chain': ev.ekChain,
    'attestation.tpm.ek_issuer': ev.ekIssuer?.slice(0, 256),
    'attestation.tpm.activation': ev.activation,
    'attestation.tpm.quote_signature': ev.quoteSignature,
    'attestation.tpm.pcr_bank':
      ev.pcrBank !== undefined && /^sha(256|384|512)$/.test(ev.pcrBank) ? ev.pcrBank : undefined,
    'attestation.tpm.pcr_selection': pcrList(ev.pcrSelection),
    'attestation.tpm.pcr_expected_digest': digest(ev.pcrExpectedDigest),
    'attestation.tpm.pcr_quoted_digest': digest(ev.pcrQuotedDigest),
    'attestation.tpm.pcr_mismatch': pcrList(ev.pcrMismatch),
    'attestation.tpm.pcrs': ev.pcrs,
    'attestation.puf.mode': ev.pufMode,
    'attestation.puf.distance': count(ev.pufDistance),
    'attestation.puf.threshold': count(ev.pufThreshold),
    'attestation.puf.response': ev.pufResponse,
    'attestation.puf.signature': ev.pufSignature,
  };
  const out: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(fields)) if (v !== undefined && v !== '') out[k] = v;
  return out;
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
  if (e.evidence) Object.assign(out, evidenceFields(e.evidence));
  return out as EdgeEvent;
}
