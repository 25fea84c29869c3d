// What the SIEM's decisions mean for the CA, as pure functions: which live decision refuses a
// credential (by identity, node, serial or key), and which renewal holds to place or release
// when a verified decision set arrives. The follower and the store are the I/O around them.
import type { Decision, DecisionScope, DecisionSet } from '../common/decisions.js';
import { matchIdentity, parseIdentity } from '../common/identity.js';
import { normalizeSerial } from '../common/x509.js';

/** A request's credentials: its identity, and the serials and key hashes it presents or asks for. */
export interface CredentialSubject {
  readonly identity: string;
  readonly serials?: readonly string[];
  readonly spkis?: readonly string[];
}

/** The first live decision of the set that covers the subject, or undefined. */
export function quarantineOf(
  set: DecisionSet | null,
  s: CredentialSubject,
  now: number,
): Decision | undefined {
  if (set === null) return undefined;
  const serials = new Set((s.serials ?? []).map(normalizeSerial));
  const spkis = new Set((s.spkis ?? []).map((k) => k.toLowerCase()));
  return set.decisions.find((d) => d.expiresAt > now && covers(d.scope, s.identity, serials, spkis));
}

function covers(
  scope: DecisionScope,
  identity: string,
  serials: ReadonlySet<string>,
  spkis: ReadonlySet<string>,
): boolean {
  switch (scope.type) {
    case 'identity':
    case 'node':
      return matchIdentity(scope.value, identity);
    case 'serial':
      return serials.has(normalizeSerial(scope.value));
    case 'spki':
      return spkis.has(scope.value.toLowerCase());
    default:
      return false;
  }
}

/**
 * A renewal hold: a decision quarantined one of the identity's credentials (a serial or a key,
 * as the cloned-credential playbook does), so no certificate of that identity renews and none is
 * enrolled until an analyst releases it: by lifting the decision in the SIEM, or with
 * `edgeward ca release --hold`. Another copy of the credential may have renewed already.
 */
export interface RenewalHold {
  readonly identity: string;
  readonly decisionId: string;
  readonly scope: DecisionScope;
  readonly placedAt: number;
  /** When the decision would have expired: a decision gone before then was lifted. */
  readonly decisionExpiresAt: number;
  readonly releasedAt: number | null;
  readonly releasedBy: string | null;
}

/** How far before its expiry a vanished decision counts as lifted, not expired (clock skew). */
export const LIFT_MARGIN_MS = 60_000;

export interface HoldPlan {
  readonly place: RenewalHold[];
  /** Active holds whose decision was lifted in the SIEM before it expired. */
  readonly lifted: RenewalHold[];
}

/**
 * Holds to place for the set's live serial and key decisions (one per identity and decision,
 * never again once released) and holds whose decision vanished early. `owners` names the
 * identities that hold a certificate of a serial or key (from the CA's store). Control-plane
 * identities are never held, as the SIEM never quarantines them.
 */
export function planHolds(
  set: DecisionSet,
  holds: readonly RenewalHold[],
  owners: (scope: DecisionScope) => readonly string[],
  now: number,
): HoldPlan {
  const known = new Set(holds.map((h) => `${h.identity}\n${h.decisionId}`));
  const place: RenewalHold[] = [];
  const live = new Set<string>();
  for (const d of set.decisions) {
    live.add(d.id);
    if (d.expiresAt <= now || (d.scope.type !== 'serial' && d.scope.type !== 'spki')) continue;
    for (const identity of new Set(owners(d.scope))) {
      if (isControlPlane(identity) || known.has(`${identity}\n${d.id}`)) continue;
      known.add(`${identity}\n${d.id}`);
      place.push({
        identity,
        decisionId: d.id,
        scope: d.scope,
        placedAt: now,
        decisionExpiresAt: d.expiresAt,
        releasedAt: null,
        releasedBy: null,
      });
    }
  }
  const lifted = holds.filter(
    (h) => h.releasedAt === null && !live.has(h.decisionId) && now < h.decisionExpiresAt - LIFT_MARGIN_MS,
  );
  return { place, lifted };
}

function isControlPlane(identity: string): boolean {
  try {
    return parseIdentity(identity).kind === 'svc';
  } catch {
    return true;
  }
}
