// Dashboard sessions: random ids in HttpOnly cookies, a per-session CSRF token, idle and
// absolute expiry, and a cap on how many live at once. Kept by a SessionStore
// (siem/store/store.ts), so a session made on one SIEM replica is valid on another; the store
// holds the SHA-256 of each id, never the id.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SessionRecord, SessionStore } from '../store/store.js';
import type { Role } from './users.js';

export interface Session {
  readonly id: string;
  readonly user: string;
  readonly role: Role;
  readonly csrf: string;
  readonly createdAt: number;
  readonly lastSeen: number;
}

export const SESSION_COOKIE = 'ew_session';

/** The store's key of a session id. */
const keyOf = (id: string): string => createHash('sha256').update(id).digest('hex');

export class DashboardSessions {
  constructor(
    private readonly store: SessionStore,
    private readonly now: () => number,
    private readonly idleMs = 30 * 60_000,
    private readonly absoluteMs = 12 * 3_600_000,
    private readonly max = 10_000,
  ) {}

  async create(user: string, role: Role): Promise<Session> {
    const t = this.now();
    await this.store.sweep(t - this.idleMs, t - this.absoluteMs);
    const id = randomBytes(32).toString('base64url');
    const r: SessionRecord = {
      key: keyOf(id),
      user,
      role,
      csrf: randomBytes(32).toString('base64url'),
      createdAt: t,
      lastSeen: t,
    };
    await this.store.insert(r, this.max);
    return { id, user, role, csrf: r.csrf, createdAt: t, lastSeen: t };
  }

  async get(id: string | undefined): Promise<Session | undefined> {
    if (!id || id.length !== 43) return undefined;
    const key = keyOf(id);
    const s = await this.store.get(key);
    if (!s) return undefined;
    const t = this.now();
    if (t - s.lastSeen > this.idleMs || t - s.createdAt > this.absoluteMs) {
      await this.store.delete(key);
      return undefined;
    }
    await this.store.touch(key, t);
    return { id, user: s.user, role: s.role, csrf: s.csrf, createdAt: s.createdAt, lastSeen: t };
  }

  destroy(id: string): Promise<void> {
    return this.store.delete(keyOf(id));
  }

  static csrfMatches(s: Session, token: string | undefined): boolean {
    if (typeof token !== 'string' || token.length !== s.csrf.length) return false;
    return timingSafeEqual(Buffer.from(token), Buffer.from(s.csrf));
  }
}
