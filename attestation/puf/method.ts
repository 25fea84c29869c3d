// The `puf` attestation method (CA side): begin sends a fresh nonce with the registered helper
// data (key mode) or an unused challenge-response pair (crp mode); finish checks the device's
// answer with node:crypto and returns a verdict whose commit spends the single-use markers.
import {
  createHash,
  createPublicKey,
  randomBytes,
  timingSafeEqual,
  verify,
  type KeyObject,
} from 'node:crypto';
import {
  withEvidence,
  type AttestationMethod,
  type BeginResult,
  type CsrKey,
  type MethodContext,
  type Verdict,
} from '../method.js';
import { EdgewardError } from '../../common/errors.js';
import type { Identity } from '../../common/identity.js';
import { toB64url } from './bits.js';
import { checkCrp } from './crp.js';
import { helperHash } from './fuzzy-extractor.js';
import { profileParams, PROFILES } from './profile.js';
import { NONCE_BYTES, parseEvidence, parseResponse, signedMessage, type PufMode } from './protocol.js';
import { createFailureLimiter, type FailureLimiter, type RateLimitOptions } from './rate-limit.js';
import { parsePufRecord, type PufRecord } from './record.js';

export const PUF_METHOD = 'puf';
/** Namespaces of the single-use markers in the CA store. */
export const NS_NONCE = 'puf-nonce';
export const NS_SIGNATURE = 'puf-sig';
export const NS_CRP = 'puf-crp';
/** CRPs never come back into use. */
const NEVER = Number.MAX_SAFE_INTEGER;

export interface PufMethodOptions {
  /** How long a challenge stays valid (default 60 s). */
  readonly nonceTtlMs?: number;
  /**
   * Enrollment failures per identity and source address (default 3 free, then 1 s doubling to
   * 15 min): what one address can spend, for itself only.
   */
  readonly rateLimit?: RateLimitOptions;
  /**
   * Enrollment failures per identity from all addresses together (default 30 free, then the same
   * backoff): the cap on what an attacker with many addresses can learn, and can deny.
   */
  readonly identityRateLimit?: RateLimitOptions;
  /**
   * Renewal failures per identity (default 3 free, then the same backoff). Renewals are
   * authenticated by the identity's certificate, so no stranger can spend this budget.
   */
  readonly renewalRateLimit?: RateLimitOptions;
  /** Whether renewals need a fresh PUF attestation (default true, as TPM identities do). */
  readonly reattestOnRenewal?: boolean;
}

/** Session state the CA keeps between begin and finish: plain JSON, so any session store works. */
interface PufState {
  readonly v: 1;
  readonly mode: PufMode;
  readonly identity: string;
  readonly nonce: string; // hex
  readonly expiresAt: number;
  readonly profile: string;
  readonly publicKey: string; // hex
  readonly helperHash: string; // hex
  readonly crpIndex?: number;
  readonly crpExpected?: string; // hex, reference response
}

export interface PufMethod extends AttestationMethod {
  /** The failure budgets (see PufMethodOptions); keys are those of `budgetKeys`. */
  readonly limiters: {
    readonly source: FailureLimiter;
    readonly identity: FailureLimiter;
    readonly renewal: FailureLimiter;
  };
}

/** Which budgets an attempt spends: renewals their identity's; enrollments their address's and a share of the identity's. */
export function budgetKeys(
  ctx: Pick<MethodContext, 'renewal' | 'source'>,
  identity: string,
): Array<{ budget: 'source' | 'identity' | 'renewal'; key: string }> {
  if (ctx.renewal) return [{ budget: 'renewal', key: identity }];
  return [
    { budget: 'source', key: `${identity} ${ctx.source}` },
    { budget: 'identity', key: identity },
  ];
}

function crpKey(publicKeyHex: string, index: number): string {
  return `${publicKeyHex}:${index}`;
}

function parseState(state: unknown): PufState {
  const s = state as Partial<PufState> | null;
  if (
    typeof s !== 'object' ||
    s === null ||
    s.v !== 1 ||
    (s.mode !== 'key' && s.mode !== 'crp') ||
    typeof s.identity !== 'string' ||
    typeof s.nonce !== 'string' ||
    typeof s.expiresAt !== 'number' ||
    typeof s.profile !== 'string' ||
    typeof s.publicKey !== 'string' ||
    typeof s.helperHash !== 'string'
  ) {
    throw new TypeError('puf method: not a session state of this method');
  }
  return s as PufState;
}

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const CACHE_MAX = 10_000;

/** Bounded memo: importing a public key costs more than verifying with it, so keep recent ones. */
function memo<V>(): { get(k: string): V | undefined; set(k: string, v: V): void } {
  const m = new Map<string, V>();
  return {
    get: (k) => m.get(k),
    set: (k, v) => {
      if (m.size >= CACHE_MAX) {
        const first = m.keys().next();
        if (!first.done) m.delete(first.value);
      }
      m.set(k, v);
    },
  };
}

/**
 * Ed25519 verification on libuv's thread pool: it is the largest cost of a PUF enrollment at the
 * CA (about 165 us of CPU here), and off the event loop it runs on another core while the loop
 * serves TLS and HTTP.
 */
function verifyAsync(msg: Buffer, key: KeyObject, sig: Buffer): Promise<boolean> {
  return new Promise((resolve, reject) => {
    verify(null, msg, key, sig, (err, ok) => (err ? reject(err) : resolve(ok)));
  });
}

interface LoadedRecord {
  readonly text: string;
  readonly record: PufRecord;
  readonly helperHash: string;
  readonly helperJson: { salt: string; mask: string; offset: string };
}

export function createPufMethod(options: PufMethodOptions = {}): PufMethod {
  const ttl = options.nonceTtlMs ?? 60_000;
  if (!Number.isInteger(ttl) || ttl < 1000 || ttl > 3_600_000)
    throw new TypeError('nonceTtlMs must be 1 s to 1 h');
  const limiters = {
    source: createFailureLimiter(options.rateLimit),
    identity: createFailureLimiter({ freeFailures: 30, ...options.identityRateLimit }),
    renewal: createFailureLimiter(options.renewalRateLimit),
  };
  const budget = {
    check(ctx: MethodContext, identity: string, now: number): void {
      for (const b of budgetKeys(ctx, identity)) limiters[b.budget].check(b.key, now);
    },
    failure(ctx: MethodContext, identity: string, now: number): void {
      for (const b of budgetKeys(ctx, identity)) limiters[b.budget].failure(b.key, now);
    },
    success(ctx: MethodContext, identity: string): void {
      for (const b of budgetKeys(ctx, identity)) limiters[b.budget].success(b.key);
    },
  };
  const keys = memo<KeyObject>();
  const records = memo<LoadedRecord>();

  const ed25519Key = (hex: string): KeyObject => {
    let k = keys.get(hex);
    if (!k) {
      k = createPublicKey({
        key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(hex, 'hex')]),
        format: 'der',
        type: 'spki',
      });
      keys.set(hex, k);
    }
    return k;
  };

  // The stored record is validated again on every begin (the store is outside this module), but a
  // record identical to the last one validated for the identity is not parsed twice.
  const loadRecord = async (ctx: MethodContext, identity: Identity): Promise<LoadedRecord> => {
    const raw = await ctx.store.getBinding(identity.uri, PUF_METHOD);
    if (raw === undefined || raw === null) {
      throw new EdgewardError('ERR_ATT_PUF_NOT_PROVISIONED', undefined, {
        detail: { identity: identity.uri },
      });
    }
    const text = JSON.stringify(raw);
    const hit = records.get(identity.uri);
    if (hit && hit.text === text) return hit;
    const record = parsePufRecord(raw);
    if (record.id !== identity.uri)
      throw new EdgewardError('ERR_ATT_PUF_RECORD_MALFORMED', 'stored record names another identity');
    const loaded: LoadedRecord = {
      text,
      record,
      helperHash: helperHash(record.helper, record.profile).toString('hex'),
      helperJson: {
        salt: toB64url(record.helper.salt),
        mask: toB64url(record.helper.mask),
        offset: toB64url(record.helper.offset),
      },
    };
    records.set(identity.uri, loaded);
    return loaded;
  };

  const begin = async (ctx: MethodContext, identity: Identity, evidence: unknown): Promise<BeginResult> => {
    const mode = parseEvidence(evidence);
    const now = ctx.clock.now();
    budget.check(ctx, identity.uri, now);
    const loaded = await loadRecord(ctx, identity);
    const record = loaded.record;
    const nonce = randomBytes(NONCE_BYTES);
    const expiresAt = now + ttl;
    const publicKey = record.publicKey.toString('hex');
    const hHash = loaded.helperHash;
    const base = {
      v: 1 as const,
      mode,
      identity: identity.uri,
      nonce: nonce.toString('hex'),
      expiresAt,
      profile: record.profile.name,
      publicKey,
      helperHash: hHash,
    };
    if (mode === 'key') {
      return {
        challenge: {
          mode,
          nonce: toB64url(nonce),
          profile: record.profile.name,
          params: profileParams(record.profile),
          helper: { ...loaded.helperJson },
          expiresAt,
        },
        state: base satisfies PufState,
      };
    }
    let index = -1;
    for (let i = 0; i < record.crps.length; i++) {
      if (!(await ctx.store.wasUsed(NS_CRP, crpKey(publicKey, i)))) {
        index = i;
        break;
      }
    }
    const pair = record.crps[index];
    if (index < 0 || pair === undefined) {
      throw new EdgewardError('ERR_ATT_PUF_CRP_EXHAUSTED', undefined, {
        detail: { identity: identity.uri, total: record.crps.length },
      });
    }
    const state: PufState = { ...base, crpIndex: index, crpExpected: pair.response.toString('hex') };
    return {
      challenge: {
        mode,
        nonce: toB64url(nonce),
        profile: record.profile.name,
        crp: { index, challenge: toB64url(pair.challenge), responseBits: record.profile.crp.responseBits },
        expiresAt,
      },
      state,
    };
  };

  const check = async (
    ctx: MethodContext,
    identity: Identity,
    s: PufState,
    response: unknown,
    csr: CsrKey,
  ): Promise<Verdict> => {
    const profile = PROFILES[s.profile];
    if (!profile) throw new TypeError('puf method: unknown profile in state');
    if (ctx.clock.now() > s.expiresAt) throw new EdgewardError('ERR_ATT_PUF_NONCE_EXPIRED');
    if (await ctx.store.wasUsed(NS_NONCE, s.nonce))
      throw new EdgewardError('ERR_ATT_PUF_REPLAY', 'nonce already used');
    const r = parseResponse(response, s.mode, profile);
    const nonceHex = s.nonce;

    if (r.mode === 'key') {
      const sigKey = createHash('sha256').update(r.signature).digest('hex');
      const expectedHelper = Buffer.from(s.helperHash, 'hex');
      if (!timingSafeEqual(r.helperHash, expectedHelper))
        throw new EdgewardError('ERR_ATT_PUF_HELPER_MISMATCH');
      const expectedKey = Buffer.from(s.publicKey, 'hex');
      if (!timingSafeEqual(r.publicKey, expectedKey)) throw new EdgewardError('ERR_ATT_PUF_KEY_MISMATCH');
      const msg = signedMessage(Buffer.from(nonceHex, 'hex'), csr.spkiSha256, expectedHelper, identity.uri);
      if (!(await verifyAsync(msg, ed25519Key(s.publicKey), r.signature))) {
        // A spent signature cannot verify over a fresh nonce; looking it up only on this path keeps
        // the store read off the success path while still naming the replay.
        if (await ctx.store.wasUsed(NS_SIGNATURE, sigKey))
          throw new EdgewardError('ERR_ATT_PUF_REPLAY', 'signature already used');
        throw withEvidence(new EdgewardError('ERR_ATT_PUF_SIGNATURE'), {
          pufMode: 'key',
          pufSignature: 'failed',
        });
      }
      return {
        method: PUF_METHOD,
        identity: identity.uri,
        facts: { mode: 'key', profile: profile.name, pufKey: s.publicKey },
        evidence: { pufMode: 'key', pufSignature: 'passed' },
        async commit(tx) {
          if (!(await tx.useOnce(NS_NONCE, nonceHex, s.expiresAt)))
            throw new EdgewardError('ERR_ATT_PUF_REPLAY', 'nonce already used');
          if (!(await tx.useOnce(NS_SIGNATURE, sigKey, s.expiresAt)))
            throw new EdgewardError('ERR_ATT_PUF_REPLAY', 'signature already used');
          if ((await tx.findBindingByHardware(PUF_METHOD, s.publicKey)) !== identity.uri) {
            throw new EdgewardError('ERR_ATT_PUF_NOT_PROVISIONED', 'registration changed during enrollment');
          }
        },
      };
    }

    const index = s.crpIndex;
    const expected = s.crpExpected;
    if (index === undefined || expected === undefined)
      throw new TypeError('puf method: crp state incomplete');
    const marker = crpKey(s.publicKey, index);
    if (await ctx.store.wasUsed(NS_CRP, marker)) throw new EdgewardError('ERR_ATT_PUF_CRP_REUSED');
    const result = checkCrp(profile, Buffer.from(expected, 'hex'), r.response);
    const measured = {
      pufMode: 'crp' as const,
      pufDistance: result.distance,
      pufThreshold: profile.crp.threshold,
    };
    if (!result.accepted) {
      throw withEvidence(
        new EdgewardError('ERR_ATT_PUF_CRP_MISMATCH', undefined, {
          detail: { distance: result.distance, threshold: profile.crp.threshold },
        }),
        { ...measured, pufResponse: 'failed' },
      );
    }
    return {
      method: PUF_METHOD,
      identity: identity.uri,
      facts: {
        mode: 'crp',
        profile: profile.name,
        pufKey: s.publicKey,
        crpIndex: index,
        distance: result.distance,
      },
      evidence: { ...measured, pufResponse: 'passed' },
      async commit(tx) {
        if (!(await tx.useOnce(NS_NONCE, nonceHex, s.expiresAt)))
          throw new EdgewardError('ERR_ATT_PUF_REPLAY', 'nonce already used');
        if (!(await tx.useOnce(NS_CRP, marker, NEVER))) throw new EdgewardError('ERR_ATT_PUF_CRP_REUSED');
      },
    };
  };

  const finish = async (
    ctx: MethodContext,
    identity: Identity,
    state: unknown,
    response: unknown,
    csr: CsrKey,
  ): Promise<Verdict> => {
    const s = parseState(state);
    if (s.identity !== identity.uri)
      throw new TypeError('puf method: session state belongs to another identity');
    const now = ctx.clock.now();
    budget.check(ctx, identity.uri, now);
    let verdict: Verdict;
    try {
      verdict = await check(ctx, identity, s, response, csr);
    } catch (err) {
      if (err instanceof EdgewardError) budget.failure(ctx, identity.uri, now);
      throw err;
    }
    const inner = verdict;
    return {
      ...verdict,
      async commit(tx) {
        try {
          await inner.commit?.(tx);
        } catch (err) {
          if (err instanceof EdgewardError) budget.failure(ctx, identity.uri, ctx.clock.now());
          throw err;
        }
        budget.success(ctx, identity.uri);
      },
    };
  };

  return { name: PUF_METHOD, reattestOnRenewal: options.reattestOnRenewal ?? true, begin, finish, limiters };
}
