// SPIFFE-style identities: spiffe://TRUST-DOMAIN/kind/name. Parsing is strict because every
// identity reaching us came from a CSR, a certificate or a request body.
import { EdgewardError } from './errors.js';

export type IdentityKind = 'node' | 'device' | 'svc';

export interface Identity {
  readonly uri: string;
  readonly trustDomain: string;
  readonly path: readonly string[];
  readonly kind: IdentityKind | 'other';
}

const MAX_ID_LENGTH = 2048;
const TRUST_DOMAIN = /^[a-z0-9]([a-z0-9.-]{0,253}[a-z0-9])?$/;
const SEGMENT = /^[A-Za-z0-9._-]{1,255}$/;

export function isTrustDomain(td: string): boolean {
  return TRUST_DOMAIN.test(td) && !td.includes('..');
}

export function parseIdentity(uri: unknown): Identity {
  if (typeof uri !== 'string' || uri.length === 0 || uri.length > MAX_ID_LENGTH) {
    throw new EdgewardError('ERR_ID_INVALID', 'identity must be a spiffe:// URI of at most 2048 characters');
  }
  if (!uri.startsWith('spiffe://'))
    throw new EdgewardError('ERR_ID_INVALID', 'identity must start with spiffe://');
  const rest = uri.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const td = slash < 0 ? rest : rest.slice(0, slash);
  if (!isTrustDomain(td)) throw new EdgewardError('ERR_ID_INVALID', 'invalid trust domain');
  const path = slash < 0 ? [] : rest.slice(slash + 1).split('/');
  if (path.length === 0) throw new EdgewardError('ERR_ID_INVALID', 'identity needs a path');
  for (const seg of path) {
    if (!SEGMENT.test(seg) || seg === '.' || seg === '..') {
      throw new EdgewardError('ERR_ID_INVALID', 'invalid identity path segment');
    }
  }
  const first = path[0];
  const kind: Identity['kind'] = first === 'node' || first === 'device' || first === 'svc' ? first : 'other';
  if (kind !== 'other' && path.length < 2)
    throw new EdgewardError('ERR_ID_INVALID', `${kind} identity needs a name`);
  return { uri, trustDomain: td, path, kind };
}

/** The control-plane identities, which the SIEM never quarantines. */
export function serviceId(trustDomain: string, name: string): string {
  return `spiffe://${trustDomain}/svc/${name}`;
}

/**
 * Identity patterns: `*` matches exactly one path segment, a trailing `**` matches one or more,
 * everything else matches literally. `spiffe://td/node/*` matches `spiffe://td/node/n1` only.
 */
export function matchIdentity(pattern: string, uri: string): boolean {
  const p = pattern.split('/');
  const u = uri.split('/');
  for (let i = 0; i < p.length; i++) {
    const seg = p[i];
    if (seg === '**' && i === p.length - 1) return u.length > i;
    if (i >= u.length) return false;
    if (seg !== '*' && seg !== u[i]) return false;
    if (seg === '*' && (u[i] ?? '') === '') return false;
  }
  return p.length === u.length;
}

export function isValidPattern(pattern: string): boolean {
  if (!pattern.startsWith('spiffe://')) return false;
  const replaced = pattern
    .split('/')
    .map((s, i, all) => (s === '*' || (s === '**' && i === all.length - 1) ? 'x' : s))
    .join('/');
  try {
    parseIdentity(replaced);
    return true;
  } catch {
    return false;
  }
}
