// Signs and verifies decision snapshots and deltas as compact JWS (ES256, typ
// `edgeward-decisions+jws`). The SIEM signs; agents and the CA verify with the SIEM's public key.
import type { KeyObject } from 'node:crypto';
import { CompactSign, compactVerify, errors as joseErrors } from 'jose';
import { canonicalScope } from './decision-scope.js';
import type { Decision, DecisionDelta, DecisionScope, DecisionSet } from './decisions.js';
import { EdgewardError } from './errors.js';
import { isTrustDomain } from './identity.js';
import { compileSchema } from './schema.js';

export const DECISIONS_TYP = 'edgeward-decisions+jws';
/** Largest compact JWS accepted (a snapshot of ~20,000 decisions). */
export const MAX_DECISION_JWS = 8 * 1024 * 1024;
export const MAX_DECISIONS = 100_000;
const MAX_ALERTS_PER_DECISION = 100;
const DEFAULT_SKEW_MS = 60_000;

export type SignedDecisions =
  | { readonly kind: 'snapshot'; readonly set: DecisionSet }
  | { readonly kind: 'delta'; readonly delta: DecisionDelta };

function checkSigningKey(key: KeyObject): void {
  if (
    key.type !== 'private' ||
    key.asymmetricKeyType !== 'ec' ||
    key.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
  ) {
    throw new TypeError('decisions are signed with a P-256 private KeyObject');
  }
}

async function sign(payload: object, key: KeyObject, kid: string): Promise<string> {
  checkSigningKey(key);
  if (typeof kid !== 'string' || kid.length === 0 || kid.length > 128)
    throw new TypeError('kid must be 1..128 characters');
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: 'ES256', kid, typ: DECISIONS_TYP })
    .sign(key);
}

export async function signDecisionSet(set: DecisionSet, key: KeyObject, kid: string): Promise<string> {
  // Validate our own output too, so a bug in the SIEM cannot push something agents will refuse.
  const checked = parseDecisionSet({ kind: 'snapshot', ...set });
  return sign({ kind: 'snapshot', ...checked }, key, kid);
}

export async function signDecisionDelta(delta: DecisionDelta, key: KeyObject, kid: string): Promise<string> {
  const checked = parseDecisionDelta({ kind: 'delta', ...delta });
  return sign({ kind: 'delta', ...checked }, key, kid);
}

// ---- payload validation (shared by sign and verify) ----

type Rec = Readonly<Record<string, unknown>>;

function malformed(msg: string): never {
  throw new EdgewardError('ERR_DECISION_MALFORMED', msg);
}

const ID = { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,64}$' } as const;
const COUNT = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;

const DECISION = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'revision', 'scope', 'action', 'reason', 'createdAt', 'expiresAt', 'alerts'],
  properties: {
    id: ID,
    revision: COUNT,
    scope: {
      type: 'object',
      additionalProperties: false,
      required: ['type', 'value'],
      properties: { type: {}, value: {} },
    },
    action: { type: 'string', enum: ['quarantine', 'isolate'] },
    reason: { type: 'string', maxLength: 512 },
    createdAt: COUNT,
    expiresAt: COUNT,
    alerts: { type: 'array', maxItems: MAX_ALERTS_PER_DECISION, items: ID },
  },
} as const;

const DECISIONS = { type: 'array', maxItems: MAX_DECISIONS, items: DECISION } as const;

interface SnapshotShape {
  readonly trustDomain: string;
  readonly revision: number;
  readonly issuedAt: number;
  readonly decisions: readonly Decision[];
}
interface DeltaShape {
  readonly trustDomain: string;
  readonly from: number;
  readonly revision: number;
  readonly issuedAt: number;
  readonly upserts: readonly Decision[];
  readonly removals: readonly string[];
}

const snapshotShape = compileSchema<SnapshotShape>(
  {
    type: 'object',
    additionalProperties: false,
    required: ['kind', 'trustDomain', 'revision', 'issuedAt', 'decisions'],
    properties: {
      kind: { const: 'snapshot' },
      trustDomain: { type: 'string' },
      revision: COUNT,
      issuedAt: COUNT,
      decisions: DECISIONS,
    },
  },
  'ERR_DECISION_MALFORMED',
  'decision snapshot',
);

const deltaShape = compileSchema<DeltaShape>(
  {
    type: 'object',
    additionalProperties: false,
    required: ['kind', 'trustDomain', 'from', 'revision', 'issuedAt', 'upserts', 'removals'],
    properties: {
      kind: { const: 'delta' },
      trustDomain: { type: 'string' },
      from: COUNT,
      revision: COUNT,
      issuedAt: COUNT,
      upserts: DECISIONS,
      removals: { type: 'array', maxItems: MAX_DECISIONS, items: ID },
    },
  },
  'ERR_DECISION_MALFORMED',
  'decision delta',
);

/** A scope as signed: valid (else ERR_DECISION_MALFORMED) and canonical (else _SCOPE_NOT_CANONICAL). */
function signedScope(s: Rec, where: string): DecisionScope {
  let c: DecisionScope;
  try {
    c = canonicalScope({ type: s['type'], value: s['value'] });
  } catch (err) {
    throw new EdgewardError('ERR_DECISION_MALFORMED', `${where} is invalid`, { cause: err });
  }
  // The signer and every verifier must read the same peers: a scope the SIEM would have had to
  // rewrite (::ffff:127.0.0.1, an upper-case serial) is refused, never rebased here.
  if (c.type !== s['type'] || c.value !== s['value'])
    throw new EdgewardError('ERR_DECISION_SCOPE_NOT_CANONICAL', undefined, {
      detail: { where, type: c.type, canonical: c.value.slice(0, 128) },
    });
  return c;
}

/** The checks a schema cannot state: canonical scopes, times in order, revisions, unique ids. */
function decisions(list: readonly Decision[], where: string, revision: number): Decision[] {
  const ids = new Set<string>();
  return list.map((d, i) => {
    const at = `${where}[${i}]`;
    const scope = signedScope(d.scope as unknown as Rec, `${at}.scope`);
    if (d.expiresAt < d.createdAt) malformed(`${at} expires before it is created`);
    if (d.revision > revision) malformed(`${at} is newer than the document`);
    if (ids.has(d.id)) malformed(`${where} lists ${d.id} twice`);
    ids.add(d.id);
    return {
      id: d.id,
      revision: d.revision,
      scope: { type: scope.type, value: scope.value },
      action: d.action,
      reason: d.reason,
      createdAt: d.createdAt,
      expiresAt: d.expiresAt,
      alerts: [...d.alerts],
    };
  });
}

function trustDomain(v: string): string {
  if (!isTrustDomain(v)) malformed('trustDomain is invalid');
  return v;
}

export function parseDecisionSet(v: unknown): DecisionSet {
  const o = snapshotShape(v);
  return {
    trustDomain: trustDomain(o.trustDomain),
    revision: o.revision,
    issuedAt: o.issuedAt,
    decisions: decisions(o.decisions, 'decisions', o.revision),
  };
}

export function parseDecisionDelta(v: unknown): DecisionDelta {
  const o = deltaShape(v);
  if (o.revision <= o.from) malformed('a delta must move the revision forward');
  return {
    trustDomain: trustDomain(o.trustDomain),
    from: o.from,
    revision: o.revision,
    issuedAt: o.issuedAt,
    upserts: decisions(o.upserts, 'upserts', o.revision),
    removals: [...o.removals],
  };
}

// ---- verification ----

export interface VerifyDecisionsOptions {
  /** The SIEM's P-256 public key. */
  readonly publicKey: KeyObject;
  readonly trustDomain: string;
  /** The revision the verifier has applied, or null if it has applied nothing yet. */
  readonly lastApplied: number | null;
  /** Epoch ms (inject the clock). */
  readonly now: number;
  /** Tolerated clock skew for issuedAt in the future (default 60 s). */
  readonly skewMs?: number;
  /** If set, the header kid must equal it. */
  readonly kid?: string;
}

/**
 * Verifies a signed snapshot or delta. Refusals, each with its own code: ERR_DECISION_TOO_LARGE,
 * _MALFORMED, _SIGNATURE, _TYP, _KID, _TRUST_DOMAIN, _STALE (snapshot revision below the applied
 * one), _GAP (delta not starting at the applied revision), _FUTURE (issued beyond the skew),
 * _SCOPE_NOT_CANONICAL (a scope in another spelling than common/decision-scope.ts makes).
 */
export async function verifyDecisions(jws: string, opts: VerifyDecisionsOptions): Promise<SignedDecisions> {
  if (opts.publicKey.type !== 'public' || opts.publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new TypeError('decisions are verified with a P-256 public KeyObject');
  }
  if (typeof jws !== 'string') malformed('a compact JWS is a string');
  if (jws.length > MAX_DECISION_JWS) throw new EdgewardError('ERR_DECISION_TOO_LARGE');
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(jws)) malformed('not a compact JWS');
  // The signature lies outside what it signs, and base64url decoders ignore its last character's
  // spare bits: only the canonical spelling of the 64 bytes, so one document has one token.
  const sig = jws.slice(jws.lastIndexOf('.') + 1);
  if (sig.length !== 86 || Buffer.from(sig, 'base64url').toString('base64url') !== sig)
    malformed('signature is not 64 bytes in canonical base64url');
  let payload: Uint8Array;
  let header: { typ?: unknown; kid?: unknown };
  try {
    const r = await compactVerify(jws, opts.publicKey, { algorithms: ['ES256'] });
    payload = r.payload;
    header = r.protectedHeader;
  } catch (err) {
    if (
      err instanceof joseErrors.JWSSignatureVerificationFailed ||
      err instanceof joseErrors.JOSEAlgNotAllowed
    ) {
      throw new EdgewardError('ERR_DECISION_SIGNATURE', undefined, { cause: err });
    }
    throw new EdgewardError('ERR_DECISION_MALFORMED', 'JWS could not be decoded', { cause: err });
  }
  if (header.typ !== DECISIONS_TYP) throw new EdgewardError('ERR_DECISION_TYP');
  if (opts.kid !== undefined && header.kid !== opts.kid) throw new EdgewardError('ERR_DECISION_KID');
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch (err) {
    throw new EdgewardError('ERR_DECISION_MALFORMED', 'payload is not JSON', { cause: err });
  }
  const kind = typeof body === 'object' && body !== null ? (body as Rec)['kind'] : undefined;
  let doc: SignedDecisions;
  if (kind === 'snapshot') doc = { kind, set: parseDecisionSet(body) };
  else if (kind === 'delta') doc = { kind, delta: parseDecisionDelta(body) };
  else malformed('payload kind must be snapshot or delta');
  const d = doc.kind === 'snapshot' ? doc.set : doc.delta;
  if (d.trustDomain !== opts.trustDomain) throw new EdgewardError('ERR_DECISION_TRUST_DOMAIN');
  if (d.issuedAt > opts.now + (opts.skewMs ?? DEFAULT_SKEW_MS))
    throw new EdgewardError('ERR_DECISION_FUTURE');
  const last = opts.lastApplied;
  if (doc.kind === 'snapshot') {
    if (last !== null && doc.set.revision < last) {
      throw new EdgewardError('ERR_DECISION_STALE', undefined, {
        detail: { revision: doc.set.revision, lastApplied: last },
      });
    }
  } else if (last === null || doc.delta.from !== last) {
    throw new EdgewardError('ERR_DECISION_GAP', undefined, {
      detail: { from: doc.delta.from, lastApplied: last },
    });
  }
  return doc;
}
