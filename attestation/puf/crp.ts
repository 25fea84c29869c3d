// Challenge-response mode: pairs taken at manufacture (reference response = per-bit majority of
// several reads), each accepted once, under a Hamming-distance threshold set by the profile.
import { randomBytes } from 'node:crypto';
import { hamming } from './bits.js';
import { majority } from './fuzzy-extractor.js';
import type { PufProfile } from './profile.js';
import type { CrpPair } from './record.js';
import type { Puf } from './simulator.js';

/** Manufacture: `count` fresh random challenges and their reference responses. */
export function takeCrps(
  puf: Puf,
  profile: PufProfile,
  count: number,
  rand: (n: number) => Uint8Array = randomBytes,
): CrpPair[] {
  if (!Number.isInteger(count) || count < 0 || count > 1024) throw new TypeError('CRP count must be 0..1024');
  const out: CrpPair[] = [];
  const bits = profile.crp.responseBits;
  const seen = new Set<string>();
  while (out.length < count) {
    const challenge = Buffer.from(rand(profile.crp.challengeBytes));
    if (seen.has(challenge.toString('hex'))) continue;
    seen.add(challenge.toString('hex'));
    const reads: Uint8Array[] = [];
    for (let i = 0; i < profile.enrollReads; i++) reads.push(puf.respond(challenge, bits));
    out.push({ challenge, response: Buffer.from(majority(reads, bits)) });
  }
  return out;
}

/** Device side in the field: one noisy response. */
export function answerCrp(puf: Puf, profile: PufProfile, challenge: Uint8Array): Buffer {
  return Buffer.from(puf.respond(challenge, profile.crp.responseBits));
}

export interface CrpCheck {
  readonly distance: number;
  readonly accepted: boolean;
}

/** CA side: Hamming distance to the reference, accepted at or under the threshold. */
export function checkCrp(profile: PufProfile, expected: Uint8Array, response: Uint8Array): CrpCheck {
  const distance = hamming(expected, response);
  return { distance, accepted: distance <= profile.crp.threshold };
}
