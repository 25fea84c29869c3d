// Scope questions the response engine asks: is this scope a control-plane identity, does it touch
// the allowlist? Both answer conservatively: a wildcard that could cover a protected name does.
import type { DecisionScope } from '../../common/decisions.js';
import { cidrOverlaps, parseIpOrCidr, type Cidr } from '../../common/ip.js';

export function scopeKey(s: DecisionScope): string {
  return `${s.type === 'node' ? 'identity' : s.type}\u001f${s.value}`;
}

function segments(uri: string): string[] {
  return uri.slice('spiffe://'.length).split('/');
}

/** Could identity pattern `a` and identity pattern `b` match a common identity? */
export function patternsOverlap(a: string, b: string): boolean {
  const x = segments(a);
  const y = segments(b);
  const n = Math.max(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const p = x[i];
    const q = y[i];
    if (p === '**' || q === '**') return (p ?? q) !== undefined;
    if (p === undefined || q === undefined) return false;
    if (i === 0) {
      if (p !== q) return false;
      continue;
    }
    if (p !== '*' && q !== '*' && p !== q) return false;
  }
  return true;
}

/** Control-plane identities (spiffe://TD/svc/...) are never quarantined; wildcards over them neither. */
export function isProtected(s: DecisionScope): boolean {
  if (s.type !== 'identity' && s.type !== 'node') return false;
  const first = segments(s.value)[1];
  return first === 'svc' || first === '*' || first === '**';
}

function asCidr(s: DecisionScope): Cidr | null {
  if (s.type !== 'ip' && s.type !== 'cidr') return null;
  try {
    return parseIpOrCidr(s.value);
  } catch {
    return null; // scopes reach here canonical (common/decision-scope.ts); never guess otherwise
  }
}

/**
 * Does the scope touch any allowlisted scope? Overlap, not only equality, so allowlists win: a
 * block that contains an allowlisted address is refused, never narrowed around it. Both sides are
 * canonical (common/decision-scope.ts), so ::ffff:127.0.0.1 is 127.0.0.1 here as at the agents.
 */
export function isAllowlisted(s: DecisionScope, allowlist: readonly DecisionScope[]): boolean {
  const mine = asCidr(s);
  for (const a of allowlist) {
    if ((s.type === 'identity' || s.type === 'node') && (a.type === 'identity' || a.type === 'node')) {
      if (patternsOverlap(s.value, a.value)) return true;
    } else if (mine !== null) {
      const other = asCidr(a);
      if (other !== null && cidrOverlaps(mine, other)) return true;
    } else if (s.type === a.type && s.value === a.value) return true;
  }
  return false;
}
