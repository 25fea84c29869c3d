// The enrollment protocol's wire shapes and the exact bytes a device signs, shared by the prover
// (device) and the method (CA) so the two cannot drift. Specified in docs/enrollment-puf.md.
import { EdgewardError, type ErrorCode } from '../../common/errors.js';
import { decodeB64url } from './bits.js';
import type { HelperData } from './fuzzy-extractor.js';
import { PROFILES, profileParams, type PufProfile } from './profile.js';

export type PufMode = 'key' | 'crp';

export const SIGN_DOMAIN = Buffer.from('edgeward/puf/enroll/v1\0', 'ascii');
export const NONCE_BYTES = 32;
export const SIGNATURE_BYTES = 64;

/**
 * The bytes the device signs with its PUF key in key mode:
 * "edgeward/puf/enroll/v1" 0x00 || nonce (32) || SHA-256(CSR SPKI DER) (32) || helper hash (32)
 * || identity URI (UTF-8, to the end). Every field but the last has a fixed length.
 */
export function signedMessage(
  nonce: Uint8Array,
  spkiSha256: Uint8Array,
  hHash: Uint8Array,
  identity: string,
): Buffer {
  if (nonce.length !== NONCE_BYTES || spkiSha256.length !== 32 || hHash.length !== 32) {
    throw new TypeError('signedMessage: wrong field length');
  }
  return Buffer.concat([SIGN_DOMAIN, nonce, spkiSha256, hHash, Buffer.from(identity, 'utf8')]);
}

function obj(v: unknown, code: ErrorCode, what: string, allowed: readonly string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new EdgewardError(code, `${what} must be an object`);
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null)
    throw new EdgewardError(code, `${what} must be a plain object`);
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k))
      throw new EdgewardError(code, `${what} has an unknown field ${JSON.stringify(k.slice(0, 40))}`);
  }
  return v as Record<string, unknown>;
}

/** Begin evidence: `{}` or `{ mode: 'key' | 'crp' }`. */
export function parseEvidence(evidence: unknown): PufMode {
  if (evidence === undefined || evidence === null) return 'key';
  const o = obj(evidence, 'ERR_ATT_PUF_EVIDENCE_MALFORMED', 'evidence', ['mode']);
  const mode = o['mode'] ?? 'key';
  if (mode !== 'key' && mode !== 'crp')
    throw new EdgewardError('ERR_ATT_PUF_EVIDENCE_MALFORMED', 'mode must be key or crp');
  return mode;
}

export interface KeyChallenge {
  readonly mode: 'key';
  readonly nonce: Buffer;
  readonly profile: PufProfile;
  readonly helper: HelperData;
  readonly expiresAt: number;
}

export interface CrpChallenge {
  readonly mode: 'crp';
  readonly nonce: Buffer;
  readonly profile: PufProfile;
  readonly index: number;
  readonly challenge: Buffer;
  readonly expiresAt: number;
}

const CC = 'ERR_ATT_PUF_CHALLENGE_MALFORMED' as const;

function sameParams(a: unknown, p: PufProfile): boolean {
  return JSON.stringify(a) === JSON.stringify(profileParams(p));
}

/** Device side: the CA's challenge, validated (a hostile or broken CA gets a coded error). */
export function parseChallenge(v: unknown): KeyChallenge | CrpChallenge {
  const o = obj(v, CC, 'challenge', ['mode', 'nonce', 'profile', 'params', 'helper', 'crp', 'expiresAt']);
  const profileName = o['profile'];
  if (typeof profileName !== 'string' || !Object.hasOwn(PROFILES, profileName))
    throw new EdgewardError(CC, 'unknown PUF profile');
  const profile = PROFILES[profileName]!;
  const nonce = decodeB64url(o['nonce'], CC, 'nonce', { exact: NONCE_BYTES });
  const expiresAt = o['expiresAt'];
  if (typeof expiresAt !== 'number' || !Number.isSafeInteger(expiresAt) || expiresAt < 0) {
    throw new EdgewardError(CC, 'expiresAt must be milliseconds since the epoch');
  }
  if (o['mode'] === 'key') {
    if (!sameParams(o['params'], profile)) throw new EdgewardError(CC, 'parameters differ from the profile');
    if (o['crp'] !== undefined) throw new EdgewardError(CC, 'unexpected crp in a key challenge');
    const h = obj(o['helper'], CC, 'helper', ['salt', 'mask', 'offset']);
    const helper: HelperData = {
      salt: decodeB64url(h['salt'], CC, 'helper.salt', { exact: profile.saltBytes }),
      mask: decodeB64url(h['mask'], CC, 'helper.mask', { max: profile.responseBits / 16, min: 1 }),
      offset: decodeB64url(h['offset'], CC, 'helper.offset', { max: 4096, min: 1 }),
    };
    return { mode: 'key', nonce, profile, helper, expiresAt };
  }
  if (o['mode'] === 'crp') {
    if (o['helper'] !== undefined || o['params'] !== undefined)
      throw new EdgewardError(CC, 'unexpected key fields in a crp challenge');
    const c = obj(o['crp'], CC, 'crp', ['index', 'challenge', 'responseBits']);
    const index = c['index'];
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > 65535) {
      throw new EdgewardError(CC, 'crp.index out of range');
    }
    if (c['responseBits'] !== profile.crp.responseBits)
      throw new EdgewardError(CC, 'crp.responseBits differs from the profile');
    const challenge = decodeB64url(c['challenge'], CC, 'crp.challenge', {
      exact: profile.crp.challengeBytes,
    });
    return { mode: 'crp', nonce, profile, index, challenge, expiresAt };
  }
  throw new EdgewardError(CC, 'mode must be key or crp');
}

export interface KeyResponse {
  readonly mode: 'key';
  readonly publicKey: Buffer;
  readonly helperHash: Buffer;
  readonly signature: Buffer;
}

export interface CrpResponse {
  readonly mode: 'crp';
  readonly response: Buffer;
}

const RM = 'ERR_ATT_PUF_RESPONSE_MALFORMED' as const;
const HEX32 = /^[0-9a-f]{64}$/;

/** CA side: the device's finish response for the session's mode. */
export function parseResponse(v: unknown, mode: PufMode, profile: PufProfile): KeyResponse | CrpResponse {
  if (mode === 'key') {
    const o = obj(v, RM, 'response', ['mode', 'publicKey', 'helperHash', 'signature']);
    if (o['mode'] !== 'key') throw new EdgewardError(RM, 'response mode differs from the challenge');
    const pk = o['publicKey'];
    if (typeof pk !== 'string' || !HEX32.test(pk))
      throw new EdgewardError(RM, 'publicKey must be 64 lowercase hex digits');
    return {
      mode,
      publicKey: Buffer.from(pk, 'hex'),
      helperHash: decodeB64url(o['helperHash'], RM, 'helperHash', { exact: 32 }),
      signature: decodeB64url(o['signature'], RM, 'signature', { exact: SIGNATURE_BYTES }),
    };
  }
  const o = obj(v, RM, 'response', ['mode', 'response']);
  if (o['mode'] !== 'crp') throw new EdgewardError(RM, 'response mode differs from the challenge');
  return {
    mode,
    response: decodeB64url(o['response'], RM, 'response', { exact: profile.crp.responseBits / 8 }),
  };
}
