// Signs and verifies decision snapshots and deltas as compact JWS (ES256, typ
// `edgeward-decisions+jws`). The SIEM signs; agents and the CA verify with the SIEM's public key.
import type { KeyObject } from 'node:crypto';
import { CompactSign, compactVerify, errors as joseErrors } from 'jose';
import { canonicalScope } from './decision-scope.js';
import type { Decision, DecisionDelta, DecisionScope, DecisionSet } from './decisions.js';
import { EdgewardError } from './errors.js';
import { isTrustDomain } from './identity.js';

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
const POISON = new Set(['__proto__', 'constructor', 'prototype']);
const ID = /^[A-Za-z0-9._:-]{1,64}$/;

function malformed(msg: string): never {
  throw new EdgewardError('ERR_DECISION_MALFORMED', msg);
}

function rec(v: unknown, keys: readonly string[], where: string): Rec {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) malformed(`${where} must be an object`);
  for (const k of Object.keys(v)) {
    if (POISON.has(k) || !keys.includes(k)) malformed(`${where} has an unexpected key`);
  }
  return v as Rec;
}

function int(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    malformed(`${where} must be a non-negative integer`);
  return v;
}

/** A scope as signed: valid (else ERR_DECISION_MALFORMED) and canonical (else _SCOPE_NOT_CANONICAL). */
function signedScope(v: unknown, where: string): DecisionScope {
  const s = rec(v, ['type', 'value'], where);
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

function parseDecision(v: unknown, where: string): Decision {
  const d = rec(
    v,
    ['id', 'revision', 'scope', 'action', 'reason', 'createdAt', 'expiresAt', 'alerts'],
    where,
  );
  const id = d['id'];
  if (typeof id !== 'string' || !ID.test(id)) malformed(`${where}.id is invalid`);
  const scope = signedScope(d['scope'], `${where}.scope`);
  const action = d['action'];
  if (action !== 'quarantine' && action !== 'isolate') malformed(`${where}.action is invalid`);
  const reason = d['reason'];
  if (typeof reason !== 'string' || reason.length > 512) malformed(`${where}.reason is invalid`);
  const alerts = d['alerts'];
  if (!Array.isArray(alerts) || alerts.length > MAX_ALERTS_PER_DECISION)
    malformed(`${where}.alerts is invalid`);
  for (const a of alerts) if (typeof a !== 'string' || !ID.test(a)) malformed(`${where}.alerts is invalid`);
  const createdAt = int(d['createdAt'], `${where}.createdAt`);
  const expiresAt = int(d['expiresAt'], `${where}.expiresAt`);
  if (expiresAt < createdAt) malformed(`${where} expires before it is created`);
  return {
    id,
    revision: int(d['revision'], `${where}.revision`),
    scope: { type: scope.type, value: scope.value },
    action,
    reason,
    createdAt,
    expiresAt,
    alerts: alerts as string[],
  };
}

function decisions(v: unknown, where: string, revision: number): Decision[] {
  if (!Array.isArray(v) || v.length > MAX_DECISIONS)
    malformed(`${where} must be a list of at most ${MAX_DECISIONS}`);
  const ids = new Set<string>();
  return v.map((x, i) => {
    const d = parseDecision(x, `${where}[${i}]`);
    if (d.revision > revision) malformed(`${where}[${i}] is newer than the document`);
    if (ids.has(d.id)) malformed(`${where} lists ${d.id} twice`);
    ids.add(d.id);
    return d;
  });
}

function trustDomain(v: unknown): string {
  if (typeof v !== 'string' || !isTrustDomain(v)) malformed('trustDomain is invalid');
  return v;
}

export function parseDecisionSet(v: unknown): DecisionSet {
  const o = rec(v, ['kind', 'trustDomain', 'revision', 'issuedAt', 'decisions'], 'snapshot');
  if (o['kind'] !== 'snapshot') malformed('not a snapshot');
  const revision = int(o['revision'], 'revision');
  return {
    trustDomain: trustDomain(o['trustDomain']),
    revision,
    issuedAt: int(o['issuedAt'], 'issuedAt'),
    decisions: decisions(o['decisions'], 'decisions', revision),
  };
}

export function parseDecisionDelta(v: unknown): DecisionDelta {
  const o = rec(v, ['kind', 'trustDomain', 'from', 'revision', 'issuedAt', 'upserts', 'removals'], 'delta');
  if (o['kind'] !== 'delta') malformed('not a delta');
  const from = int(o['from'], 'from');
  const revision = int(o['revision'], 'revision');
  if (revision <= from) malformed('a delta must move the revision forward');
  const removals = o['removals'];
  if (!Array.isArray(removals) || removals.length > MAX_DECISIONS) malformed('removals must be a list');
  for (const r of removals)
    if (typeof r !== 'string' || !ID.test(r)) malformed('removals must be decision ids');
  return {
    trustDomain: trustDomain(o['trustDomain']),
    from,
    revision,
    issuedAt: int(o['issuedAt'], 'issuedAt'),
    upserts: decisions(o['upserts'], 'upserts', revision),
    removals: removals as string[],
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
