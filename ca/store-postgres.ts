// PostgreSQL adapter of the CA store, for CA replicas sharing one database. Serials are unique
// by the primary key, the hash-chained audit log stays one chain because every append locks its
// head row (SELECT ... FOR UPDATE) inside the transaction, and CRL numbers come from one sequence.
import type pg from 'pg';
import type { TokenRecord } from '../attestation/index.js';
import {
  checkReachable,
  createPool,
  migrate,
  parsePostgresUrl,
  storeError,
  type Migration,
  type PostgresUrl,
} from '../common/postgres.js';
import type { CrlReason } from '../common/x509.js';
import { GENESIS, auditHash, type AuditRecord } from './audit.js';
import { holdPlaced, toCert, toHold, type CertRow, type HoldRow } from './store-rows.js';
import { serialTaken, type AuditEntry, type CaStore, type Revocation, type StoreTx } from './store.js';

/** SQLSTATE unique_violation. */
const UNIQUE_VIOLATION = '23505';

export const CA_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'ca store',
    sql: `
CREATE TABLE ca_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE ca_certificates (
  serial TEXT PRIMARY KEY,
  identity TEXT NOT NULL,
  spki_sha256 TEXT NOT NULL,
  method TEXT NOT NULL,
  not_before BIGINT NOT NULL,
  not_after BIGINT NOT NULL,
  issued_at BIGINT NOT NULL,
  der BYTEA NOT NULL,
  revoked_at BIGINT,
  revocation_reason TEXT,
  row_id BIGSERIAL NOT NULL
);
CREATE INDEX ca_certificates_identity ON ca_certificates (identity, issued_at);
CREATE INDEX ca_certificates_revoked ON ca_certificates (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX ca_certificates_spki ON ca_certificates (spki_sha256);
CREATE TABLE ca_renewal_holds (
  identity TEXT NOT NULL, decision_id TEXT NOT NULL, scope_type TEXT NOT NULL, scope_value TEXT NOT NULL,
  placed_at BIGINT NOT NULL, decision_expires_at BIGINT NOT NULL,
  released_at BIGINT, released_by TEXT,
  PRIMARY KEY (identity, decision_id)
);
CREATE TABLE ca_revoked_identities (identity TEXT PRIMARY KEY, reason TEXT NOT NULL, revoked_at BIGINT NOT NULL);
CREATE TABLE ca_tokens (
  hash TEXT PRIMARY KEY, identity TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL
);
CREATE TABLE ca_bindings (
  identity TEXT NOT NULL, method TEXT NOT NULL, hardware_id TEXT NOT NULL,
  record TEXT NOT NULL, created_at BIGINT NOT NULL,
  PRIMARY KEY (identity, method)
);
CREATE UNIQUE INDEX ca_bindings_hardware ON ca_bindings (method, hardware_id);
CREATE TABLE ca_used_once (
  namespace TEXT NOT NULL, key TEXT NOT NULL, expires_at BIGINT NOT NULL,
  PRIMARY KEY (namespace, key)
);
CREATE INDEX ca_used_once_expiry ON ca_used_once (expires_at);
CREATE TABLE ca_audit (
  seq BIGINT PRIMARY KEY, ts BIGINT NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL,
  prev TEXT NOT NULL, hash TEXT NOT NULL
);
-- The chain's head, one row: every append locks it, so concurrent replicas append in turn.
CREATE TABLE ca_audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL);
INSERT INTO ca_audit_head (id, seq, hash) VALUES (1, 0, '${GENESIS}');
CREATE FUNCTION ca_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$;
CREATE TRIGGER ca_audit_no_change BEFORE UPDATE OR DELETE ON ca_audit
  FOR EACH ROW EXECUTE FUNCTION ca_audit_append_only();
CREATE SEQUENCE ca_crl_number;
`,
  },
];

const CERT_COLUMNS =
  'serial, identity, spki_sha256, method, not_before, not_after, issued_at, der, revoked_at, revocation_reason';

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

export interface PostgresCaStoreOptions {
  /** Stamps bindings (the CA passes its injected clock). */
  readonly now?: () => number;
  /** Connections of this process's pool. */
  readonly poolMax?: number;
}

const AUDIT_PAGE = 1000;

/** Connects, applies the CA's migrations (refusing a newer schema) and returns the store. */
export async function openPostgresCaStore(
  url: string | PostgresUrl,
  opts: PostgresCaStoreOptions = {},
): Promise<CaStore> {
  const u = typeof url === 'string' ? parsePostgresUrl(url) : url;
  const now = opts.now ?? Date.now;
  const pool = createPool(u, { max: opts.poolMax ?? 10, applicationName: 'edgeward-ca' });
  try {
    await checkReachable(pool, u);
    await migrate(pool, u, 'ca', CA_MIGRATIONS);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }

  async function q<R extends pg.QueryResultRow>(
    db: Queryable,
    text: string,
    values: unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    try {
      return await db.query<R>(text, values);
    } catch (err) {
      throw storeError(u, err);
    }
  }

  function reader(db: Queryable): Pick<StoreTx, 'getBinding' | 'findBindingByHardware' | 'wasUsed'> {
    return {
      async getBinding(identity, method) {
        const r = await q<{ record: string }>(
          db,
          'SELECT record FROM ca_bindings WHERE identity = $1 AND method = $2',
          [identity, method],
        );
        const row = r.rows[0];
        return row ? (JSON.parse(row.record) as unknown) : undefined;
      },
      async findBindingByHardware(method, hardwareId) {
        const r = await q<{ identity: string }>(
          db,
          'SELECT identity FROM ca_bindings WHERE method = $1 AND hardware_id = $2',
          [method, hardwareId],
        );
        return r.rows[0]?.identity;
      },
      async wasUsed(namespace, key) {
        const r = await q(db, 'SELECT 1 FROM ca_used_once WHERE namespace = $1 AND key = $2', [
          namespace,
          key,
        ]);
        return r.rowCount === 1;
      },
    };
  }

  function txOf(c: pg.PoolClient): StoreTx {
    return {
      ...reader(c),
      async putBinding(identity, method, hardwareId, record) {
        await q(
          c,
          `INSERT INTO ca_bindings (identity, method, hardware_id, record, created_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (identity, method) DO UPDATE SET hardware_id = excluded.hardware_id, record = excluded.record`,
          [identity, method, hardwareId, JSON.stringify(record), now()],
        );
      },
      async useOnce(namespace, key, expiresAt) {
        const r = await q(
          c,
          'INSERT INTO ca_used_once (namespace, key, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
          [namespace, key, expiresAt],
        );
        return r.rowCount === 1;
      },
      async insertCertificate(rec) {
        // A failed statement aborts the transaction: the caller's whole transaction is refused.
        await q(
          c,
          `INSERT INTO ca_certificates (serial, identity, spki_sha256, method, not_before, not_after, issued_at, der)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [
            rec.serial,
            rec.identity,
            rec.spkiSha256,
            rec.method,
            rec.notBefore,
            rec.notAfter,
            rec.issuedAt,
            rec.der,
          ],
        ).catch((err: unknown) => {
          const e = err as { code?: unknown; constraint?: unknown };
          if (e.code === UNIQUE_VIOLATION && e.constraint === 'ca_certificates_pkey')
            throw serialTaken(rec.serial, err);
          throw err;
        });
      },
      async audit(entry: AuditEntry, at: number): Promise<AuditRecord> {
        // The lock is held to the end of the transaction: one appender at a time, in every replica.
        const head = (
          await q<{ seq: number; hash: string }>(
            c,
            'SELECT seq, hash FROM ca_audit_head WHERE id = 1 FOR UPDATE',
          )
        ).rows[0];
        if (!head) throw new TypeError('ca_audit_head has no row');
        const seq = head.seq + 1;
        const data = JSON.stringify(entry.data);
        const hash = auditHash(head.hash, seq, at, entry.kind, data);
        await q(c, 'INSERT INTO ca_audit (seq, ts, kind, data, prev, hash) VALUES ($1, $2, $3, $4, $5, $6)', [
          seq,
          at,
          entry.kind,
          data,
          head.hash,
          hash,
        ]);
        await q(c, 'UPDATE ca_audit_head SET seq = $1, hash = $2 WHERE id = 1', [seq, hash]);
        return { seq, ts: at, kind: entry.kind, data, prev: head.hash, hash };
      },
    };
  }

  async function transaction<T>(fn: (tx: StoreTx) => Promise<T>, c?: pg.PoolClient): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = c ?? (await pool.connect());
    } catch (err) {
      throw storeError(u, err);
    }
    let broken: unknown;
    try {
      await q(client, 'BEGIN');
      const out = await fn(txOf(client));
      await q(client, 'COMMIT');
      return out;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (e) {
        broken = e;
      }
      throw err;
    } finally {
      // A connection that failed mid-transaction is discarded, not returned to the pool.
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  /** Runs fn in a transaction with its own statements (the domain operations below). */
  const withClient = <T>(fn: (c: pg.PoolClient, tx: StoreTx) => Promise<T>): Promise<T> =>
    pool.connect().then(
      (c) => transaction((tx) => fn(c, tx), c),
      (err: unknown) => {
        throw storeError(u, err);
      },
    );

  return {
    ...reader(pool),
    async getMeta(key) {
      return (await q<{ value: string }>(pool, 'SELECT value FROM ca_meta WHERE key = $1', [key])).rows[0]
        ?.value;
    },
    async setMeta(key, value) {
      await q(
        pool,
        'INSERT INTO ca_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        [key, value],
      );
    },
    transaction: (fn) => transaction(fn),
    audit: (entry, at) => transaction((tx) => tx.audit(entry, at)),
    async getCertificate(serial) {
      const r = await q<CertRow>(pool, `SELECT ${CERT_COLUMNS} FROM ca_certificates WHERE serial = $1`, [
        serial,
      ]);
      const row = r.rows[0];
      return row ? toCert(row) : undefined;
    },
    async certificatesOf(identity) {
      const r = await q<CertRow>(
        pool,
        `SELECT ${CERT_COLUMNS} FROM ca_certificates WHERE identity = $1 ORDER BY issued_at, row_id`,
        [identity],
      );
      return r.rows.map(toCert);
    },
    async identities() {
      const r = await q<{ identity: string }>(
        pool,
        'SELECT identity FROM ca_certificates UNION SELECT identity FROM ca_bindings ORDER BY identity',
      );
      return r.rows.map((row) => row.identity);
    },
    async bindingsOf(identity) {
      const r = await q<{ method: string; hardware_id: string; created_at: number }>(
        pool,
        'SELECT method, hardware_id, created_at FROM ca_bindings WHERE identity = $1 ORDER BY method',
        [identity],
      );
      return r.rows.map((row) => ({
        method: row.method,
        hardwareId: row.hardware_id,
        createdAt: row.created_at,
      }));
    },
    async enrolledMethod(identity) {
      const r = await q<{ method: string }>(
        pool,
        'SELECT method FROM ca_certificates WHERE identity = $1 ORDER BY issued_at DESC, row_id DESC LIMIT 1',
        [identity],
      );
      return r.rows[0]?.method;
    },
    revokeSerial: (serial, reason, at, by) =>
      withClient(async (c, tx) => {
        const r = await q(
          c,
          'UPDATE ca_certificates SET revoked_at = $1, revocation_reason = $2 WHERE serial = $3 AND revoked_at IS NULL',
          [at, reason, serial],
        );
        const changed = r.rowCount === 1;
        if (changed) await tx.audit({ kind: 'revoke', data: { serial, reason, by } }, at);
        return changed;
      }),
    revokeIdentity: (identity, reason, at, by) =>
      withClient(async (c, tx) => {
        const r = await q<{ serial: string }>(
          c,
          `UPDATE ca_certificates SET revoked_at = $1, revocation_reason = $2
           WHERE identity = $3 AND revoked_at IS NULL AND not_after > $1 RETURNING serial`,
          [at, reason, identity],
        );
        const serials = r.rows.map((x) => x.serial).sort();
        await q(
          c,
          'INSERT INTO ca_revoked_identities (identity, reason, revoked_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
          [identity, reason, at],
        );
        await tx.audit({ kind: 'revoke', data: { identity, serials, reason, by } }, at);
        return serials;
      }),
    async isIdentityRevoked(identity) {
      return (
        (await q(pool, 'SELECT 1 FROM ca_revoked_identities WHERE identity = $1', [identity])).rowCount === 1
      );
    },
    async revocationCount() {
      const r = await q<{ n: number }>(
        pool,
        'SELECT count(*)::bigint AS n FROM ca_certificates WHERE revoked_at IS NOT NULL',
      );
      return r.rows[0]?.n ?? 0;
    },
    async revocations(at): Promise<Revocation[]> {
      const r = await q<{ serial: string; revoked_at: number; revocation_reason: string }>(
        pool,
        `SELECT serial, revoked_at, revocation_reason FROM ca_certificates
         WHERE revoked_at IS NOT NULL AND not_after > $1 ORDER BY revoked_at, serial`,
        [at],
      );
      return r.rows.map((x) => ({
        serial: x.serial,
        revokedAt: x.revoked_at,
        reason: x.revocation_reason as CrlReason,
      }));
    },
    async nextCrlNumber() {
      const r = await q<{ n: number }>(pool, "SELECT nextval('ca_crl_number') AS n");
      return r.rows[0]?.n ?? 1;
    },
    releaseBindings: (identity, at, by) =>
      withClient(async (c, tx) => {
        const n = (await q(c, 'DELETE FROM ca_bindings WHERE identity = $1', [identity])).rowCount ?? 0;
        await tx.audit({ kind: 'release', data: { identity, bindings: n, by } }, at);
        return n;
      }),
    async certificatesBySpki(spki, at) {
      const r = await q<CertRow>(
        pool,
        `SELECT ${CERT_COLUMNS} FROM ca_certificates WHERE spki_sha256 = $1 AND not_after > $2 ORDER BY issued_at, row_id`,
        [spki, at],
      );
      return r.rows.map(toCert);
    },
    placeHold: (h, at) =>
      withClient(async (c, tx) => {
        const r = await q(
          c,
          `INSERT INTO ca_renewal_holds (identity, decision_id, scope_type, scope_value, placed_at, decision_expires_at)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
          [h.identity, h.decisionId, h.scope.type, h.scope.value, h.placedAt, h.decisionExpiresAt],
        );
        const placed = r.rowCount === 1;
        if (placed) await tx.audit(holdPlaced(h), at);
        return placed;
      }),
    async holds() {
      return (await q<HoldRow>(pool, 'SELECT * FROM ca_renewal_holds ORDER BY placed_at, identity')).rows.map(
        toHold,
      );
    },
    async activeHold(identity) {
      const r = await q<HoldRow>(
        pool,
        'SELECT * FROM ca_renewal_holds WHERE identity = $1 AND released_at IS NULL ORDER BY placed_at LIMIT 1',
        [identity],
      );
      const row = r.rows[0];
      return row ? toHold(row) : undefined;
    },
    releaseHolds: (identity, at, by, decisionId) =>
      withClient(async (c, tx) => {
        const r = await q(
          c,
          `UPDATE ca_renewal_holds SET released_at = $1, released_by = $2
           WHERE identity = $3 AND released_at IS NULL AND ($4::text IS NULL OR decision_id = $4)`,
          [at, by, identity, decisionId ?? null],
        );
        const n = r.rowCount ?? 0;
        if (n > 0)
          await tx.audit(
            { kind: 'hold.release', data: { identity, decision: decisionId, holds: n, by } },
            at,
          );
        return n;
      }),
    createToken: (rec: TokenRecord, at) =>
      withClient(async (c, tx) => {
        await q(c, 'INSERT INTO ca_tokens (hash, identity, created_at, expires_at) VALUES ($1, $2, $3, $4)', [
          rec.hash,
          rec.identity,
          rec.createdAt,
          rec.expiresAt,
        ]);
        await tx.audit(
          { kind: 'token.create', data: { identity: rec.identity, expiresAt: rec.expiresAt } },
          at,
        );
      }),
    async getToken(hash) {
      const r = await q<{ identity: string; created_at: number; expires_at: number }>(
        pool,
        'SELECT identity, created_at, expires_at FROM ca_tokens WHERE hash = $1',
        [hash],
      );
      const row = r.rows[0];
      return row
        ? { hash, identity: row.identity, createdAt: row.created_at, expiresAt: row.expires_at }
        : undefined;
    },
    async *auditRecords(): AsyncIterable<AuditRecord> {
      let after = 0;
      for (;;) {
        const page = (
          await q<AuditRecord>(
            pool,
            'SELECT seq, ts, kind, data, prev, hash FROM ca_audit WHERE seq > $1 ORDER BY seq LIMIT $2',
            [after, AUDIT_PAGE],
          )
        ).rows;
        yield* page;
        const last = page.at(-1);
        if (last === undefined || page.length < AUDIT_PAGE) return;
        after = last.seq;
      }
    },
    async purgeExpired(at) {
      await q(pool, 'DELETE FROM ca_used_once WHERE expires_at < $1', [at]);
    },
    close: () => pool.end(),
  };
}
