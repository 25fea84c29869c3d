// The decisions the SIEM pushes to every enforcement point (agents and the CA). Shared by
// producer and consumers so they cannot drift. Signing and verification: common/decision-jws.ts.
export const DECISION_SCOPE_TYPES = ['identity', 'serial', 'spki', 'ip', 'cidr', 'node'] as const;
export type DecisionScopeType = (typeof DECISION_SCOPE_TYPES)[number];
export const DECISION_ACTIONS = ['quarantine', 'isolate'] as const;
export type DecisionAction = (typeof DECISION_ACTIONS)[number];

/** JSON schema of a decision scope in request bodies (the SIEM's API and the dashboard's). */
export const DECISION_SCOPE_SCHEMA = {
  type: 'object',
  required: ['type', 'value'],
  additionalProperties: false,
  properties: {
    type: { enum: DECISION_SCOPE_TYPES },
    value: { type: 'string', minLength: 1, maxLength: 2048 },
  },
} as const;

export interface DecisionScope {
  readonly type: DecisionScopeType;
  /**
   * identity: a SPIFFE ID or pattern (`*` one segment); serial: lower-case hex, no colons, no
   * leading zeros; spki: lower-case hex SHA-256 of the DER SubjectPublicKeyInfo; ip: an IPv4/IPv6
   * address; cidr: a.b.c.d/n or IPv6/n; node: the SPIFFE ID of a node (all its connections, both
   * ways). Signed documents carry only the canonical form (common/decision-scope.ts).
   */
  readonly value: string;
}

export interface Decision {
  readonly id: string;
  /** The revision at which this decision was created or last changed. */
  readonly revision: number;
  readonly scope: DecisionScope;
  /** quarantine: refuse new and cut live connections of the scope; isolate: also outbound. */
  readonly action: DecisionAction;
  readonly reason: string;
  /** Epoch ms. */
  readonly createdAt: number;
  /** Epoch ms; a decision past this is no longer enforced. */
  readonly expiresAt: number;
  /** Alert ids behind the decision (empty for manual ones). */
  readonly alerts: readonly string[];
}

/** The full set of active decisions at a revision (what a snapshot or a decisions file holds). */
export interface DecisionSet {
  readonly trustDomain: string;
  readonly revision: number;
  /** Epoch ms. */
  readonly issuedAt: number;
  readonly decisions: readonly Decision[];
}

/** A change from revision `from` to revision `revision`: added/changed decisions and removed ids. */
export interface DecisionDelta {
  readonly trustDomain: string;
  readonly from: number;
  readonly revision: number;
  readonly issuedAt: number;
  readonly upserts: readonly Decision[];
  readonly removals: readonly string[];
}
