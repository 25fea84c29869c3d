// Failure-based rate limiting per key (the PUF method keys its budgets by identity and source
// address, by identity, and by renewing identity). Each failed PUF attestation tells the prober a
// little about the helper data and the cells (how often reconstruction fails under a
// manipulation), so failures, not requests, are what we ration: a few free, then exponential backoff.
import { EdgewardError } from '../../common/errors.js';

export interface RateLimitOptions {
  /** Failures allowed before backoff starts. */
  readonly freeFailures?: number;
  /** Delay after the first failure beyond the free ones; doubles with each further failure. */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Failures older than this are forgotten. */
  readonly forgetAfterMs?: number;
  /** Bound on keys tracked (oldest forgotten first), so probing cannot exhaust memory. */
  readonly maxTracked?: number;
}

interface Entry {
  failures: number;
  lastFailure: number;
  lockedUntil: number;
}

export interface FailureLimiter {
  /** Throws ERR_ATT_PUF_RATE_LIMITED while the key is backing off. */
  check(key: string, now: number): void;
  failure(key: string, now: number): void;
  success(key: string): void;
  /** For tests and metrics. */
  state(key: string): Readonly<Entry> | undefined;
}

export function createFailureLimiter(opts: RateLimitOptions = {}): FailureLimiter {
  const free = opts.freeFailures ?? 3;
  const base = opts.baseDelayMs ?? 1000;
  const max = opts.maxDelayMs ?? 15 * 60_000;
  const forget = opts.forgetAfterMs ?? 24 * 3_600_000;
  const maxTracked = opts.maxTracked ?? 100_000;
  const entries = new Map<string, Entry>();

  const current = (identity: string, now: number): Entry | undefined => {
    const e = entries.get(identity);
    if (e && now - e.lastFailure > forget) {
      entries.delete(identity);
      return undefined;
    }
    return e;
  };

  return {
    check(identity, now) {
      const e = current(identity, now);
      if (e && now < e.lockedUntil) {
        throw new EdgewardError('ERR_ATT_PUF_RATE_LIMITED', undefined, {
          detail: { identity, failures: e.failures, retryAfterMs: e.lockedUntil - now },
        });
      }
    },
    failure(identity, now) {
      const e = current(identity, now) ?? { failures: 0, lastFailure: now, lockedUntil: 0 };
      e.failures++;
      e.lastFailure = now;
      if (e.failures > free)
        e.lockedUntil = now + Math.min(max, base * 2 ** Math.min(30, e.failures - free - 1));
      entries.delete(identity);
      entries.set(identity, e);
      if (entries.size > maxTracked) {
        const oldest = entries.keys().next();
        if (!oldest.done) entries.delete(oldest.value);
      }
    },
    success(identity) {
      entries.delete(identity);
    },
    state(identity) {
      return entries.get(identity);
    },
  };
}
