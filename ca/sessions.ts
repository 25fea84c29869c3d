// Enrollment sessions as sealed tokens. `begin` hands the client its session state encrypted
// and authenticated (AES-256-GCM) under a key derived from the intermediate's private key, so any
// CA process (`ca serve --workers N`) can open it and nothing is written per begin. The client
// cannot read the state (a TPM activation secret) or alter it. Single use is enforced at finish:
// the session's random id is marked used in the issuance transaction, or on its own when the
// finish is refused, so a session serves exactly one finish.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { EdgewardError } from '../common/errors.js';

export interface SessionClaims {
  /** Random, 128 bits: the single-use marker. */
  readonly id: string;
  readonly identity: string;
  readonly method: string;
  /** The method's state, plain JSON. */
  readonly state: unknown;
  readonly expiresAt: number;
  /** Renewal sessions: the serial of the certificate that opened it. */
  readonly renewalOf: string | null;
}

/** Namespace of the single-use markers in the store's used_once table. */
export const SESSION_NAMESPACE = 'session';
/** Longest session the API accepts (a TPM session's state is about 1 KB). */
export const MAX_SESSION_CHARS = 16_384;
const PREFIX = 'ews1.';
const AAD = Buffer.from('edgeward enrollment session v1');
const IV_BYTES = 12;
const TAG_BYTES = 16;

export function sealSession(key: Buffer, claims: Omit<SessionClaims, 'id'>): { token: string; id: string } {
  const id = randomBytes(16).toString('base64url');
  const iv = randomBytes(IV_BYTES);
  const c = createCipheriv('aes-256-gcm', key, iv).setAAD(AAD);
  const body = Buffer.concat([c.update(JSON.stringify({ ...claims, id }), 'utf8'), c.final()]);
  const token = PREFIX + Buffer.concat([iv, body, c.getAuthTag()]).toString('base64url');
  if (token.length > MAX_SESSION_CHARS)
    throw new EdgewardError('ERR_INTERNAL', `session state too large (${token.length} chars)`);
  return { token, id };
}

/** Opens a session token; anything not sealed by this CA, or malformed, is an unknown session. */
export function openSealedSession(key: Buffer, token: unknown): SessionClaims {
  const unknown = (why: string): never => {
    throw new EdgewardError('ERR_CA_SESSION_UNKNOWN', why);
  };
  if (typeof token !== 'string' || !token.startsWith(PREFIX) || token.length > MAX_SESSION_CHARS)
    return unknown('not a session');
  const body = token.slice(PREFIX.length);
  const raw = Buffer.from(body, 'base64url');
  // Node's decoder skips characters outside the alphabet and ignores spare low bits, so other
  // strings would open as the same session: only the one canonical spelling is a session.
  if (raw.length < IV_BYTES + TAG_BYTES + 2 || raw.toString('base64url') !== body)
    return unknown('not a session');
  let json: string;
  try {
    const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES)).setAAD(AAD);
    d.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    json = Buffer.concat([d.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), d.final()]).toString(
      'utf8',
    );
  } catch {
    return unknown('not a session of this CA');
  }
  // Sealed by us, so well-formed; checked anyway rather than trusted blindly.
  const c = JSON.parse(json) as Partial<SessionClaims>;
  if (
    typeof c.id !== 'string' ||
    typeof c.identity !== 'string' ||
    typeof c.method !== 'string' ||
    typeof c.expiresAt !== 'number' ||
    (c.renewalOf !== null && typeof c.renewalOf !== 'string')
  )
    return unknown('malformed session');
  return c as SessionClaims;
}
