// Shared PostgreSQL plumbing for the stores that run as replicas on one database: the store URL
// (validated, never printed with a password), the connection pool, coded errors for an
// unreachable server, and versioned migrations applied on start under an advisory lock.
import pg from 'pg';
import { EdgewardError } from './errors.js';

export interface PostgresUrl {
  readonly user: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly ssl: 'disable' | 'require' | 'verify-full';
  /** The URL as it may be printed: the form given, without any password. */
  readonly redacted: string;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/;
const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const SSL_MODES = new Set(['disable', 'require', 'verify-full']);

/** Whether a --store value names PostgreSQL (anything else is refused by parsePostgresUrl). */
export function isPostgresUrl(value: string): boolean {
  return /^postgres(?:ql)?:/i.test(value);
}

/**
 * Parses `postgres://USER@HOST:PORT/DB[?sslmode=disable|require|verify-full]`. A password in
 * the URL is refused (it would be in argv and in process listings): give it in PGPASSWORD or
 * ~/.pgpass, which node-postgres reads.
 */
export function parsePostgresUrl(value: string): PostgresUrl {
  const bad = (why: string): EdgewardError =>
    new EdgewardError('ERR_STORE_URL', `store URL ${redact(value)}: ${why}`);
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw bad('not a URL');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw bad('scheme must be postgres://');
  if (u.password !== '')
    throw new EdgewardError(
      'ERR_SECRET_ARGV',
      `store URL ${redact(value)}: no password in the URL; give it in PGPASSWORD or ~/.pgpass`,
    );
  const user = decodeURIComponent(u.username);
  if (!NAME.test(user)) throw bad('a user name is required (postgres://USER@HOST:PORT/DB)');
  let host = u.hostname;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  else if (!HOST.test(host)) throw bad('host is not a host name or address');
  if (host === '') throw bad('a host is required');
  const port = u.port === '' ? 5432 : Number(u.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad('port out of range');
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!NAME.test(database)) throw bad('a database name is required (letters, digits, _ and -)');
  if (u.hash !== '') throw bad('no fragment allowed');
  let ssl: PostgresUrl['ssl'] = 'disable';
  for (const [k, v] of u.searchParams) {
    if (k !== 'sslmode' || !SSL_MODES.has(v))
      throw bad('the only query parameter is sslmode=disable|require|verify-full');
    ssl = v as PostgresUrl['ssl'];
  }
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const query = ssl === 'disable' ? '' : `?sslmode=${ssl}`;
  return {
    user,
    host,
    port,
    database,
    ssl,
    redacted: `postgres://${user}@${hostPart}:${port}/${database}${query}`,
  };
}

/** A URL with any password replaced, for error messages about input that did not parse. */
export function redact(value: string): string {
  return value.replace(/^([a-z]+:\/\/[^:@/]*):[^@/]*@/i, '$1:***@').slice(0, 200);
}

export interface PoolOptions {
  /** Connections kept by this process (each replica has its own pool). */
  readonly max?: number;
  readonly connectTimeoutMs?: number;
  /** Application name shown in pg_stat_activity. */
  readonly applicationName?: string;
}

/** A pool for the URL; connections are made lazily, so call checkReachable before serving. */
export function createPool(url: PostgresUrl, opts: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    user: url.user,
    host: url.host,
    port: url.port,
    database: url.database,
    ssl: url.ssl === 'disable' ? false : { rejectUnauthorized: url.ssl === 'verify-full' },
    max: opts.max ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
    idleTimeoutMillis: 30_000,
    application_name: opts.applicationName ?? 'edgeward',
    // BIGINT columns hold epoch milliseconds and counts, all below 2^53: numbers, not strings.
    types: { getTypeParser: typeParser } as unknown as pg.CustomTypesConfig,
  });
  // An idle connection dropped by the server (restart, admin shutdown) is only reported here;
  // the next query opens a new one.
  pool.on('error', () => undefined);
  // A connection checked out between two queries has no listener of the pool's: a server going
  // away then (FATAL 57P01 right after a ReadyForQuery in the same packet) would be an unhandled
  // 'error' event, and the process would exit. The client is then not queryable: its next query
  // fails (ERR_STORE_UNAVAILABLE) and the pool discards it on release.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

const INT8_OID = 20;
function typeParser(oid: number, format?: string): unknown {
  if (oid === INT8_OID && format !== 'binary') return (v: string) => Number(v);
  return (pg.types.getTypeParser as (o: number, f?: string) => unknown)(oid, format);
}

// SQLSTATE classes of a server that cannot be reached or is going away: connection exceptions,
// operator intervention (shutdown, restart), insufficient resources, and a database that is
// not accepting connections (55000, e.g. ALLOW_CONNECTIONS false during maintenance).
const UNAVAILABLE_STATES = /^(08|57P|53|55000$)/;
const UNAVAILABLE_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/** Whether an error means "PostgreSQL is not there right now" (worth a retry, a 503). */
export function isUnavailable(err: unknown): boolean {
  if (err instanceof EdgewardError) return err.code === 'ERR_STORE_UNAVAILABLE';
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_ERRNOS.has(code) || UNAVAILABLE_STATES.test(code)))
    return true;
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    err.message,
  );
}

/**
 * Maps a driver error to ERR_STORE_UNAVAILABLE when the server is unreachable, naming the
 * (redacted) URL and the reason; other errors are returned as they are.
 */
export function storeError(url: PostgresUrl, err: unknown): unknown {
  if (err instanceof EdgewardError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (isUnavailable(err))
    return new EdgewardError(
      'ERR_STORE_UNAVAILABLE',
      `PostgreSQL at ${url.redacted} unreachable: ${reason(err)}`,
      {
        cause: err,
      },
    );
  // Authentication and a missing database: the server answers, but this store cannot be used.
  if (typeof code === 'string' && (code.startsWith('28') || code === '3D000'))
    return new EdgewardError('ERR_STORE_UNAVAILABLE', `PostgreSQL at ${url.redacted}: ${reason(err)}`, {
      cause: err,
    });
  return err;
}

function reason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const msg = typeof e.message === 'string' && e.message !== '' ? e.message : String(err);
  return typeof e.code === 'string' && !msg.includes(e.code) ? `${msg} (${e.code})` : msg;
}

/** Runs one query; an unreachable server becomes ERR_STORE_UNAVAILABLE. */
export async function checkReachable(pool: pg.Pool, url: PostgresUrl): Promise<void> {
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    throw storeError(url, err);
  }
}

export interface Migration {
  /** 1, 2, 3, ... in order; a version once released never changes. */
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * Applies the migrations of one component (`ca`, `siem`) that the database lacks, each in its
 * own transaction, under an advisory lock so that replicas starting together apply them once.
 * Refuses (ERR_STORE_SCHEMA_NEWER) a database migrated by a newer build. Returns the version.
 */
export async function migrate(
  pool: pg.Pool,
  url: PostgresUrl,
  component: string,
  migrations: readonly Migration[],
): Promise<number> {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new TypeError(`migration ${m.name}: version ${m.version}, expected ${i + 1}`);
  });
  const known = migrations.length;
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw storeError(url, err);
  }
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`edgeward.migrate.${component}`]);
    try {
      await client.query(
        `CREATE TABLE IF NOT EXISTS schema_migrations (
           component TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,
           applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (component, version))`,
      );
      const r = await client.query<{ v: number | null }>(
        'SELECT max(version) AS v FROM schema_migrations WHERE component = $1',
        [component],
      );
      const current = r.rows[0]?.v ?? 0;
      if (current > known)
        throw new EdgewardError(
          'ERR_STORE_SCHEMA_NEWER',
          `the ${component} schema in ${url.redacted} is at version ${current}, this build knows versions up to ${known}: upgrade edgeward`,
          { detail: { database: current, code: known } },
        );
      for (const m of migrations.slice(current)) {
        await client.query('BEGIN');
        try {
          await client.query(m.sql);
          await client.query('INSERT INTO schema_migrations (component, version, name) VALUES ($1, $2, $3)', [
            component,
            m.version,
            m.name,
          ]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      }
      return known;
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`edgeward.migrate.${component}`]);
    }
  } catch (err) {
    throw storeError(url, err);
  } finally {
    client.release();
  }
}
