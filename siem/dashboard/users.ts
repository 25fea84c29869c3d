// Dashboard users: scrypt password hashes kept by a UserStore (siem/store/store.ts; SQLite's in
// dashboard.db), three roles. Verification runs scrypt even for unknown names, so timing does not
// reveal which names exist.
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { EdgewardError } from '../../common/errors.js';
import type { UserStore } from '../store/store.js';

export type Role = 'viewer' | 'analyst' | 'admin';
export const ROLES: readonly Role[] = ['viewer', 'analyst', 'admin'];

const PARAMS = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

function scrypt(password: string, salt: Buffer, o: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password, salt, 32, o, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export interface User {
  readonly name: string;
  readonly role: Role;
}

export class DashboardUsers {
  private readonly dummy = `scrypt$${PARAMS.N}$${PARAMS.r}$${PARAMS.p}$${randomBytes(16).toString('base64')}$${randomBytes(32).toString('base64')}`;

  constructor(private readonly store: UserStore) {}

  async add(name: string, role: string, password: string, now: number): Promise<User> {
    if (!NAME.test(name))
      throw new EdgewardError('ERR_DASH_USER_INVALID', 'user names are 1-64 of a-z 0-9 . _ -');
    if (!ROLES.includes(role as Role))
      throw new EdgewardError('ERR_DASH_USER_INVALID', 'role is viewer, analyst or admin');
    if (password.length < 12 || password.length > 1024) {
      throw new EdgewardError('ERR_DASH_USER_INVALID', 'passwords are 12 to 1024 characters');
    }
    const salt = randomBytes(16);
    const key = await scrypt(password, salt, PARAMS);
    const hash = `scrypt$${PARAMS.N}$${PARAMS.r}$${PARAMS.p}$${salt.toString('base64')}$${key.toString('base64')}`;
    if (!(await this.store.insert({ name, role: role as Role, hash, createdAt: now })))
      throw new EdgewardError('ERR_DASH_USER_EXISTS');
    return { name, role: role as Role };
  }

  /** The user, or undefined when the name is unknown or the password wrong. */
  async verify(name: string, password: string): Promise<User | undefined> {
    const row = NAME.test(name) ? await this.store.get(name) : undefined;
    const [, n, r, p, salt, key] = (row?.hash ?? this.dummy).split('$');
    const expected = Buffer.from(key ?? '', 'base64');
    const got = await scrypt(password.slice(0, 1024), Buffer.from(salt ?? '', 'base64'), {
      N: Number(n),
      r: Number(r),
      p: Number(p),
      maxmem: PARAMS.maxmem,
    });
    const ok = got.length === expected.length && timingSafeEqual(got, expected);
    return ok && row ? { name, role: row.role } : undefined;
  }

  list(): Promise<User[]> {
    return this.store.list();
  }
}

export function roleAtLeast(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}
