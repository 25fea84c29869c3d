// A PostgreSQL 15 cluster of a test's own, in a temp folder on a free port, for fault tests
// that restart or stop the server (the machine's shared cluster on 5432 is never restarted).
// Trust auth on 127.0.0.1; run as the `postgres` user when the test runs as root. A missing
// initdb fails with the package to install.
import { execFile, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePortRange } from './ports.js';

export interface PrivatePostgres {
  readonly port: number;
  /** The folder holding the cluster (data/) and its socket and log. */
  readonly dir: string;
  /** postgres://postgres@127.0.0.1:PORT/<database> */
  url(database?: string): string;
  createDatabase(name: string): Promise<void>;
  /**
   * pg_ctl restart -m fast|immediate, without blocking the event loop (load generated in this
   * process keeps running); resolves once the server accepts connections again.
   */
  restart(mode?: 'fast' | 'immediate'): Promise<void>;
  /** pg_ctl stop -m fast|immediate. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
  /** Stops the server (immediate) and removes the folder. */
  destroy(): void;
}

interface PgUser {
  readonly uid: number;
  readonly gid: number;
}

function postgresUser(): PgUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0)
    throw new Error('running as root, but there is no postgres user to run initdb and pg_ctl as');
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

function run(user: PgUser | undefined, cmd: string, args: string[]): SpawnSyncReturns<string> {
  const [file, argv] = user ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  return spawnSync(file, argv, { encoding: 'utf8', timeout: 120_000 });
}

function runAsync(user: PgUser | undefined, cmd: string, args: string[]): Promise<SpawnSyncReturns<string>> {
  const [file, argv] = user ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  return new Promise((resolve) => {
    execFile(file, argv, { encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ pid: 0, output: [], stdout, stderr, status, signal: null, ...(err ? { error: err } : {}) });
    });
  });
}

function must(r: SpawnSyncReturns<string>, what: string): void {
  if (r.status !== 0)
    throw new Error(
      `${what} failed (status ${r.status}): ${(r.stderr || r.stdout || String(r.error)).trim()}`,
    );
}

/** initdb + pg_ctl start on a free port; fails with a clear message when PostgreSQL 15 is missing. */
export async function startPrivatePostgres(
  prefix = 'edgeward-pg-',
  bin = process.env['EDGEWARD_PG_BIN'] ?? '/usr/lib/postgresql/15/bin',
): Promise<PrivatePostgres> {
  const initdb = join(bin, 'initdb');
  if (!existsSync(initdb))
    throw new Error(
      `${initdb} not found: a private PostgreSQL needs the server binaries (apt-get install -y postgresql-15, ` +
        'or set EDGEWARD_PG_BIN to the folder holding initdb and pg_ctl)',
    );
  const user = postgresUser();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (user) chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  must(
    run(user, initdb, ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']),
    'initdb',
  );
  const port = await freePortRange(1);
  const pgCtl = join(bin, 'pg_ctl');
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=100`;
  const ctl = async (args: string[], what: string): Promise<void> =>
    must(await runAsync(user, pgCtl, ['-D', data, '-l', log, ...args]), what);
  const start = (): Promise<void> => ctl(['-o', opts, '-w', '-t', '60', 'start'], 'pg_ctl start');
  await start();
  const url = (database = 'postgres'): string => `postgres://postgres@127.0.0.1:${port}/${database}`;
  return {
    port,
    dir,
    url,
    async createDatabase(name) {
      const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
    },
    restart: (mode = 'fast') =>
      ctl(['-o', opts, '-m', mode, '-w', '-t', '60', 'restart'], `pg_ctl restart -m ${mode}`),
    stop: (mode = 'fast') => ctl(['-m', mode, '-w', '-t', '60', 'stop'], `pg_ctl stop -m ${mode}`),
    start,
    destroy() {
      run(user, pgCtl, ['-D', data, '-m', 'immediate', '-w', 'stop']);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
