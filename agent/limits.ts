// Connection limits that need state: the per-source handshake rate (a token bucket per address,
// in a bounded table) and the connection cap. The timeouts live on the sockets (inbound.ts).
import type { Clock } from '../common/clock.js';

export interface LimitsConfig {
  /** ms a TLS handshake may take. */
  readonly handshakeTimeout: number;
  /** ms without traffic either way before a connection is closed. */
  readonly idleTimeout: number;
  /** ms a connection may live at most. */
  readonly maxLifetime: number;
  /** Live + handshaking connections per agent (all listeners together). */
  readonly maxConnections: number;
  /** Sustained handshakes per second per source address. */
  readonly handshakeRate: number;
  /** Burst of handshakes per source address. */
  readonly handshakeBurst: number;
}

export const DEFAULT_LIMITS: LimitsConfig = Object.freeze({
  handshakeTimeout: 10_000,
  idleTimeout: 300_000,
  maxLifetime: 86_400_000,
  maxConnections: 10_000,
  handshakeRate: 50,
  handshakeBurst: 100,
});

interface Bucket {
  tokens: number;
  at: number;
}

/** Token bucket per source address; the table is bounded so a spray of addresses cannot grow it. */
export class HandshakeRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly clock: Clock,
    private rate: number,
    private burst: number,
    private readonly maxSources = 65_536,
  ) {}

  setRate(rate: number, burst: number): void {
    this.rate = rate;
    this.burst = burst;
  }

  /** Takes one token for `source`; false when its bucket is empty. */
  take(source: string): boolean {
    const now = this.clock.now();
    let b = this.buckets.get(source);
    if (b) {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) * this.rate) / 1000);
      b.at = now;
      // Re-insert so Map order approximates least-recently-used for eviction.
      this.buckets.delete(source);
    } else {
      b = { tokens: this.burst, at: now };
      if (this.buckets.size >= this.maxSources) this.evict(now);
    }
    this.buckets.set(source, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  get sources(): number {
    return this.buckets.size;
  }

  private evict(now: number): void {
    // Full buckets carry no state worth keeping; otherwise drop the least recently used.
    for (const [k, v] of this.buckets) {
      if (v.tokens + ((now - v.at) * this.rate) / 1000 >= this.burst) this.buckets.delete(k);
      if (this.buckets.size < this.maxSources * 0.9) return;
    }
    const first = this.buckets.keys().next();
    if (!first.done) this.buckets.delete(first.value);
  }
}
