import { describe, expect, it } from 'vitest';
import {
  analyticBound,
  binomialTail,
  crpBound,
  fullPipeline,
  monteCarlo,
} from '../../../attestation/puf/eval.js';
import { PROFILE_V1, messageBits } from '../../../attestation/puf/profile.js';

describe('PUF evaluation', () => {
  it('binomial tails match hand-computed values', () => {
    // P(Bin(7, 0.15) >= 4) = sum_{k=4..7} C(7,k) 0.15^k 0.85^(7-k)
    const byHand = 35 * 0.15 ** 4 * 0.85 ** 3 + 21 * 0.15 ** 5 * 0.85 ** 2 + 7 * 0.15 ** 6 * 0.85 + 0.15 ** 7;
    expect(binomialTail(7, 0.15, 4)).toBeCloseTo(byHand, 15);
    expect(binomialTail(10, 0.5, 0)).toBe(1);
    expect(binomialTail(10, 0.5, 11)).toBe(0);
  });

  it('the chosen profile meets the targets by the bound: < 1e-9 at 15 %, >= 128 bits left', () => {
    const b = analyticBound(PROFILE_V1, 0.15);
    expect(b.keyFailure).toBeLessThan(1e-9);
    expect(b.keyFailure).toBeGreaterThan(0);
    expect(messageBits(PROFILE_V1)).toBeGreaterThanOrEqual(128);
    // Margin: still under 1e-9 with the error rate raised well above 15 %.
    expect(analyticBound(PROFILE_V1, 0.18).keyFailure).toBeLessThan(1e-9);
    const crp = crpBound(PROFILE_V1, 0.2);
    expect(crp.falseReject).toBeLessThan(1e-9);
    expect(crp.falseAccept).toBeLessThan(1e-9);
    expect(crp.falseAccept).toBeGreaterThan(0);
  });

  it('the bit-sliced Monte Carlo agrees with the real decoder and with the bound where failures are common', () => {
    const ber = 0.3;
    const mc = monteCarlo({ ber, devices: 2, readsPerDevice: 300, seed: 't' });
    const measured = analyticBound(PROFILE_V1, mc.bitErrorRate);
    expect(mc.groupErrorRate).toBeGreaterThan(measured.repetitionFailure * 0.8);
    expect(mc.groupErrorRate).toBeLessThan(measured.repetitionFailure * 1.2);
    expect(mc.failures / mc.reads).toBeGreaterThan(0.8);
    const pipe = fullPipeline({ ber, devices: 1, readsPerDevice: 20, seed: 't' });
    expect(pipe.failures / pipe.reads).toBeGreaterThan(0.8);
  });

  it('reports no failures at 10 % on a small run', () => {
    const mc = monteCarlo({ ber: 0.1, devices: 2, readsPerDevice: 500, seed: 'small' });
    expect(mc.failures).toBe(0);
    expect(mc.bitErrorRate).toBeGreaterThan(0.09);
    expect(mc.maxBlockErrors).toBeLessThan(PROFILE_V1.bch.t);
  });
});
