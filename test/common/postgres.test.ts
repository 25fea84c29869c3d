// The store URL, coded errors for an unreachable PostgreSQL, and versioned migrations, against
// the machine's real PostgreSQL in a database of the test's own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgewardError } from '../../common/errors.js';
import {
  checkReachable,
  createPool,
  migrate,
  parsePostgresUrl,
  type Migration,
} from '../../common/postgres.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof EdgewardError ? err.code : 'not coded';
  }
  return undefined;
}

describe('parsePostgresUrl', () => {
  it('reads user, host, port and database, and prints the URL without secrets', () => {
    const u = parsePostgresUrl('postgres://edgeward@db.example.net:6543/ca');
    expect(u).toMatchObject({
      user: 'edgeward',
      host: 'db.example.net',
      port: 6543,
      database: 'ca',
      ssl: 'disable',
    });
    expect(u.redacted).toBe('postgres://edgeward@db.example.net:6543/ca');
    expect(parsePostgresUrl('postgresql://u@[::1]/d?sslmode=verify-full')).toMatchObject({
      host: '::1',
      port: 5432,
      ssl: 'verify-full',
      redacted: 'postgres://u@[::1]:5432/d?sslmode=verify-full',
    });
  });

  it.each([
    ['', 'ERR_STORE_URL'],
    ['mysql://u@h/d', 'ERR_STORE_URL'],
    ['postgres://h:5432/d', 'ERR_STORE_URL'],
    ['postgres://u@h:99999/d', 'ERR_STORE_URL'],
    ['postgres://u@h:5432/', 'ERR_STORE_URL'],
    ['postgres://u@h/d;drop', 'ERR_STORE_URL'],
    ['postgres://u@h/d?host=/tmp', 'ERR_STORE_URL'],
    ['postgres://u@h/d?sslmode=prefer', 'ERR_STORE_URL'],
    ['postgres://u@h_h/d', 'ERR_STORE_URL'],
    ['postgres://u:hunter2@h/d', 'ERR_SECRET_ARGV'],
  ])('refuses %j with %s', (url, code) => {
    expect(codeOf(() => parsePostgresUrl(url))).toBe(code);
  });

  it('never repeats a password in its error', () => {
    try {
      parsePostgresUrl('postgres://u:hunter2@h/d');
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter2');
      expect((err as Error).message).toContain('PGPASSWORD');
    }
    try {
      parsePostgresUrl('postgres://u:hunter2@h:bad/d');
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter2');
    }
  });
});

describe('unreachable PostgreSQL', () => {
  it('a closed port is ERR_STORE_UNAVAILABLE naming the URL', async () => {
    const url = parsePostgresUrl('postgres://postgres@127.0.0.1:1/postgres');
    const pool = createPool(url, { connectTimeoutMs: 2000 });
    try {
      const err = await checkReachable(pool, url).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(EdgewardError);
      expect((err as EdgewardError).code).toBe('ERR_STORE_UNAVAILABLE');
      expect((err as EdgewardError).statusCode).toBe(503);
      expect((err as Error).message).toContain('postgres://postgres@127.0.0.1:1/postgres');
      expect((err as Error).message).toContain('ECONNREFUSED');
    } finally {
      await pool.end();
    }
  });

  it('a database that does not exist is ERR_STORE_UNAVAILABLE', async () => {
    const url = parsePostgresUrl('postgres://postgres@127.0.0.1:5432/edgeward_test_absent');
    const pool = createPool(url);
    try {
      await expect(checkReachable(pool, url)).rejects.toMatchObject({
        code: 'ERR_STORE_UNAVAILABLE',
        message: expect.stringContaining('does not exist') as unknown,
      });
    } finally {
      await pool.end();
    }
  });
});

describe('migrate', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  const v1: Migration = { version: 1, name: 'widgets', sql: 'CREATE TABLE widgets (id INTEGER PRIMARY KEY)' };
  const v2: Migration = { version: 2, name: 'widget names', sql: 'ALTER TABLE widgets ADD COLUMN name TEXT' };

  it('replicas starting together apply each migration once, in order', async () => {
    const url = parsePostgresUrl(db.url);
    const pools = [createPool(url), createPool(url), createPool(url)];
    try {
      const versions = await Promise.all(pools.map((p) => migrate(p, url, 'test', [v1, v2])));
      expect(versions).toEqual([2, 2, 2]);
      const r = await pools[0]!.query<{ version: number; name: string }>(
        "SELECT version, name FROM schema_migrations WHERE component = 'test' ORDER BY version",
      );
      expect(r.rows).toEqual([
        { version: 1, name: 'widgets' },
        { version: 2, name: 'widget names' },
      ]);
      await pools[0]!.query("INSERT INTO widgets (id, name) VALUES (1, 'a')");
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it('a failing migration leaves the version where it was', async () => {
    const url = parsePostgresUrl(db.url);
    const pool = createPool(url);
    try {
      const bad: Migration = { version: 3, name: 'broken', sql: 'ALTER TABLE nothing ADD COLUMN x TEXT' };
      await expect(migrate(pool, url, 'test', [v1, v2, bad])).rejects.toMatchObject({ code: '42P01' });
      const r = await pool.query("SELECT max(version) AS v FROM schema_migrations WHERE component = 'test'");
      expect(r.rows[0]).toEqual({ v: 2 });
    } finally {
      await pool.end();
    }
  });

  it('refuses a database newer than the code, naming both versions', async () => {
    const url = parsePostgresUrl(db.url);
    const pool = createPool(url);
    try {
      const err = await migrate(pool, url, 'test', [v1]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(EdgewardError);
      expect((err as EdgewardError).code).toBe('ERR_STORE_SCHEMA_NEWER');
      expect((err as Error).message).toContain('version 2');
      expect((err as Error).message).toContain('up to 1');
    } finally {
      await pool.end();
    }
  });
});
