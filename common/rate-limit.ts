// Token buckets keyed by a string (an IP, an identity), with a cap on how many keys are kept so
// that a flood of distinct keys cannot grow memory without bound.
export interface BucketSpec {
  /** Tokens added per second. */
  readonly rate: number;
  /** Bucket size. */
  readonly burst: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly spec: BucketSpec,
    private readonly now: () => number,
    private readonly maxKeys = 100_000,
  ) {}

  /** Takes one token; false when the key is over its rate. */
  take(key: string): boolean {
    const t = this.now();
    let b = this.buckets.get(key);
    if (b) {
      b.tokens = Math.min(this.spec.burst, b.tokens + ((t - b.at) / 1000) * this.spec.rate);
      b.at = t;
      // Refresh recency so eviction drops the least recently seen keys first.
      this.buckets.delete(key);
    } else {
      b = { tokens: this.spec.burst, at: t };
      if (this.buckets.size >= this.maxKeys) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
    }
    this.buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Seconds until the key has a token again (for Retry-After). */
  retryAfter(key: string): number {
    const b = this.buckets.get(key);
    if (!b || b.tokens >= 1) return 0;
    return Math.ceil((1 - b.tokens) / this.spec.rate);
  }

  get size(): number {
    return this.buckets.size;
  }
}
