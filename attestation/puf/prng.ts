// A small fast seeded generator (sfc32) for the simulator's pattern and noise, and for the
// evaluation. Never used for secrets: those come from crypto.randomBytes.
import { createHash } from 'node:crypto';

export interface Prng {
  /** Uniform 32-bit unsigned integer. */
  u32(): number;
  /** Uniform in [0, 1). */
  float(): number;
  /** Standard normal (Box-Muller). */
  normal(): number;
}

export function prngFromBytes(seed: Uint8Array): Prng {
  const h = createHash('sha256').update(seed).digest();
  let a = h.readUInt32LE(0) | 0;
  let b = h.readUInt32LE(4) | 0;
  let c = h.readUInt32LE(8) | 0;
  let d = h.readUInt32LE(12) | 0 || 1;
  const u32 = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  // Warm up so that related seeds diverge.
  for (let i = 0; i < 16; i++) u32();
  let spare: number | undefined;
  return {
    u32,
    float: () => u32() / 4294967296,
    normal: () => {
      if (spare !== undefined) {
        const s = spare;
        spare = undefined;
        return s;
      }
      let u = 0;
      while (u === 0) u = u32() / 4294967296;
      const v = u32() / 4294967296;
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
  };
}

export function prngFromString(label: string, value: string): Prng {
  return prngFromBytes(Buffer.from(`${label}\0${value}`, 'utf8'));
}
