// The rows both SQL adapters of the CA store read (snake_case columns of the same names in
// SQLite and PostgreSQL), the domain records they map to, and the audit entries both write.
import type { DecisionScopeType } from '../common/decisions.js';
import type { RenewalHold } from './quarantine.js';
import type { AuditEntry, CertRecord } from './store.js';

export interface CertRow {
  serial: string;
  identity: string;
  spki_sha256: string;
  method: string;
  not_before: number;
  not_after: number;
  issued_at: number;
  der: Buffer;
  revoked_at: number | null;
  revocation_reason: string | null;
}

export function toCert(r: CertRow): CertRecord {
  return {
    serial: r.serial,
    identity: r.identity,
    spkiSha256: r.spki_sha256,
    method: r.method,
    notBefore: r.not_before,
    notAfter: r.not_after,
    issuedAt: r.issued_at,
    der: r.der,
    revokedAt: r.revoked_at,
    revocationReason: r.revocation_reason,
  };
}

export interface HoldRow {
  identity: string;
  decision_id: string;
  scope_type: string;
  scope_value: string;
  placed_at: number;
  decision_expires_at: number;
  released_at: number | null;
  released_by: string | null;
}

export function toHold(r: HoldRow): RenewalHold {
  return {
    identity: r.identity,
    decisionId: r.decision_id,
    scope: { type: r.scope_type as DecisionScopeType, value: r.scope_value },
    placedAt: r.placed_at,
    decisionExpiresAt: r.decision_expires_at,
    releasedAt: r.released_at,
    releasedBy: r.released_by,
  };
}

/** The audit entry of a renewal hold placed (one form whichever store keeps it). */
export function holdPlaced(h: RenewalHold): AuditEntry {
  return {
    kind: 'hold.place',
    data: {
      identity: h.identity,
      decision: h.decisionId,
      scope: h.scope,
      decisionExpiresAt: h.decisionExpiresAt,
    },
  };
}
