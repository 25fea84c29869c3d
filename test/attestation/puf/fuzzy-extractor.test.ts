import { describe, expect, it } from 'vitest';
import { hamming } from '../../../attestation/puf/bits.js';
import {
  enrollKey,
  helperHash,
  majority,
  reconstructKey,
  type HelperData,
} from '../../../attestation/puf/fuzzy-extractor.js';
import { PROFILE_V1, codeBits } from '../../../attestation/puf/profile.js';
import { createSimPuf, type SimPuf } from '../../../attestation/puf/simulator.js';

const P = PROFILE_V1;

function enroll(puf: SimPuf): ReturnType<typeof enrollKey> {
  const reads = Array.from({ length: P.enrollReads }, () => puf.readKey());
  return enrollKey(majority(reads, P.responseBits), P);
}

describe('fuzzy extractor (von Neumann + repetition-7 in BCH(255,71,29) x 2 + HMAC-SHA-256)', () => {
  const puf = createSimPuf({ seed: 'fe-device', ber: 0.15, noiseSeed: 'fe' });
  const enrolled = enroll(puf);

  it('reconstructs the same 32-byte seed from fresh reads at 15 % bit errors', () => {
    expect(enrolled.seed.length).toBe(32);
    for (let i = 0; i < 5; i++) {
      const read = puf.readKey();
      expect(hamming(read, puf.nominal) / P.responseBits).toBeGreaterThan(0.1);
      const rec = reconstructKey(read, enrolled.helper, P);
      expect(rec.decoded).toBe(true);
      expect(rec.corrected).toBeGreaterThan(0);
      expect(rec.seed).toEqual(enrolled.seed);
    }
  });

  it('still reconstructs under drift (hotter device, more noise)', () => {
    const hot = createSimPuf({ seed: 'fe-device', ber: 0.15, drift: 0.3, noiseSeed: 'hot' });
    expect(reconstructKey(hot.readKey(), enrolled.helper, P).seed).toEqual(enrolled.seed);
  });

  it("another device's PUF gives another seed, and the decoder notices", () => {
    const other = createSimPuf({ seed: 'fe-other', ber: 0.15, noiseSeed: 'fe' });
    const rec = reconstructKey(other.readKey(), enrolled.helper, P);
    expect(rec.seed).not.toEqual(enrolled.seed);
    expect(rec.decoded).toBe(false);
  });

  it('tampered helper data yields a useless key even when the decoder corrects the change', () => {
    const read = puf.readKey();
    const variants: HelperData[] = [];
    const off = Buffer.from(enrolled.helper.offset);
    off[0]! ^= 1; // one code bit: well inside the correction radius
    variants.push({ ...enrolled.helper, offset: off });
    const salt = Buffer.from(enrolled.helper.salt);
    salt[5]! ^= 0x80;
    variants.push({ ...enrolled.helper, salt });
    for (const h of variants) {
      const rec = reconstructKey(read, h, P);
      expect(rec.seed).not.toEqual(enrolled.seed);
      expect(helperHash(h, P)).not.toEqual(helperHash(enrolled.helper, P));
    }
    // The single flipped offset bit is corrected by the code: only the hash binding changes the key.
    expect(reconstructKey(read, variants[0]!, P).decoded).toBe(true);
  });

  it('helper data has the documented shape', () => {
    expect(enrolled.helper.salt.length).toBe(32);
    expect(enrolled.helper.offset.length).toBe(Math.ceil(codeBits(P) / 8));
    expect(enrolled.helper.mask.length).toBeLessThanOrEqual(P.responseBits / 16);
  });

  it('refuses a response too biased to debias into enough bits (ERR_ATT_PUF_ENTROPY)', () => {
    const skewed = createSimPuf({ seed: 'skewed', bias: 0.05, ber: 0.05, noiseSeed: 'x' });
    expect(() => enroll(skewed)).toThrow(expect.objectContaining({ code: 'ERR_ATT_PUF_ENTROPY' }));
  });

  it('debiasing makes a biased PUF usable: 70 % ones still enrolls and reconstructs', () => {
    const biased = createSimPuf({ seed: 'biased', bias: 0.7, ber: 0.1, noiseSeed: 'x' });
    const e = enroll(biased);
    expect(reconstructKey(biased.readKey(), e.helper, P).seed).toEqual(e.seed);
  });
});
