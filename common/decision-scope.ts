// The canonical form of a decision scope: made once where a decision is created (playbooks, the
// analyst API, the dashboard) and required by every verifier, so the SIEM's allowlist, the signer
// and every enforcer read a scope as the same set of peers (docs/quarantine-stream.md).
import { DECISION_SCOPE_TYPES, type DecisionScope } from './decisions.js';
import { EdgewardError } from './errors.js';
import { isValidPattern, parseIdentity } from './identity.js';
import { isHostCidr, parseCidr, parseIp } from './ip.js';
import { normalizeSerial } from './x509.js';

const MAX_SCOPE_VALUE = 2048;
const SPKI = /^[0-9a-fA-F]{64}$/;

function bad(msg: string): never {
  throw new EdgewardError('ERR_INPUT_MALFORMED', msg);
}

/**
 * The canonical scope, or a coded error naming what is wrong: ERR_IP_INVALID, ERR_IP_ZONE,
 * ERR_IP_CIDR_INVALID, ERR_IP_CIDR_HOST_BITS (ip, cidr), ERR_SERIAL_INVALID, ERR_ID_INVALID
 * (identity, node), ERR_INPUT_MALFORMED (type, spki, length). Canonical: identities as written
 * (they are strict already); serials by normalizeSerial; spki lower-case; ip and cidr by
 * common/ip.ts, where a host block (`a.b.c.d/32`, `…/128`) becomes an `ip` scope.
 */
export function canonicalScope(scope: { readonly type: unknown; readonly value: unknown }): DecisionScope {
  const { type, value: v } = scope;
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_SCOPE_VALUE)
    bad(`scope value must be 1..${MAX_SCOPE_VALUE} characters`);
  switch (type) {
    case 'identity':
      if (!isValidPattern(v)) throw new EdgewardError('ERR_ID_INVALID', 'not a SPIFFE ID or pattern');
      return { type, value: v };
    case 'node':
      if (parseIdentity(v).kind !== 'node') throw new EdgewardError('ERR_ID_INVALID', 'not a node identity');
      return { type, value: v };
    case 'serial':
      return { type, value: normalizeSerial(v) };
    case 'spki':
      if (!SPKI.test(v)) bad('spki must be 64 hex digits (SHA-256 of the SubjectPublicKeyInfo)');
      return { type, value: v.toLowerCase() };
    case 'ip':
      return { type, value: parseIp(v).text };
    case 'cidr': {
      const c = parseCidr(v);
      return isHostCidr(c)
        ? { type: 'ip', value: c.text.slice(0, c.text.indexOf('/')) }
        : { type, value: c.text };
    }
    default:
      return bad(`scope type must be one of ${DECISION_SCOPE_TYPES.join(', ')}`);
  }
}

/** Is the scope valid and already in its canonical form (what a signed document must carry)? */
export function isCanonicalScope(scope: DecisionScope): boolean {
  try {
    const c = canonicalScope(scope);
    return c.type === scope.type && c.value === scope.value;
  } catch {
    return false;
  }
}
