// The `token` attestation method: a one-time, short-lived join token bound to one identity,
// made by `edgeward ca token`. No hardware evidence; meant for services and bootstrap.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AttestationMethod, Prover } from '../method.js';
import { EdgewardError } from '../../common/errors.js';

/** A join token (by hash). Its single use is a used-once marker (namespace 'token') written at issuance. */
export interface TokenRecord {
  readonly hash: string;
  readonly identity: string;
  readonly createdAt: number;
  readonly expiresAt: number;
}

const TOKEN_RE = /^ewt_[A-Za-z0-9_-]{43}$/;

export function newJoinToken(): { token: string; hash: string } {
  const token = `ewt_${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashToken(token) };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function createTokenMethod(
  lookup: (hash: string) => Promise<TokenRecord | undefined>,
): AttestationMethod {
  return {
    name: 'token',
    reattestOnRenewal: false,
    begin(_ctx, _identity, evidence) {
      if (
        evidence !== undefined &&
        (typeof evidence !== 'object' || evidence === null || Object.keys(evidence).length > 0)
      ) {
        throw new EdgewardError('ERR_INPUT_MALFORMED', 'the token method takes no evidence at begin');
      }
      return { challenge: {}, state: null };
    },
    async finish(ctx, identity, _state, response) {
      const token = (response as { token?: unknown } | null)?.token;
      if (typeof token !== 'string' || !TOKEN_RE.test(token))
        throw new EdgewardError('ERR_CA_TOKEN_INVALID', 'malformed token');
      const hash = hashToken(token);
      const rec = await lookup(hash);
      // The lookup is by hash; the compare below is on the looked-up hash, so no timing leaks
      // anything but whether some token has this hash.
      if (!rec || !timingSafeEqual(Buffer.from(rec.hash, 'hex'), Buffer.from(hash, 'hex'))) {
        throw new EdgewardError('ERR_CA_TOKEN_INVALID');
      }
      if (rec.identity !== identity.uri) {
        throw new EdgewardError('ERR_CA_TOKEN_IDENTITY', undefined, { detail: { boundTo: rec.identity } });
      }
      if (rec.expiresAt <= ctx.clock.now()) throw new EdgewardError('ERR_CA_TOKEN_EXPIRED');
      if (await ctx.store.wasUsed('token', hash)) throw new EdgewardError('ERR_CA_TOKEN_USED');
      return {
        method: 'token',
        identity: identity.uri,
        facts: { token: hash.slice(0, 16) },
        async commit(tx) {
          if (!(await tx.useOnce('token', hash, rec.expiresAt))) throw new EdgewardError('ERR_CA_TOKEN_USED');
        },
      };
    },
  };
}

export function createTokenProver(token: string): Prover {
  return {
    method: 'token',
    evidence: () => Promise.resolve({}),
    respond: () => Promise.resolve({ token }),
  };
}
