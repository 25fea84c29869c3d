// The stores beside the SIEM store on PostgreSQL, shared by replicas: the acknowledgement ledger
// (each ack locks its agent's row), dashboard users (scrypt hashes made by siem/dashboard/users.ts)
// and sessions (by the hash of their id; the cap is kept under an advisory lock, so two replicas
// making sessions at once never keep more than it).
import type pg from 'pg';
import { EdgewardError } from '../../../common/errors.js';
import { storeError as pgError, type PostgresUrl } from '../../../common/postgres.js';
import {
  ACK_HISTORY,
  type AckRecord,
  type AckStore,
  type SessionRecord,
  type SessionStore,
  type UserRecord,
  type UserStore,
} from '../store.js';

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

/** SQLSTATEs of a transaction PostgreSQL aborted so that others could go on (a deadlock, a
 * serialization failure): nothing of it was written, and running it again is safe. */
const ABORTED_FOR_OTHERS = new Set(['40P01', '40001']);
/** How long a replica's word on its connected agents is kept after it last spoke (ms). */
const PRESENCE_KEPT_MS = 60_000;
/** Runs of such a transaction at the most, the first included. */
const TX_ATTEMPTS = 4;

/** Queries on one pool, with the store's coded errors. */
export class PgRunner {
  readonly pool: pg.Pool;
  readonly url: PostgresUrl;

  constructor(pool: pg.Pool, url: PostgresUrl) {
    this.pool = pool;
    this.url = url;
  }

  fail(err: unknown, what: string): unknown {
    if (err instanceof TypeError || err instanceof EdgewardError) return err;
    const e = pgError(this.url, err);
    if (e instanceof EdgewardError) return e;
    return new EdgewardError('ERR_SIEM_STORE', `event store: ${what} failed`, { cause: err });
  }

  async q<R extends pg.QueryResultRow>(
    what: string,
    text: string,
    values: unknown[] = [],
    db: Queryable = this.pool,
  ): Promise<pg.QueryResult<R>> {
    try {
      return await db.query<R>(text, values);
    } catch (err) {
      throw this.fail(err, what);
    }
  }

  /** Runs fn in one transaction on a connection of its own (discarded if the rollback fails). */
  async tx<T>(what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let c: pg.PoolClient;
    try {
      c = await this.pool.connect();
    } catch (err) {
      throw this.fail(err, what);
    }
    let broken: Error | undefined;
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      try {
        await c.query('ROLLBACK');
      } catch (e) {
        broken = e instanceof Error ? e : new Error(String(e));
      }
      throw this.fail(err, what);
    } finally {
      c.release(broken);
    }
  }

  /**
   * `tx`, run again when PostgreSQL aborted it for a deadlock or a serialization failure (another
   * replica's transaction over the same rows), after a short random wait. For transactions whose
   * only effects are in the database: an aborted one left none.
   */
  async txRetried<T>(what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.tx(what, fn);
      } catch (err) {
        const code = (err as { cause?: { code?: unknown } }).cause?.code;
        if (attempt >= TX_ATTEMPTS || typeof code !== 'string' || !ABORTED_FOR_OTHERS.has(code)) throw err;
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * attempt));
      }
    }
  }
}

type AckRow = { identity: string; acked: number; acked_at: number; history: [number, number][] };

const ackRecord = (r: AckRow): AckRecord => ({
  identity: r.identity,
  acked: r.acked,
  ackedAt: r.acked_at,
  history: r.history,
});

export function postgresAckStore(db: PgRunner): AckStore {
  return {
    ack: (identity, revision, at) =>
      db.tx('record an acknowledgement', async (c) => {
        await c.query(
          `INSERT INTO siem_agent_acks (identity, acked, acked_at, history) VALUES ($1, $2, $3, '[]')
           ON CONFLICT (identity) DO NOTHING`,
          [identity, revision, at],
        );
        const row = (
          await c.query<AckRow>(
            'SELECT identity, acked, acked_at, history FROM siem_agent_acks WHERE identity = $1 FOR UPDATE',
            [identity],
          )
        ).rows[0] as AckRow;
        const history = [...row.history];
        if (history.length === 0 || revision > row.acked) {
          history.push([revision, at]);
          if (history.length > ACK_HISTORY) history.splice(0, history.length - ACK_HISTORY);
        }
        await c.query(
          'UPDATE siem_agent_acks SET acked = $2, acked_at = $3, history = $4::jsonb WHERE identity = $1',
          [identity, revision, at, JSON.stringify(history)],
        );
      }),
    async setPresence(replica, connected, at) {
      const ids = [...connected.keys()];
      await db.txRetried('share the agents connected here', async (c) => {
        await c.query('DELETE FROM siem_agent_presence WHERE replica = $1', [replica]);
        if (ids.length > 0)
          await c.query(
            `INSERT INTO siem_agent_presence (replica, identity, connected, at)
             SELECT $1::text, i, n, $4::bigint FROM unnest($2::text[], $3::int[]) AS u (i, n)`,
            [replica, ids, ids.map((id) => connected.get(id)), at],
          );
        // What replicas that stopped saying anything said long ago (a process killed, a host gone).
        await c.query('DELETE FROM siem_agent_presence WHERE at < $1', [at - PRESENCE_KEPT_MS]);
      });
    },
    async presence(except, since) {
      const r = await db.q<{ identity: string; n: string }>(
        'read the agents connected to other replicas',
        `SELECT identity, sum(connected) AS n FROM siem_agent_presence
         WHERE replica <> $1 AND at >= $2 GROUP BY identity`,
        [except, since],
      );
      return new Map(r.rows.map((row) => [row.identity, Number(row.n)]));
    },
    async list(limit = 100_000) {
      const r = await db.q<AckRow>(
        'list acknowledgements',
        'SELECT identity, acked, acked_at, history FROM siem_agent_acks ORDER BY identity COLLATE "C" LIMIT $1',
        [Math.max(1, Math.floor(limit))],
      );
      return r.rows.map(ackRecord);
    },
  };
}

export function postgresUserStore(db: PgRunner): UserStore {
  return {
    async insert(u: UserRecord) {
      const r = await db.q(
        'add a user',
        `INSERT INTO siem_users (name, role, hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING`,
        [u.name, u.role, u.hash, u.createdAt],
      );
      return r.rowCount === 1;
    },
    async get(name) {
      const r = await db.q<{ name: string; role: UserRecord['role']; hash: string; created_at: number }>(
        'read a user',
        'SELECT name, role, hash, created_at FROM siem_users WHERE name = $1',
        [name],
      );
      const row = r.rows[0];
      return row && { name: row.name, role: row.role, hash: row.hash, createdAt: row.created_at };
    },
    async list() {
      const r = await db.q<{ name: string; role: UserRecord['role'] }>(
        'list users',
        'SELECT name, role FROM siem_users ORDER BY name COLLATE "C"',
      );
      return r.rows;
    },
  };
}

type SessionRow = {
  key: string;
  user_name: string;
  role: SessionRecord['role'];
  csrf: string;
  created_at: number;
  last_seen: number;
};

export function postgresSessionStore(db: PgRunner): SessionStore {
  return {
    insert: (s, max) =>
      db.tx('make a session', async (c) => {
        await c.query(`SELECT pg_advisory_xact_lock(hashtext('edgeward.siem.sessions'))`);
        const count = (await c.query<{ n: number }>('SELECT count(*)::bigint AS n FROM siem_sessions'))
          .rows[0]?.n as number;
        const over = count - Math.max(1, max) + 1;
        if (over > 0)
          await c.query(
            `DELETE FROM siem_sessions WHERE key IN (
               SELECT key FROM siem_sessions ORDER BY created_at, row_id LIMIT $1)`,
            [over],
          );
        await c.query(
          `INSERT INTO siem_sessions (key, user_name, role, csrf, created_at, last_seen) VALUES ($1, $2, $3, $4, $5, $6)`,
          [s.key, s.user, s.role, s.csrf, s.createdAt, s.lastSeen],
        );
      }),
    async get(key) {
      const r = await db.q<SessionRow>(
        'read a session',
        'SELECT key, user_name, role, csrf, created_at, last_seen FROM siem_sessions WHERE key = $1',
        [key],
      );
      const row = r.rows[0];
      return (
        row && {
          key: row.key,
          user: row.user_name,
          role: row.role,
          csrf: row.csrf,
          createdAt: row.created_at,
          lastSeen: row.last_seen,
        }
      );
    },
    async touch(key, lastSeen) {
      await db.q(
        'touch a session',
        'UPDATE siem_sessions SET last_seen = greatest(last_seen, $2) WHERE key = $1',
        [key, lastSeen],
      );
    },
    async delete(key) {
      await db.q('end a session', 'DELETE FROM siem_sessions WHERE key = $1', [key]);
    },
    async sweep(idleBefore, createdBefore) {
      const r = await db.q(
        'expire sessions',
        'DELETE FROM siem_sessions WHERE last_seen < $1 OR created_at < $2',
        [idleBefore, createdBefore],
      );
      return r.rowCount ?? 0;
    },
  };
}
