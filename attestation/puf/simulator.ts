// The PUF a device reads, and a simulator of one for tests and the demo. The simulator follows the
// usual SRAM start-up model: each cell has a fixed mismatch m ~ N(0,1) set by the seed; a read
// adds noise N(0, sigma^2); the cell reads 1 when m + lambda + noise > 0. lambda sets the bias,
// sigma the bit error rate, so most cells are stable and a few (|m| small) are not. Drift
// (temperature, ageing) widens the noise and raises the error rate.
import { createHash, randomBytes } from 'node:crypto';
import { EdgewardError } from '../../common/errors.js';
import { prngFromBytes, prngFromString, type Prng } from './prng.js';

/** What edgeward needs of a PUF; real hardware plugs in behind the same interface. */
export interface Puf {
  /** Cells in the key region. */
  readonly keyBits: number;
  /** One noisy read of the whole key region, packed LSB-first. */
  readKey(): Uint8Array;
  /** One noisy response to a challenge-response challenge, `bits` long, packed LSB-first. */
  respond(challenge: Uint8Array, bits: number): Uint8Array;
  close?(): void;
}

export interface SimPufOptions {
  /** The device: same seed, same cells. */
  readonly seed: string;
  /** Mean per-cell flip probability against the cell's nominal value, at drift 0. */
  readonly ber?: number;
  /** Probability that a cell's nominal value is 1. */
  readonly bias?: number;
  /** Relative widening of the noise (0 = nominal conditions; 0.5 = 50 % more noise). */
  readonly drift?: number;
  /** Seed for the read noise (reproducible tests); random when absent. */
  readonly noiseSeed?: string;
  readonly keyBits?: number;
  readonly crpBits?: number;
}

export interface SimPuf extends Puf {
  readonly options: Required<Omit<SimPufOptions, 'noiseSeed'>>;
  /** Per-cell flip probability of the key region (for the evaluation; hardware has no such thing). */
  readonly flipProbability: Float64Array;
  /** Nominal (noise-free) key-region values, packed (for the evaluation only). */
  readonly nominal: Uint8Array;
}

export const SIM_DEFAULTS = { ber: 0.1, bias: 0.5, drift: 0, keyBits: 32768, crpBits: 65536 } as const;
const SEED_RE = /^[A-Za-z0-9._-]{1,128}$/;

/** Parses `sim:SEED[,ber=0.10][,bias=0.5][,drift=0.2]`, the --puf argument. */
export function parsePufSpec(spec: unknown): SimPufOptions {
  if (typeof spec !== 'string' || spec.length > 256 || !spec.startsWith('sim:')) {
    throw new EdgewardError('ERR_ATT_PUF_SPEC_INVALID', 'PUF must be sim:SEED[,ber=X][,bias=X][,drift=X]');
  }
  const [seed = '', ...opts] = spec.slice(4).split(',');
  if (!SEED_RE.test(seed))
    throw new EdgewardError('ERR_ATT_PUF_SPEC_INVALID', 'PUF seed must be 1-128 of [A-Za-z0-9._-]');
  const out: { seed: string; ber?: number; bias?: number; drift?: number } = { seed };
  for (const o of opts) {
    const m = /^(ber|bias|drift)=(\d{1,3}(?:\.\d{1,6})?)$/.exec(o);
    if (!m) throw new EdgewardError('ERR_ATT_PUF_SPEC_INVALID', `bad PUF option ${JSON.stringify(o)}`);
    const key = m[1] as 'ber' | 'bias' | 'drift';
    if (out[key] !== undefined)
      throw new EdgewardError('ERR_ATT_PUF_SPEC_INVALID', `PUF option ${key} repeated`);
    out[key] = Number(m[2]);
  }
  checkSimOptions(out);
  return out;
}

function checkSimOptions(o: SimPufOptions): void {
  const bad = (what: string): never => {
    throw new EdgewardError('ERR_ATT_PUF_SPEC_INVALID', what);
  };
  if (!SEED_RE.test(o.seed)) bad('PUF seed must be 1-128 of [A-Za-z0-9._-]');
  if (o.ber !== undefined && !(o.ber > 0 && o.ber <= 0.4)) bad('ber must be in (0, 0.4]');
  if (o.bias !== undefined && !(o.bias >= 0.05 && o.bias <= 0.95)) bad('bias must be in [0.05, 0.95]');
  if (o.drift !== undefined && !(o.drift >= 0 && o.drift <= 4)) bad('drift must be in [0, 4]');
}

// Standard normal CDF via erfc (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7).
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

function bisect(f: (x: number) => number, lo: number, hi: number): number {
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (f(mid) < 0) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Mean flip probability E[Phi(-|M + lambda| / sigma)], M ~ N(0,1), by Simpson's rule. */
export function meanFlip(lambda: number, sigma: number): number {
  const steps = 2000;
  const a = -9;
  const h = 18 / steps;
  let s = 0;
  for (let i = 0; i <= steps; i++) {
    const m = a + i * h;
    const w = i === 0 || i === steps ? 1 : i % 2 ? 4 : 2;
    s += w * Math.exp((-m * m) / 2) * normalCdf(-Math.abs(m + lambda) / sigma);
  }
  return (s * h) / 3 / Math.sqrt(2 * Math.PI);
}

/** Noise width giving the requested mean flip probability at this bias. */
const sigmaCache = new Map<string, { lambda: number; sigma: number }>();

export function sigmaFor(ber: number, bias: number): { lambda: number; sigma: number } {
  const key = `${ber}/${bias}`;
  const hit = sigmaCache.get(key);
  if (hit) return hit;
  const lambda = bisect((x) => normalCdf(x) - bias, -10, 10);
  const sigma = bisect((s) => meanFlip(lambda, s) - ber, 1e-6, 1e3);
  const out = { lambda, sigma };
  if (sigmaCache.size < 64) sigmaCache.set(key, out);
  return out;
}

class Region {
  readonly p: Float64Array;
  readonly thr: Uint32Array;
  readonly nominal: Uint8Array;
  constructor(
    readonly bits: number,
    pattern: Prng,
    lambda: number,
    sigma: number,
  ) {
    this.p = new Float64Array(bits);
    this.thr = new Uint32Array(bits);
    this.nominal = new Uint8Array((bits + 7) >>> 3);
    for (let i = 0; i < bits; i++) {
      const m = pattern.normal() + lambda;
      if (m > 0) this.nominal[i >>> 3]! |= 1 << (i & 7);
      const p = normalCdf(-Math.abs(m) / sigma);
      this.p[i] = p;
      this.thr[i] = Math.min(4294967295, Math.floor(p * 4294967296));
    }
  }
  bit(i: number, noise: Prng): number {
    const v = (this.nominal[i >>> 3]! >>> (i & 7)) & 1;
    return noise.u32() < this.thr[i]! ? v ^ 1 : v;
  }
}

export function createSimPuf(opts: SimPufOptions): SimPuf {
  checkSimOptions(opts);
  const options = {
    seed: opts.seed,
    ber: opts.ber ?? SIM_DEFAULTS.ber,
    bias: opts.bias ?? SIM_DEFAULTS.bias,
    drift: opts.drift ?? SIM_DEFAULTS.drift,
    keyBits: opts.keyBits ?? SIM_DEFAULTS.keyBits,
    crpBits: opts.crpBits ?? SIM_DEFAULTS.crpBits,
  };
  if (!Number.isInteger(options.keyBits) || options.keyBits < 8 || options.keyBits > 1 << 20) {
    throw new TypeError('keyBits out of range');
  }
  if (!Number.isInteger(options.crpBits) || options.crpBits < 8 || options.crpBits > 1 << 22) {
    throw new TypeError('crpBits out of range');
  }
  const { lambda, sigma } = sigmaFor(options.ber, options.bias);
  const s = sigma * (1 + options.drift);
  // The cells depend on the seed and the bias only: a device keeps its cells when the
  // environment (ber, drift) changes.
  const key = new Region(options.keyBits, prngFromString('edgeward/puf/sim/key/v1', options.seed), lambda, s);
  const crp = new Region(options.crpBits, prngFromString('edgeward/puf/sim/crp/v1', options.seed), lambda, s);
  const noise =
    opts.noiseSeed !== undefined
      ? prngFromString('edgeward/puf/sim/noise/v1', opts.noiseSeed)
      : prngFromBytes(randomBytes(32));

  return {
    keyBits: options.keyBits,
    options,
    flipProbability: key.p,
    nominal: key.nominal,
    readKey() {
      const out = new Uint8Array(key.nominal.length);
      for (let i = 0; i < key.bits; i++) if (key.bit(i, noise)) out[i >>> 3]! |= 1 << (i & 7);
      return out;
    },
    respond(challenge, bits) {
      if (!Number.isInteger(bits) || bits < 1 || bits > 8192)
        throw new TypeError('respond: bits out of range');
      const out = new Uint8Array((bits + 7) >>> 3);
      // The challenge selects cells: counter-mode SHA-256 over the challenge gives 32-bit addresses.
      let block = Buffer.alloc(0);
      for (let i = 0; i < bits; i++) {
        const off = (i % 8) * 4;
        if (off === 0) {
          const ctr = Buffer.alloc(4);
          ctr.writeUInt32BE(i >>> 3);
          block = createHash('sha256')
            .update('edgeward/puf/sim/crp-address/v1\0')
            .update(challenge)
            .update(ctr)
            .digest();
        }
        const addr = block.readUInt32BE(off) % crp.bits;
        if (crp.bit(addr, noise)) out[i >>> 3]! |= 1 << (i & 7);
      }
      return out;
    },
  };
}
