import { describe, expect, it } from 'vitest';
import { bchCode } from '../../../attestation/puf/bch.js';
import { prngFromString } from '../../../attestation/puf/prng.js';

const rng = prngFromString('test/bch', '1');
const randomBits = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => rng.u32() & 1);

function flip(word: Uint8Array, count: number): void {
  const pos = new Set<number>();
  while (pos.size < count) pos.add(rng.u32() % word.length);
  for (const p of pos) word[p]! ^= 1;
}

describe('BCH(255, k, t)', () => {
  it('builds the generator of the right degree and refuses codes that do not exist', () => {
    expect(bchCode(71, 29).n).toBe(255);
    expect(() => bchCode(72, 29)).toThrow(TypeError);
  });

  it('corrects every pattern of up to t errors (BCH(255,71,29))', () => {
    const code = bchCode(71, 29);
    for (let e = 0; e <= 29; e++) {
      for (let trial = 0; trial < 4; trial++) {
        const word = code.encode(randomBits(71));
        const sent = word.slice();
        flip(word, e);
        expect(code.decode(word)).toBe(e);
        expect(word).toEqual(sent);
      }
    }
  });

  it('never returns the sent word beyond t errors: the failure the bound counts', () => {
    const code = bchCode(71, 29);
    for (let e = 30; e <= 45; e++) {
      const word = code.encode(randomBits(71));
      const sent = word.slice();
      flip(word, e);
      const r = code.decode(word);
      expect(r === -1 || !word.every((v, i) => v === sent[i])).toBe(true);
    }
  });

  it('is systematic: the message sits in the top k positions', () => {
    const code = bchCode(131, 18);
    const msg = randomBits(131);
    expect(code.encode(msg).subarray(255 - 131)).toEqual(msg);
  });
});
