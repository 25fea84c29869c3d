// The authorization decision of an inbound listener: "may this peer identity connect?". Pure:
// allow and deny identity patterns, deny wins, default deny.
import { EdgewardError } from '../common/errors.js';
import { isValidPattern, matchIdentity, parseIdentity } from '../common/identity.js';

export interface AuthzPolicy {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
}

export type AuthzVerdict =
  | { readonly allowed: true; readonly rule: string }
  | {
      readonly allowed: false;
      readonly reason: 'denied' | 'no-match' | 'invalid-identity';
      readonly rule?: string;
    };

const MAX_PATTERNS = 1024;

/** Validates the patterns once (config load) and returns a frozen policy. */
export function compileAuthz(allow: readonly unknown[], deny: readonly unknown[] = []): AuthzPolicy {
  if (allow.length + deny.length > MAX_PATTERNS) {
    throw new EdgewardError('ERR_POLICY_AUTHZ_PATTERN', `at most ${MAX_PATTERNS} patterns`);
  }
  const check = (list: readonly unknown[], what: string): string[] =>
    list.map((p, i) => {
      if (typeof p !== 'string' || !isValidPattern(p)) {
        throw new EdgewardError(
          'ERR_POLICY_AUTHZ_PATTERN',
          `${what}[${i}] is not a spiffe:// identity pattern`,
          {
            detail: { pattern: String(p).slice(0, 200) },
          },
        );
      }
      return p;
    });
  return Object.freeze({
    allow: Object.freeze(check(allow, 'allow')),
    deny: Object.freeze(check(deny, 'deny')),
  });
}

export function authorize(policy: AuthzPolicy, identity: string): AuthzVerdict {
  try {
    parseIdentity(identity);
  } catch {
    return { allowed: false, reason: 'invalid-identity' };
  }
  for (const rule of policy.deny)
    if (matchIdentity(rule, identity)) return { allowed: false, reason: 'denied', rule };
  for (const rule of policy.allow) if (matchIdentity(rule, identity)) return { allowed: true, rule };
  return { allowed: false, reason: 'no-match' };
}
