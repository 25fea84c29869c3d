// Evaluation of the fuzzy extractor on the simulator (`edgeward puf eval`, `npm run bench:puf`):
// measured key-reconstruction failure over many reads, the analytic bound of the code, intra- and
// inter-device fractional Hamming distance, and device-side reconstruction time.
import { performance } from 'node:perf_hooks';
import nacl from 'tweetnacl';
import { getBit, hamming, popcount32 } from './bits.js';
import { enrollKey, majority, reconstructKey } from './fuzzy-extractor.js';
import { codeBits, messageBits, PROFILE_V1, type PufProfile } from './profile.js';
import { prngFromString } from './prng.js';
import { createSimPuf } from './simulator.js';

// ---- analytic bound ----

const LOG_FACT: number[] = [0];
function logFact(n: number): number {
  for (let i = LOG_FACT.length; i <= n; i++) LOG_FACT[i] = LOG_FACT[i - 1]! + Math.log(i);
  return LOG_FACT[n]!;
}

/** P(X >= c) for X ~ Binomial(n, p), summed in log space (exact up to rounding). */
export function binomialTail(n: number, p: number, c: number): number {
  if (c <= 0) return 1;
  if (c > n) return 0;
  let s = 0;
  for (let k = c; k <= n; k++) {
    s += Math.exp(logFact(n) - logFact(k) - logFact(n - k) + k * Math.log(p) + (n - k) * Math.log1p(-p));
  }
  return Math.min(1, s);
}

/** P(X <= c) for X ~ Binomial(n, p), summed directly (no 1 - tail cancellation). */
export function binomialHead(n: number, p: number, c: number): number {
  if (c < 0) return 0;
  if (c >= n) return 1;
  let s = 0;
  for (let k = 0; k <= c; k++) {
    s += Math.exp(logFact(n) - logFact(k) - logFact(n - k) + k * Math.log(p) + (n - k) * Math.log1p(-p));
  }
  return Math.min(1, s);
}

export interface Bound {
  readonly ber: number;
  /** P(majority of one repetition group wrong) = P(Bin(m, p) >= (m+1)/2). */
  readonly repetitionFailure: number;
  /** P(one BCH block has more than t wrong symbols) = P(Bin(n, q) >= t+1). */
  readonly blockFailure: number;
  /** P(any block fails) = 1 - (1 - blockFailure)^blocks. */
  readonly keyFailure: number;
}

export function analyticBound(profile: PufProfile, p: number): Bound {
  const m = profile.repetition;
  const q = binomialTail(m, p, (m + 1) / 2);
  const pb = binomialTail(profile.bch.n, q, profile.bch.t + 1);
  const keyFailure = -Math.expm1(profile.blocks * Math.log1p(-pb));
  return { ber: p, repetitionFailure: q, blockFailure: pb, keyFailure };
}

/** Rejection and acceptance errors of the CRP threshold when cells flip independently with p. */
export function crpBound(profile: PufProfile, p: number): { falseReject: number; falseAccept: number } {
  const L = profile.crp.responseBits;
  const tau = profile.crp.threshold;
  return { falseReject: binomialTail(L, p, tau + 1), falseAccept: binomialHead(L, 0.5, tau) };
}

// ---- device population ----

interface Device {
  /** Per used code bit: probability it differs from the enrolled reference in one read. */
  readonly flip: Float64Array;
}

/** A simulated device enrolled as in `puf provision`; returns the effective flip probabilities. */
function enrollDevice(profile: PufProfile, ber: number, bias: number, seed: string): Device {
  const puf = createSimPuf({ seed, ber, bias, noiseSeed: `${seed}/enroll`, crpBits: 8 });
  const reads: Uint8Array[] = [];
  for (let i = 0; i < profile.enrollReads; i++) reads.push(puf.readKey());
  const ref = majority(reads, profile.responseBits);
  const n = codeBits(profile);
  const flip = new Float64Array(n);
  let kept = 0;
  for (let j = 0; j < profile.responseBits / 2 && kept < n; j++) {
    const a = getBit(ref, 2 * j);
    if (a === getBit(ref, 2 * j + 1)) continue;
    const cell = 2 * j;
    const p = puf.flipProbability[cell]!;
    // Against the reference: a reference bit that itself came out wrong flips with 1 - p.
    flip[kept++] = a === getBit(puf.nominal, cell) ? p : 1 - p;
  }
  if (kept < n) throw new Error(`device ${seed}: debiasing kept only ${kept} bits`);
  return { flip };
}

export interface MonteCarloResult {
  readonly ber: number;
  readonly devices: number;
  readonly reads: number;
  readonly failures: number;
  /** Measured per-bit error rate on the code bits (against the enrolled reference). */
  readonly bitErrorRate: number;
  /** Measured repetition-group (majority) error rate. */
  readonly groupErrorRate: number;
  /** Most wrong BCH symbols seen in one block (t is the most the decoder corrects). */
  readonly maxBlockErrors: number;
  readonly seconds: number;
}

/**
 * Bit-sliced Monte Carlo: 32 repetition groups per machine word, one exact Bernoulli(flip) per code
 * bit per read (32-bit random words compared MSB-first against the thresholds), majority by a
 * bit-sliced counter, then a popcount per BCH block. A read fails exactly when some block has more
 * than t wrong symbols (the decoder is bounded-distance; test/attestation/puf/bch.test.ts).
 */
export function monteCarlo(opts: {
  profile?: PufProfile;
  ber: number;
  bias?: number;
  devices: number;
  readsPerDevice: number;
  seed?: string;
}): MonteCarloResult {
  const profile = opts.profile ?? PROFILE_V1;
  const m = profile.repetition;
  const nSym = profile.bch.n;
  const groups = profile.blocks * nSym;
  const W = (groups + 31) >>> 5;
  const need = (m + 1) / 2;
  const t0 = performance.now();
  const rng = prngFromString('edgeward/puf/eval/noise', `${opts.seed ?? 'eval'}/${opts.ber}`);
  let ra = rng.u32() | 0;
  let rb = rng.u32() | 0;
  let rc = rng.u32() | 0;
  let rd = rng.u32() | 1;
  // Lane masks per block.
  const blockMask = new Int32Array(profile.blocks * W);
  for (let g = 0; g < groups; g++) {
    const b = Math.floor(g / nSym);
    blockMask[b * W + (g >>> 5)]! |= 1 << (g & 31);
  }
  const planes = new Int32Array(m * W * 32);
  let failures = 0;
  let bitErrors = 0;
  let groupErrors = 0;
  let maxBlockErrors = 0;
  const blockErr = new Int32Array(profile.blocks);
  for (let d = 0; d < opts.devices; d++) {
    const dev = enrollDevice(profile, opts.ber, opts.bias ?? 0.5, `${opts.seed ?? 'eval'}-dev${d}`);
    planes.fill(0);
    for (let g = 0; g < groups; g++) {
      for (let r = 0; r < m; r++) {
        const thr = Math.min(4294967295, Math.floor(dev.flip[g * m + r]! * 4294967296));
        const base = (r * W + (g >>> 5)) * 32;
        const lane = 1 << (g & 31);
        for (let k = 0; k < 32; k++) if ((thr >>> (31 - k)) & 1) planes[base + k]! |= lane;
      }
    }
    for (let read = 0; read < opts.readsPerDevice; read++) {
      blockErr.fill(0);
      for (let w = 0; w < W; w++) {
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let r = 0; r < m; r++) {
          const base = (r * W + w) * 32;
          let lt = 0;
          let eq = -1;
          for (let k = 0; k < 32 && eq !== 0; k++) {
            // sfc32, inlined: this loop is the whole cost of the evaluation.
            const R = (((ra + rb) | 0) + rd) | 0;
            rd = (rd + 1) | 0;
            ra = rb ^ (rb >>> 9);
            rb = (rc + (rc << 3)) | 0;
            rc = (rc << 21) | (rc >>> 11);
            rc = (rc + R) | 0;
            const T = planes[base + k]!;
            lt |= eq & ~R & T;
            eq &= ~(R ^ T);
          }
          bitErrors += popcount32(lt);
          // Bit-sliced 4-bit counter (m <= 15).
          const c0 = s0 & lt;
          s0 ^= lt;
          const c1 = s1 & c0;
          s1 ^= c0;
          const c2 = s2 & c1;
          s2 ^= c1;
          s3 ^= c2;
        }
        // Lanes whose count >= need, compared MSB-first against the constant.
        let ge = 0;
        let eq = -1;
        const cnt = [s3, s2, s1, s0];
        for (let k = 0; k < 4; k++) {
          const cb = (need >>> (3 - k)) & 1 ? -1 : 0;
          const x = cnt[k]!;
          ge |= eq & x & ~cb;
          eq &= ~(x ^ cb);
        }
        ge |= eq;
        for (let b = 0; b < profile.blocks; b++) {
          const e = ge & blockMask[b * W + w]!;
          if (e) blockErr[b]! += popcount32(e);
        }
      }
      let failed = false;
      for (let b = 0; b < profile.blocks; b++) {
        const e = blockErr[b]!;
        groupErrors += e;
        if (e > maxBlockErrors) maxBlockErrors = e;
        if (e > profile.bch.t) failed = true;
      }
      if (failed) failures++;
    }
  }
  const reads = opts.devices * opts.readsPerDevice;
  return {
    ber: opts.ber,
    devices: opts.devices,
    reads,
    failures,
    bitErrorRate: bitErrors / (reads * codeBits(profile)),
    groupErrorRate: groupErrors / (reads * groups),
    maxBlockErrors,
    seconds: (performance.now() - t0) / 1000,
  };
}

// ---- full pipeline: real reads, real decoder, real keys ----

export interface PipelineResult {
  readonly ber: number;
  readonly reads: number;
  readonly failures: number;
  /** Device-side seed reconstruction (debias, repetition, BCH decode, extractor), milliseconds. */
  readonly reconstructMs: Timing;
  /** The same plus the Ed25519 key pair from the seed (tweetnacl), milliseconds. */
  readonly withKeyMs: Timing;
  /** Mean CPU time (user + system) per reconstruction, seed only and with the key: unlike wall
   * time, not inflated when other processes share the cores. */
  readonly cpuMs: { readonly seed: number; readonly withKey: number };
}

export interface Timing {
  readonly median: number;
  readonly p99: number;
  readonly max: number;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

export function fullPipeline(opts: {
  profile?: PufProfile;
  ber: number;
  devices: number;
  readsPerDevice: number;
  seed?: string;
}): PipelineResult {
  const profile = opts.profile ?? PROFILE_V1;
  const times: number[] = [];
  const withKey: number[] = [];
  let cpuSeed = 0;
  let cpuKey = 0;
  let failures = 0;
  for (let d = 0; d < opts.devices; d++) {
    const seed = `${opts.seed ?? 'pipe'}-dev${d}`;
    const puf = createSimPuf({ seed, ber: opts.ber, noiseSeed: `${seed}/noise`, crpBits: 8 });
    const reads: Uint8Array[] = [];
    for (let i = 0; i < profile.enrollReads; i++) reads.push(puf.readKey());
    const { helper, seed: enrolled } = enrollKey(majority(reads, profile.responseBits), profile);
    const pk = nacl.sign.keyPair.fromSeed(enrolled).publicKey;
    for (let r = 0; r < opts.readsPerDevice; r++) {
      const read = puf.readKey();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const rec = reconstructKey(read, helper, profile);
      const t1 = performance.now();
      const c1 = process.cpuUsage(c0);
      const kp = nacl.sign.keyPair.fromSeed(rec.seed);
      times.push(t1 - t0);
      withKey.push(performance.now() - t0);
      const c2 = process.cpuUsage(c0);
      cpuSeed += (c1.user + c1.system) / 1000;
      cpuKey += (c2.user + c2.system) / 1000;
      if (Buffer.compare(Buffer.from(kp.publicKey), Buffer.from(pk)) !== 0) failures++;
    }
  }
  const timing = (xs: number[]): Timing => {
    xs.sort((a, b) => a - b);
    return { median: quantile(xs, 0.5), p99: quantile(xs, 0.99), max: xs[xs.length - 1] ?? 0 };
  };
  return {
    ber: opts.ber,
    reads: opts.devices * opts.readsPerDevice,
    failures,
    reconstructMs: timing(times),
    withKeyMs: timing(withKey),
    cpuMs: { seed: cpuSeed / Math.max(1, times.length), withKey: cpuKey / Math.max(1, times.length) },
  };
}

// ---- Hamming distances on the raw key region ----

export interface HammingResult {
  readonly intra: { readonly mean: number; readonly max: number };
  readonly inter: { readonly mean: number; readonly min: number };
}

export function hammingStats(opts: {
  profile?: PufProfile;
  ber: number;
  devices: number;
  readsPerDevice: number;
  seed?: string;
}): HammingResult {
  const profile = opts.profile ?? PROFILE_V1;
  const bits = profile.responseBits;
  const refs: Uint8Array[] = [];
  let intraSum = 0;
  let intraMax = 0;
  let intraN = 0;
  for (let d = 0; d < opts.devices; d++) {
    const seed = `${opts.seed ?? 'hd'}-dev${d}`;
    const puf = createSimPuf({ seed, ber: opts.ber, noiseSeed: `${seed}/noise`, crpBits: 8 });
    const reads: Uint8Array[] = [];
    for (let i = 0; i < profile.enrollReads; i++) reads.push(puf.readKey());
    const ref = majority(reads, bits);
    refs.push(ref);
    for (let r = 0; r < opts.readsPerDevice; r++) {
      const f = hamming(puf.readKey(), ref) / bits;
      intraSum += f;
      intraN++;
      if (f > intraMax) intraMax = f;
    }
  }
  let interSum = 0;
  let interMin = 1;
  let interN = 0;
  for (let a = 0; a < refs.length; a++) {
    for (let b = a + 1; b < refs.length; b++) {
      const f = hamming(refs[a]!, refs[b]!) / bits;
      interSum += f;
      interN++;
      if (f < interMin) interMin = f;
    }
  }
  return {
    intra: { mean: intraSum / intraN, max: intraMax },
    inter: { mean: interSum / Math.max(1, interN), min: interMin },
  };
}

// ---- the report ----

export interface EvalOptions {
  readonly bers?: readonly number[];
  /** Simulated reads per BER for the failure rate (devices x reads per device). */
  readonly devices?: number;
  readonly readsPerDevice?: number;
  /** Reads through the real decoder, per BER (cross-check and timing). */
  readonly pipelineReads?: number;
  /** Devices for the Hamming-distance statistics (pairs among them for inter-device). */
  readonly hdDevices?: number;
  readonly print?: (line: string) => void;
}

export interface EvalRow {
  readonly ber: number;
  readonly mc: MonteCarloResult;
  readonly boundNominal: Bound;
  readonly boundMeasured: Bound;
  readonly pipeline: PipelineResult;
  readonly hd: HammingResult;
  readonly crp: { falseReject: number; falseAccept: number };
}

const fmt = (x: number): string => (x === 0 ? '0' : x.toExponential(2));

export function runPufEval(opts: EvalOptions = {}): EvalRow[] {
  const profile = PROFILE_V1;
  const print = opts.print ?? ((l: string) => process.stdout.write(`${l}\n`));
  const bers = opts.bers ?? [0.05, 0.1, 0.15];
  const devices = opts.devices ?? 1000;
  const perDevice = opts.readsPerDevice ?? 1000;
  const pipelineReads = opts.pipelineReads ?? 2000;
  print(
    `profile ${profile.name}: von Neumann debiasing of ${profile.responseBits} cells; repetition-${profile.repetition} inside ` +
      `BCH(${profile.bch.n},${profile.bch.k},${profile.bch.t}) x ${profile.blocks}; ${codeBits(profile)} code bits; ` +
      `min-entropy left after helper data ${messageBits(profile)} bits`,
  );
  const rows: EvalRow[] = [];
  for (const ber of bers) {
    const mc = monteCarlo({ profile, ber, devices, readsPerDevice: perDevice });
    const boundNominal = analyticBound(profile, ber);
    const boundMeasured = analyticBound(profile, mc.bitErrorRate);
    const pipeDevices = Math.max(1, Math.min(20, Math.round(pipelineReads / 100)));
    const pipeline = fullPipeline({
      profile,
      ber,
      devices: pipeDevices,
      readsPerDevice: Math.ceil(pipelineReads / pipeDevices),
    });
    const hd = hammingStats({ profile, ber, devices: opts.hdDevices ?? 40, readsPerDevice: 10 });
    const crp = crpBound(profile, Math.max(ber, mc.bitErrorRate));
    rows.push({ ber, mc, boundNominal, boundMeasured, pipeline, hd, crp });
    const upper95 = mc.failures === 0 ? 3 / mc.reads : NaN;
    print(`\nBER ${(ber * 100).toFixed(0)} % (nominal cell flip rate)`);
    print(
      `  measured failure   ${mc.failures} / ${mc.reads} reads = ${fmt(mc.failures / mc.reads)}` +
        (mc.failures === 0 ? ` (95 % upper limit ${fmt(upper95)})` : '') +
        ` [${mc.devices} devices, ${mc.seconds.toFixed(1)} s]`,
    );
    print(
      `  measured bit error ${mc.bitErrorRate.toFixed(4)} on code bits; group error ${fmt(mc.groupErrorRate)}; worst block ${mc.maxBlockErrors}/${profile.bch.t} symbols`,
    );
    print(
      `  analytic bound     key ${fmt(boundNominal.keyFailure)} at p=${ber} (group ${fmt(boundNominal.repetitionFailure)}, block ${fmt(boundNominal.blockFailure)}); ` +
        `key ${fmt(boundMeasured.keyFailure)} at measured p=${mc.bitErrorRate.toFixed(4)}`,
    );
    print(`  intra-device FHD   mean ${hd.intra.mean.toFixed(4)}, max ${hd.intra.max.toFixed(4)}`);
    print(`  inter-device FHD   mean ${hd.inter.mean.toFixed(4)}, min ${hd.inter.min.toFixed(4)}`);
    const ms = (t: Timing): string =>
      `median ${t.median.toFixed(2)} ms, p99 ${t.p99.toFixed(2)} ms, max ${t.max.toFixed(2)} ms`;
    print(`  real decoder       ${pipeline.failures} / ${pipeline.reads} failures`);
    print(
      `  reconstruction     seed ${ms(pipeline.reconstructMs)}; CPU ${pipeline.cpuMs.seed.toFixed(2)} ms`,
    );
    print(
      `                     seed + Ed25519 key (tweetnacl) ${ms(pipeline.withKeyMs)}; CPU ${pipeline.cpuMs.withKey.toFixed(2)} ms`,
    );
    print(
      `  CRP threshold      false reject ${fmt(crp.falseReject)}, false accept ${fmt(crp.falseAccept)} (${profile.crp.threshold}/${profile.crp.responseBits})`,
    );
  }
  return rows;
}
