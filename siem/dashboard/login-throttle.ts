// Back-off for wrong dashboard passwords, per user name *and* source address: a source that keeps
// guessing one user's password waits longer and longer, while the user logging in from anywhere
// else is not slowed at all (a per-name lock would let anyone lock an analyst out). Pure: the
// caller passes the clock.

export interface LoginThrottleOptions {
  /** Wrong passwords from one source for one user before the back-off starts (default 5). */
  readonly freeFailures?: number;
  /** The first wait (default 1 s); it doubles with each further failure ... */
  readonly baseMs?: number;
  /** ... up to this (default 15 minutes). */
  readonly maxMs?: number;
  /** Failures are forgotten after this long without one (default 1 hour). */
  readonly forgetMs?: number;
  /** (user, source) pairs remembered at once; the least recently failed are forgotten first. */
  readonly maxKeys?: number;
}

interface Failures {
  count: number;
  last: number;
  until: number;
}

export class LoginThrottle {
  private readonly o: Required<LoginThrottleOptions>;
  private readonly now: () => number;
  private readonly failures = new Map<string, Failures>();

  constructor(now: () => number, o: LoginThrottleOptions = {}) {
    this.now = now;
    this.o = {
      freeFailures: o.freeFailures ?? 5,
      baseMs: o.baseMs ?? 1000,
      maxMs: o.maxMs ?? 15 * 60_000,
      forgetMs: o.forgetMs ?? 3_600_000,
      maxKeys: o.maxKeys ?? 100_000,
    };
  }

  private static key(name: string, source: string): string {
    return `${name}\u001f${source}`;
  }

  private get(key: string): Failures | undefined {
    const f = this.failures.get(key);
    if (f !== undefined && this.now() - f.last > this.o.forgetMs) {
      this.failures.delete(key);
      return undefined;
    }
    return f;
  }

  /** Seconds this source must wait before trying this user's password again (0: it may now). */
  wait(name: string, source: string): number {
    const f = this.get(LoginThrottle.key(name, source));
    if (f === undefined) return 0;
    const left = f.until - this.now();
    return left > 0 ? Math.ceil(left / 1000) : 0;
  }

  failed(name: string, source: string): void {
    const key = LoginThrottle.key(name, source);
    const t = this.now();
    const f = this.get(key) ?? { count: 0, last: t, until: 0 };
    f.count++;
    f.last = t;
    const over = f.count - this.o.freeFailures;
    if (over >= 0) f.until = t + Math.min(this.o.maxMs, this.o.baseMs * 2 ** Math.min(over, 30));
    this.failures.delete(key);
    this.failures.set(key, f);
    if (this.failures.size > this.o.maxKeys) {
      const oldest = this.failures.keys().next();
      if (oldest.done !== true) this.failures.delete(oldest.value);
    }
  }

  succeeded(name: string, source: string): void {
    this.failures.delete(LoginThrottle.key(name, source));
  }

  get size(): number {
    return this.failures.size;
  }
}
