// Dashboard sessions: random ids in HttpOnly cookies, a per-session CSRF token, idle and
// absolute expiry, and a cap on how many live at once.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Role } from './users.js';

export interface Session {
  readonly id: string;
  readonly user: string;
  readonly role: Role;
  readonly csrf: string;
  readonly createdAt: number;
  lastSeen: number;
}

export const SESSION_COOKIE = 'ew_session';

export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly now: () => number,
    private readonly idleMs = 30 * 60_000,
    private readonly absoluteMs = 12 * 3_600_000,
    private readonly max = 10_000,
  ) {}

  create(user: string, role: Role): Session {
    this.sweep();
    if (this.sessions.size >= this.max) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    const t = this.now();
    const s: Session = {
      id: randomBytes(32).toString('base64url'),
      user,
      role,
      csrf: randomBytes(32).toString('base64url'),
      createdAt: t,
      lastSeen: t,
    };
    this.sessions.set(s.id, s);
    return s;
  }

  get(id: string | undefined): Session | undefined {
    if (!id || id.length !== 43) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    const t = this.now();
    if (t - s.lastSeen > this.idleMs || t - s.createdAt > this.absoluteMs) {
      this.sessions.delete(id);
      return undefined;
    }
    s.lastSeen = t;
    return s;
  }

  destroy(id: string): void {
    this.sessions.delete(id);
  }

  static csrfMatches(s: Session, token: string | undefined): boolean {
    if (typeof token !== 'string' || token.length !== s.csrf.length) return false;
    return timingSafeEqual(Buffer.from(token), Buffer.from(s.csrf));
  }

  private sweep(): void {
    const t = this.now();
    for (const [id, s] of this.sessions) {
      if (t - s.lastSeen > this.idleMs || t - s.createdAt > this.absoluteMs) this.sessions.delete(id);
    }
  }
}
