import { describe, expect, it } from 'vitest';
import { hamming } from '../../../attestation/puf/bits.js';
import { createSimPuf, parsePufSpec } from '../../../attestation/puf/simulator.js';

describe('PUF simulator', () => {
  it('gives the same cells for the same seed and unrelated cells for another seed', () => {
    const a = createSimPuf({ seed: 'dev-a', noiseSeed: 'n1' });
    const a2 = createSimPuf({ seed: 'dev-a', ber: 0.15, noiseSeed: 'n2' });
    const b = createSimPuf({ seed: 'dev-b', noiseSeed: 'n1' });
    expect(a.nominal).toEqual(a2.nominal);
    const inter = hamming(a.nominal, b.nominal) / a.keyBits;
    expect(inter).toBeGreaterThan(0.48);
    expect(inter).toBeLessThan(0.52);
  });

  it('flips cells at the configured mean rate, mostly the unstable ones', () => {
    for (const ber of [0.05, 0.15]) {
      const puf = createSimPuf({ seed: 'rate', ber, noiseSeed: 'x' });
      let sum = 0;
      for (let i = 0; i < 4; i++) sum += hamming(puf.readKey(), puf.nominal) / puf.keyBits;
      expect(sum / 4).toBeGreaterThan(ber - 0.01);
      expect(sum / 4).toBeLessThan(ber + 0.01);
      const p = [...puf.flipProbability];
      // Skewed reliability: most cells flip less often than the mean, a few are near coin flips.
      expect(p.filter((x) => x < ber).length / p.length).toBeGreaterThan(0.55);
      expect(p.filter((x) => x > 0.4).length / p.length).toBeGreaterThan(0.005);
    }
  });

  it('honours the bias and lets drift raise the error rate', () => {
    const biased = createSimPuf({ seed: 'bias', bias: 0.7, noiseSeed: 'x' });
    let ones = 0;
    for (const byte of biased.nominal) for (let i = 0; i < 8; i++) ones += (byte >> i) & 1;
    expect(ones / biased.keyBits).toBeGreaterThan(0.68);
    expect(ones / biased.keyBits).toBeLessThan(0.72);
    const calm = createSimPuf({ seed: 'drift', ber: 0.1, noiseSeed: 'x' });
    const hot = createSimPuf({ seed: 'drift', ber: 0.1, drift: 0.5, noiseSeed: 'x' });
    expect(hot.nominal).toEqual(calm.nominal);
    expect(hamming(hot.readKey(), hot.nominal)).toBeGreaterThan(hamming(calm.readKey(), calm.nominal) * 1.2);
  });

  it('parses sim specs and refuses anything else with ERR_ATT_PUF_SPEC_INVALID', () => {
    expect(parsePufSpec('sim:abc')).toEqual({ seed: 'abc' });
    expect(parsePufSpec('sim:abc,ber=0.15,drift=0.2')).toEqual({ seed: 'abc', ber: 0.15, drift: 0.2 });
    for (const bad of [
      '',
      'abc',
      'tpm:x',
      'sim:',
      'sim:a b',
      'sim:a,ber=0.9',
      'sim:a,ber=0.1,ber=0.1',
      'sim:a,foo=1',
      `sim:${'a'.repeat(300)}`,
      42,
    ]) {
      expect(() => parsePufSpec(bad)).toThrow(expect.objectContaining({ code: 'ERR_ATT_PUF_SPEC_INVALID' }));
    }
  });

  it('answers a challenge with the same cells each time (noisy) and other cells for another challenge', () => {
    const puf = createSimPuf({ seed: 'crp', ber: 0.05, noiseSeed: 'x' });
    const c1 = Buffer.alloc(16, 1);
    const c2 = Buffer.alloc(16, 2);
    const r1 = puf.respond(c1, 512);
    expect(hamming(r1, puf.respond(c1, 512))).toBeLessThan(512 * 0.2);
    expect(hamming(r1, puf.respond(c2, 512))).toBeGreaterThan(512 * 0.35);
  });
});
