// Test databases on the machine's PostgreSQL (127.0.0.1:5432, trust auth): each test creates
// its own `edgeward_test_<random>` through the `postgres` database and drops it afterwards, so
// the `test` and `postgres` databases are never touched. A missing server fails the test with
// the command that starts it.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const PG_ADMIN = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' };

export interface TestDatabase {
  readonly name: string;
  /** postgres://postgres@127.0.0.1:5432/<name> */
  readonly url: string;
  drop(): Promise<void>;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ ...PG_ADMIN, connectionTimeoutMillis: 5000 });
  try {
    await c.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL is not reachable on 127.0.0.1:5432 (${(err as Error).message}); start it with ` +
        'scripts/start-services.sh (pg_ctlcluster --skip-systemctl-redirect 15 main start)',
    );
  }
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `edgeward_test_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  return {
    name,
    url: `postgres://${PG_ADMIN.user}@${PG_ADMIN.host}:${PG_ADMIN.port}/${name}`,
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}
