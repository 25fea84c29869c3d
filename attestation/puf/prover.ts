// The device side of the `puf` method (used by `edgeward enroll --attest puf`): reads the PUF,
// reconstructs the key from the CA's helper data and signs the nonce bound to the CSR's key
// (key mode), or answers a challenge-response pair (crp mode). tweetnacl, as a device would.
import nacl from 'tweetnacl';
import type { CsrKey, Prover } from '../method.js';
import { EdgewardError } from '../../common/errors.js';
import { parseIdentity } from '../../common/identity.js';
import { toB64url } from './bits.js';
import { answerCrp } from './crp.js';
import { helperHash, reconstructKey } from './fuzzy-extractor.js';
import { parseChallenge, signedMessage, type PufMode } from './protocol.js';
import { createSimPuf, parsePufSpec, type Puf, type SimPufOptions } from './simulator.js';

export interface PufProverOptions {
  /** `sim:SEED[,ber=..][,bias=..][,drift=..]`, or a hardware PUF behind the Puf interface. */
  readonly puf: string | Puf;
  /** The identity being enrolled; it is part of the signed bytes. */
  readonly id: string;
  readonly mode?: PufMode;
  /** Simulator only: reproducible read noise (tests). */
  readonly noiseSeed?: string;
}

export interface PufProver extends Prover {
  /** Outcome of the last key reconstruction, for diagnostics (whether the outer code decoded). */
  readonly lastReconstruction: { decoded: boolean; corrected: number } | undefined;
}

export function openPuf(spec: string | Puf, noiseSeed?: string): Puf {
  if (typeof spec !== 'string') return spec;
  const opts: SimPufOptions = parsePufSpec(spec);
  return createSimPuf(noiseSeed === undefined ? opts : { ...opts, noiseSeed });
}

export function createPufProver(options: PufProverOptions): PufProver {
  const id = parseIdentity(options.id).uri;
  const mode = options.mode ?? 'key';
  if (mode !== 'key' && mode !== 'crp') throw new TypeError('mode must be key or crp');
  const puf = openPuf(options.puf, options.noiseSeed);
  let last: { decoded: boolean; corrected: number } | undefined;

  return {
    method: 'puf',
    get lastReconstruction() {
      return last;
    },
    evidence() {
      return Promise.resolve({ mode });
    },
    respond(challenge: Record<string, unknown>, csr: CsrKey) {
      try {
        return Promise.resolve(answer(challenge, csr));
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
    },
    close() {
      puf.close?.();
      return Promise.resolve();
    },
  };

  function answer(challenge: Record<string, unknown>, csr: CsrKey): Record<string, unknown> {
    const c = parseChallenge(challenge);
    if (c.mode !== mode)
      throw new EdgewardError('ERR_ATT_PUF_CHALLENGE_MALFORMED', 'challenge mode differs from the evidence');
    if (c.mode === 'crp') {
      return { mode: 'crp', response: toB64url(answerCrp(puf, c.profile, c.challenge)) };
    }
    if (puf.keyBits !== c.profile.responseBits) {
      throw new EdgewardError('ERR_ATT_PUF_CHALLENGE_MALFORMED', 'profile needs a different PUF size');
    }
    const rec = reconstructKey(puf.readKey(), c.helper, c.profile);
    last = { decoded: rec.decoded, corrected: rec.corrected };
    // A failed decode still yields a (wrong) key and a normal answer: behaving differently would
    // tell a helper-data manipulator which of its manipulations crossed the decoding radius.
    const kp = nacl.sign.keyPair.fromSeed(rec.seed);
    rec.seed.fill(0);
    const hHash = helperHash(c.helper, c.profile);
    const signature = nacl.sign.detached(signedMessage(c.nonce, csr.spkiSha256, hHash, id), kp.secretKey);
    kp.secretKey.fill(0);
    return {
      mode: 'key',
      publicKey: Buffer.from(kp.publicKey).toString('hex'),
      helperHash: toB64url(hHash),
      signature: toB64url(signature),
    };
  }
}
