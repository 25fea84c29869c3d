// The registration record made at manufacture and stored by the CA: format, strict parsing (it
// crosses a file, an admin command and the store, so it is hostile input) and serialisation.
import { EdgewardError } from '../../common/errors.js';
import { parseIdentity } from '../../common/identity.js';
import { decodeB64url, toB64url } from './bits.js';
import { checkHelper, type HelperData } from './fuzzy-extractor.js';
import { PROFILES, profileParams, type PufProfile } from './profile.js';

export const RECORD_FORMAT = 'edgeward-puf-record';
export const RECORD_VERSION = 1;
export const MAX_RECORD_BYTES = 256 * 1024;
export const MAX_CRPS = 1024;

export interface CrpPair {
  readonly challenge: Buffer;
  /** Reference response, profile.crp.responseBits bits packed LSB-first. Secret at rest. */
  readonly response: Buffer;
}

export interface PufRecord {
  readonly id: string;
  readonly profile: PufProfile;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Buffer;
  readonly helper: HelperData;
  readonly crps: readonly CrpPair[];
  readonly createdAt: string;
}

/** JSON form, as written by `edgeward puf provision` and kept by the CA. */
export interface PufRecordJson {
  format: typeof RECORD_FORMAT;
  version: typeof RECORD_VERSION;
  id: string;
  profile: string;
  params: Record<string, unknown>;
  publicKey: string;
  helper: { salt: string; mask: string; offset: string };
  crp?: {
    challengeBytes: number;
    responseBits: number;
    threshold: number;
    pairs: { challenge: string; response: string }[];
  };
  createdAt: string;
}

const E = 'ERR_ATT_PUF_RECORD_MALFORMED' as const;

function fail(msg: string): never {
  throw new EdgewardError(E, msg);
}

function plainObject(
  v: unknown,
  what: string,
  allowed: readonly string[],
  required: readonly string[],
): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${what} must be an object`);
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null) fail(`${what} must be a plain object`);
  const keys = Object.keys(v);
  for (const k of keys)
    if (!allowed.includes(k)) fail(`${what} has an unknown field ${JSON.stringify(k.slice(0, 40))}`);
  for (const k of required) if (!Object.hasOwn(v, k)) fail(`${what} lacks ${k}`);
  return v as Record<string, unknown>;
}

function sameJson(a: unknown, b: unknown): boolean {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return a === b;
  if (Array.isArray(a) || Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every(
    (k) =>
      Object.hasOwn(b, k) && sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
  );
}

const HEX32 = /^[0-9a-f]{64}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

/** Parses record text (a file, a request body): size first, then JSON, then the structure. */
export function parsePufRecordText(text: string | Uint8Array): PufRecord {
  const size = typeof text === 'string' ? Buffer.byteLength(text, 'utf8') : text.length;
  if (size > MAX_RECORD_BYTES) {
    throw new EdgewardError(
      'ERR_ATT_PUF_RECORD_TOO_LARGE',
      `record is ${size} bytes; at most ${MAX_RECORD_BYTES}`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(typeof text === 'string' ? text : Buffer.from(text).toString('utf8'));
  } catch (cause) {
    throw new EdgewardError(E, 'record is not JSON', { cause });
  }
  return parsePufRecord(value);
}

/** Validates a record already parsed from JSON (e.g. read back from the CA store). */
export function parsePufRecord(value: unknown): PufRecord {
  const o = plainObject(
    value,
    'record',
    ['format', 'version', 'id', 'profile', 'params', 'publicKey', 'helper', 'crp', 'createdAt'],
    ['format', 'version', 'id', 'profile', 'params', 'publicKey', 'helper', 'createdAt'],
  );
  if (o['format'] !== RECORD_FORMAT) fail('not an edgeward PUF record');
  if (o['version'] !== RECORD_VERSION) fail('unsupported record version');
  let id: string;
  try {
    id = parseIdentity(o['id']).uri;
  } catch (cause) {
    throw new EdgewardError(E, 'record identity is invalid', { cause });
  }
  const profileName = o['profile'];
  if (typeof profileName !== 'string' || !Object.hasOwn(PROFILES, profileName)) fail('unknown PUF profile');
  const profile = PROFILES[profileName]!;
  if (!sameJson(o['params'], profileParams(profile))) fail('record parameters differ from its profile');
  const pk = o['publicKey'];
  if (typeof pk !== 'string' || !HEX32.test(pk)) fail('publicKey must be 64 lowercase hex digits');
  const h = plainObject(o['helper'], 'helper', ['salt', 'mask', 'offset'], ['salt', 'mask', 'offset']);
  const helper: HelperData = {
    salt: decodeB64url(h['salt'], E, 'helper.salt', { exact: profile.saltBytes }),
    mask: decodeB64url(h['mask'], E, 'helper.mask', { max: profile.responseBits / 16, min: 1 }),
    offset: decodeB64url(h['offset'], E, 'helper.offset', { max: 4096, min: 1 }),
  };
  checkHelper(helper, profile, E);

  const crps: CrpPair[] = [];
  if (o['crp'] !== undefined) {
    const c = plainObject(
      o['crp'],
      'crp',
      ['challengeBytes', 'responseBits', 'threshold', 'pairs'],
      ['challengeBytes', 'responseBits', 'threshold', 'pairs'],
    );
    if (
      c['challengeBytes'] !== profile.crp.challengeBytes ||
      c['responseBits'] !== profile.crp.responseBits ||
      c['threshold'] !== profile.crp.threshold
    ) {
      fail('CRP parameters differ from the profile');
    }
    const pairs = c['pairs'];
    if (!Array.isArray(pairs) || pairs.length > MAX_CRPS)
      fail(`crp.pairs must be an array of at most ${MAX_CRPS}`);
    const seen = new Set<string>();
    for (const p of pairs as unknown[]) {
      const q = plainObject(p, 'crp pair', ['challenge', 'response'], ['challenge', 'response']);
      const challenge = decodeB64url(q['challenge'], E, 'crp challenge', {
        exact: profile.crp.challengeBytes,
      });
      const response = decodeB64url(q['response'], E, 'crp response', {
        exact: profile.crp.responseBits / 8,
      });
      const key = challenge.toString('hex');
      if (seen.has(key)) fail('duplicate CRP challenge');
      seen.add(key);
      crps.push({ challenge, response });
    }
  }
  const createdAt = o['createdAt'];
  if (typeof createdAt !== 'string' || !ISO.test(createdAt) || Number.isNaN(Date.parse(createdAt))) {
    fail('createdAt must be an ISO-8601 UTC time');
  }
  return { id, profile, publicKey: Buffer.from(pk, 'hex'), helper, crps, createdAt };
}

export function pufRecordToJson(r: PufRecord): PufRecordJson {
  const out: PufRecordJson = {
    format: RECORD_FORMAT,
    version: RECORD_VERSION,
    id: r.id,
    profile: r.profile.name,
    params: profileParams(r.profile),
    publicKey: r.publicKey.toString('hex'),
    helper: {
      salt: toB64url(r.helper.salt),
      mask: toB64url(r.helper.mask),
      offset: toB64url(r.helper.offset),
    },
    createdAt: r.createdAt,
  };
  if (r.crps.length > 0) {
    out.crp = {
      challengeBytes: r.profile.crp.challengeBytes,
      responseBits: r.profile.crp.responseBits,
      threshold: r.profile.crp.threshold,
      pairs: r.crps.map((p) => ({ challenge: toB64url(p.challenge), response: toB64url(p.response) })),
    };
  }
  return out;
}
