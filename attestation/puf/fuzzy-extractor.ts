// The fuzzy extractor (pure core shared by provisioning, the prover and the evaluation):
// von Neumann debiasing of cell pairs, a code-offset secure sketch over repetition-in-BCH, and
// HMAC-SHA-256 keyed by a salt as the strong extractor. The helper data's hash is an input of the
// extractor, so any change to the helper data yields an unrelated key.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { EdgewardError, type ErrorCode } from '../../common/errors.js';
import { bchCode } from './bch.js';
import { getBit, packBits, popcount8 } from './bits.js';
import { codeBits, messageBits, type PufProfile } from './profile.js';

export interface HelperData {
  readonly salt: Uint8Array;
  /** Bit j set: cell pair j (cells 2j, 2j+1) was kept by the debiaser. Last byte non-zero. */
  readonly mask: Uint8Array;
  /** Debiased reference XOR codeword, codeBits(profile) bits packed LSB-first. */
  readonly offset: Uint8Array;
}

export interface Enrollment {
  readonly helper: HelperData;
  readonly seed: Buffer;
}

export interface Reconstruction {
  readonly seed: Buffer;
  /** Whether every BCH block decoded (false: the seed is certainly wrong). */
  readonly decoded: boolean;
  /** Errors corrected by the outer code, summed over blocks. */
  readonly corrected: number;
}

const HELPER_DOMAIN = Buffer.from('edgeward/puf/helper/v1\0', 'ascii');
const KEY_DOMAIN = Buffer.from('edgeward/puf/key/v1\0', 'ascii');

/** SHA-256 over a canonical encoding of the helper data (see docs/enrollment-puf.md). */
export function helperHash(helper: HelperData, profile: PufProfile): Buffer {
  const len = Buffer.alloc(4);
  const h = createHash('sha256').update(HELPER_DOMAIN).update(profile.name, 'ascii').update(Buffer.of(0));
  h.update(helper.salt);
  len.writeUInt32BE(helper.mask.length);
  h.update(len).update(helper.mask);
  len.writeUInt32BE(helper.offset.length);
  h.update(len).update(helper.offset);
  return h.digest();
}

/** Structural checks on helper data from outside (record, challenge); `code` names the source. */
export function checkHelper(helper: HelperData, profile: PufProfile, code: ErrorCode): void {
  const n = codeBits(profile);
  if (helper.salt.length !== profile.saltBytes)
    throw new EdgewardError(code, 'helper salt has the wrong length');
  if (helper.offset.length !== (n + 7) >>> 3)
    throw new EdgewardError(code, 'helper offset has the wrong length');
  if (n % 8 !== 0 && helper.offset[helper.offset.length - 1]! >>> (n % 8) !== 0) {
    throw new EdgewardError(code, 'helper offset has non-zero padding');
  }
  const pairs = profile.responseBits / 2;
  if (helper.mask.length === 0 || helper.mask.length > Math.ceil(pairs / 8)) {
    throw new EdgewardError(code, 'helper mask has the wrong length');
  }
  if (helper.mask[helper.mask.length - 1] === 0)
    throw new EdgewardError(code, 'helper mask is not canonical');
  if (popcount8(helper.mask) !== n)
    throw new EdgewardError(code, 'helper mask selects the wrong number of pairs');
}

function kdf(salt: Uint8Array, hHash: Buffer, x: Uint8Array): Buffer {
  return createHmac('sha256', salt).update(KEY_DOMAIN).update(hHash).update(packBits(x)).digest();
}

/** Per-bit majority of several packed reads: the reference response at manufacture. */
export function majority(reads: readonly Uint8Array[], nBits: number): Uint8Array {
  const out = new Uint8Array((nBits + 7) >>> 3);
  const half = reads.length / 2;
  for (let i = 0; i < nBits; i++) {
    let ones = 0;
    for (const r of reads) ones += getBit(r, i);
    if (ones > half) out[i >>> 3]! |= 1 << (i & 7);
  }
  return out;
}

/** Enrollment: reference response in, helper data and the 32-byte Ed25519 seed out. */
export function enrollKey(
  reference: Uint8Array,
  profile: PufProfile,
  rand: (n: number) => Uint8Array = randomBytes,
): Enrollment {
  if (reference.length !== profile.responseBits / 8) throw new TypeError('reference has the wrong length');
  const n = codeBits(profile);
  const pairs = profile.responseBits / 2;
  const mask = new Uint8Array(Math.ceil(pairs / 8));
  const x = new Uint8Array(n);
  let kept = 0;
  let last = -1;
  for (let j = 0; j < pairs && kept < n; j++) {
    const a = getBit(reference, 2 * j);
    if (a !== getBit(reference, 2 * j + 1)) {
      mask[j >>> 3]! |= 1 << (j & 7);
      x[kept++] = a;
      last = j;
    }
  }
  if (kept < n) {
    throw new EdgewardError('ERR_ATT_PUF_ENTROPY', `debiasing kept ${kept} of the ${n} bits the code needs`);
  }
  const code = bchCode(profile.bch.k, profile.bch.t);
  const msg = rand((messageBits(profile) + 7) >>> 3);
  const offset = new Uint8Array((n + 7) >>> 3);
  const m = profile.repetition;
  for (let b = 0; b < profile.blocks; b++) {
    const message = new Uint8Array(code.k);
    for (let i = 0; i < code.k; i++) message[i] = getBit(msg, b * code.k + i);
    const word = code.encode(message);
    for (let c = 0; c < code.n; c++) {
      for (let r = 0; r < m; r++) {
        const i = (b * code.n + c) * m + r;
        if (x[i]! ^ word[c]!) offset[i >>> 3]! |= 1 << (i & 7);
      }
    }
  }
  const helper: HelperData = { salt: rand(profile.saltBytes), mask: mask.slice(0, (last >>> 3) + 1), offset };
  return { helper, seed: kdf(helper.salt, helperHash(helper, profile), x) };
}

/** Field reconstruction from one noisy read. Never throws on noise: a failed decode yields a wrong seed. */
export function reconstructKey(read: Uint8Array, helper: HelperData, profile: PufProfile): Reconstruction {
  if (read.length !== profile.responseBits / 8) throw new TypeError('read has the wrong length');
  checkHelper(helper, profile, 'ERR_ATT_PUF_CHALLENGE_MALFORMED');
  const n = codeBits(profile);
  const m = profile.repetition;
  // y = debiased read XOR offset = codeword (repeated) XOR errors.
  const y = new Uint8Array(n);
  let i = 0;
  const mask = helper.mask;
  for (let j = 0; j < mask.length * 8 && i < n; j++) {
    if ((mask[j >>> 3]! >>> (j & 7)) & 1) {
      y[i] = getBit(read, 2 * j) ^ getBit(helper.offset, i);
      i++;
    }
  }
  const code = bchCode(profile.bch.k, profile.bch.t);
  const word = new Uint8Array(code.n);
  const x = new Uint8Array(n);
  let decoded = true;
  let corrected = 0;
  for (let b = 0; b < profile.blocks; b++) {
    for (let c = 0; c < code.n; c++) {
      let ones = 0;
      const base = (b * code.n + c) * m;
      for (let r = 0; r < m; r++) ones += y[base + r]!;
      word[c] = ones * 2 > m ? 1 : 0;
    }
    const fixed = code.decode(word);
    if (fixed < 0) decoded = false;
    else corrected += fixed;
    for (let c = 0; c < code.n; c++) {
      const base = (b * code.n + c) * m;
      for (let r = 0; r < m; r++) x[base + r] = word[c]! ^ getBit(helper.offset, base + r);
    }
  }
  return { seed: kdf(helper.salt, helperHash(helper, profile), x), decoded, corrected };
}
