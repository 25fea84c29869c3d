// PostgreSQL adapter of the CA store, for CA replicas sharing one database. Serials are unique
// by the primary key, the hash-chained audit log stays one chain because every append locks its
// head row (ca_audit_append, inside the writing statement), and CRL numbers come from one
// sequence. Group commit: the certificate inserts and audit appends of the transactions that
// finish together are written by one statement (one round trip, one commit), and each settles
// only once that commit is durable.
import type pg from 'pg';
import type { TokenRecord } from '../attestation/index.js';
import {
  checkReachable,
  createPool,
  isUnavailable,
  migrate,
  parsePostgresUrl,
  storeError,
  type Migration,
  type PostgresUrl,
} from '../common/postgres.js';
import type { CrlReason } from '../common/x509.js';
import { GENESIS, type AuditRecord } from './audit.js';
import { holdPlaced, toCert, toHold, type CertRow, type HoldRow } from './store-rows.js';
import {
  serialTaken,
  type AuditEntry,
  type CaStore,
  type CertRecord,
  type Revocation,
  type StoreTx,
} from './store.js';

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
  {
    version: 2,
    name: 'audit append in one statement',
    // The chain is extended where the head is locked, so the lock is held for one statement and
    // its commit rather than for the round trips of a client computing the hashes. The hash is
    // the one ca/audit.ts auditHash computes (and `ca audit verify` checks):
    // sha256 hex of "prev|seq|ts|kind|data" in UTF-8.
    sql: `
CREATE FUNCTION ca_audit_append(kinds TEXT[], tss BIGINT[], datas TEXT[])
RETURNS TABLE (r_seq BIGINT, r_prev TEXT, r_hash TEXT) LANGUAGE plpgsql AS $$
DECLARE
  s BIGINT;
  h TEXT;
  p TEXT;
BEGIN
  IF coalesce(cardinality(kinds), 0) = 0 THEN RETURN; END IF;
  IF cardinality(tss) <> cardinality(kinds) OR cardinality(datas) <> cardinality(kinds) THEN
    RAISE EXCEPTION 'ca_audit_append: arrays of different lengths';
  END IF;
  SELECT head.seq, head.hash INTO s, h FROM ca_audit_head head WHERE head.id = 1 FOR UPDATE;
  FOR i IN 1 .. cardinality(kinds) LOOP
    p := h;
    s := s + 1;
    h := encode(sha256(convert_to(p || '|' || s || '|' || tss[i] || '|' || kinds[i] || '|' || datas[i], 'UTF8')), 'hex');
    INSERT INTO ca_audit (seq, ts, kind, data, prev, hash) VALUES (s, tss[i], kinds[i], datas[i], p, h);
    r_seq := s;
    r_prev := p;
    r_hash := h;
    RETURN NEXT;
  END LOOP;
  UPDATE ca_audit_head SET seq = s, hash = h WHERE id = 1;
END $$;
`,
  },
];

/** Writes a group's certificates and audit records in one statement (its own transaction or the caller's). */
const WRITE_SQL = `WITH certs AS (
  INSERT INTO ca_certificates (serial, identity, spki_sha256, method, not_before, not_after, issued_at, der)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bytea[])
)
SELECT r_seq, r_prev, r_hash FROM ca_audit_append($9::text[], $10::bigint[], $11::text[])`;

/** The most transactions one statement writes. */
const MAX_GROUP = 256;

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

  // Every statement is prepared once per connection, by a name of its own: the server parses
  // and plans it once rather than on every execution.
  const names = new Map<string, string>();
  const nameOf = (text: string): string => {
    let n = names.get(text);
    if (n === undefined) names.set(text, (n = `ca_${names.size + 1}`));
    return n;
  };

  async function q<R extends pg.QueryResultRow>(
    db: Queryable,
    text: string,
    values: unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    try {
      return await db.query<R>({ name: nameOf(text), text, values });
    } catch (err) {
      throw storeError(u, err);
    }
  }

  function reader(
    db: () => Queryable | Promise<Queryable>,
  ): Pick<StoreTx, 'getBinding' | 'findBindingByHardware' | 'wasUsed'> {
    return {
      async getBinding(identity, method) {
        const r = await q<{ record: string }>(
          await db(),
          'SELECT record FROM ca_bindings WHERE identity = $1 AND method = $2',
          [identity, method],
        );
        const row = r.rows[0];
        return row ? (JSON.parse(row.record) as unknown) : undefined;
      },
      async findBindingByHardware(method, hardwareId) {
        const r = await q<{ identity: string }>(
          await db(),
          'SELECT identity FROM ca_bindings WHERE method = $1 AND hardware_id = $2',
          [method, hardwareId],
        );
        return r.rows[0]?.identity;
      },
      async wasUsed(namespace, key) {
        const r = await q(await db(), 'SELECT 1 FROM ca_used_once WHERE namespace = $1 AND key = $2', [
          namespace,
          key,
        ]);
        return r.rowCount === 1;
      },
    };
  }

  /** The writes a transaction defers to its commit. */
  interface Writes {
    readonly certs: Omit<CertRecord, 'revokedAt' | 'revocationReason'>[];
    readonly audits: { readonly kind: string; readonly ts: number; readonly data: string }[];
  }
  const isEmpty = (w: Writes): boolean => w.certs.length === 0 && w.audits.length === 0;

  /** Writes the certificates and audit records of several transactions in one statement. */
  async function write(db: Queryable, groups: readonly Writes[]): Promise<AuditRecord[]> {
    const certs = groups.flatMap((g) => g.certs);
    const audits = groups.flatMap((g) => g.audits);
    let r: pg.QueryResult<{ r_seq: number; r_prev: string; r_hash: string }>;
    try {
      r = await db.query({
        name: nameOf(WRITE_SQL),
        text: WRITE_SQL,
        values: [
          certs.map((c) => c.serial),
          certs.map((c) => c.identity),
          certs.map((c) => c.spkiSha256),
          certs.map((c) => c.method),
          certs.map((c) => c.notBefore),
          certs.map((c) => c.notAfter),
          certs.map((c) => c.issuedAt),
          certs.map((c) => c.der),
          audits.map((a) => a.kind),
          audits.map((a) => a.ts),
          audits.map((a) => a.data),
        ],
      });
    } catch (err) {
      const e = err as { code?: unknown; constraint?: unknown; detail?: unknown };
      if (e.code === UNIQUE_VIOLATION && e.constraint === 'ca_certificates_pkey') {
        const named = typeof e.detail === 'string' ? /\(serial\)=\(([^)]*)\)/.exec(e.detail)?.[1] : undefined;
        throw serialTaken(named ?? certs[0]?.serial ?? '', err);
      }
      throw storeError(u, err);
    }
    if (r.rows.length !== audits.length) throw new TypeError('ca_audit_append returned another count');
    return r.rows.map((row, i) => {
      const a = audits[i] as Writes['audits'][number];
      return { seq: row.r_seq, ts: a.ts, kind: a.kind, data: a.data, prev: row.r_prev, hash: row.r_hash };
    });
  }

  /**
   * One transaction. Certificate inserts and audit appends are deferred to its commit; the first
   * operation that needs an answer from the database (a single-use marker, a binding, a read)
   * opens a transaction of its own on a pooled connection, which the commit then finishes.
   */
  class Job {
    readonly writes: Writes = { certs: [], audits: [] };
    private client: Promise<pg.PoolClient> | undefined;
    private broken: Error | undefined;

    /** The job's own connection, in a transaction (opened on first use). */
    own(): Promise<pg.PoolClient> {
      this.client ??= pool.connect().then(
        async (c) => {
          try {
            await c.query('BEGIN');
          } catch (err) {
            c.release(err instanceof Error ? err : true);
            throw storeError(u, err);
          }
          return c;
        },
        (err: unknown) => {
          throw storeError(u, err);
        },
      );
      return this.client;
    }

    get opened(): boolean {
      return this.client !== undefined;
    }

    /** Writes the deferred records and commits the job's own transaction. */
    async commit(): Promise<AuditRecord[]> {
      const c = await this.own();
      const records = isEmpty(this.writes) ? [] : await write(c, [this.writes]);
      await q(c, 'COMMIT');
      return records;
    }

    async rollback(): Promise<void> {
      if (!this.client) return;
      const c = await this.client.catch(() => undefined);
      if (!c) return;
      try {
        await c.query('ROLLBACK');
      } catch (e) {
        this.broken = e instanceof Error ? e : new Error(String(e));
      }
    }

    /** Returns the connection to the pool, discarding one that failed mid-transaction. */
    async release(): Promise<void> {
      const c = await this.client?.catch(() => undefined);
      this.client = undefined;
      c?.release(this.broken);
    }

    tx(): StoreTx {
      const own = (): Promise<pg.PoolClient> => this.own();
      return {
        ...reader(own),
        putBinding: async (identity, method, hardwareId, record) => {
          await q(
            await own(),
            `INSERT INTO ca_bindings (identity, method, hardware_id, record, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (identity, method) DO UPDATE SET hardware_id = excluded.hardware_id, record = excluded.record`,
            [identity, method, hardwareId, JSON.stringify(record), now()],
          );
        },
        useOnce: async (namespace, key, expiresAt) => {
          const r = await q(
            await own(),
            'INSERT INTO ca_used_once (namespace, key, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
            [namespace, key, expiresAt],
          );
          return r.rowCount === 1;
        },
        insertCertificate: (rec) => {
          this.writes.certs.push({ ...rec });
          return Promise.resolve();
        },
        audit: (entry, at) => {
          this.writes.audits.push({ kind: entry.kind, ts: at, data: JSON.stringify(entry.data) });
          return Promise.resolve();
        },
      };
    }
  }

  // Group commit of the transactions that needed no connection of their own: those finished
  // while a group is being written wait and form the next group, so the group grows with the
  // load and one replica has one writing statement in flight.
  interface Queued {
    readonly writes: Writes;
    readonly resolve: (records: AuditRecord[]) => void;
    readonly reject: (err: unknown) => void;
  }
  let queue: Queued[] = [];
  let flushing = false;

  function submit(writes: Writes): Promise<AuditRecord[]> {
    return new Promise((resolve, reject) => {
      queue.push({ writes, resolve, reject });
      if (!flushing) {
        flushing = true;
        setImmediate(() => void flush());
      }
    });
  }

  async function flush(): Promise<void> {
    try {
      while (queue.length > 0) {
        const group = queue.slice(0, MAX_GROUP);
        queue = queue.slice(group.length);
        await writeGroup(group);
      }
    } finally {
      flushing = false;
    }
  }

  async function writeGroup(group: readonly Queued[]): Promise<void> {
    let records: AuditRecord[];
    try {
      records = await write(
        pool,
        group.map((g) => g.writes),
      );
    } catch (err) {
      // One refused write (a serial taken) fails the statement: each is then written alone, so
      // only its own transaction is refused. An unreachable server fails them all.
      if (group.length > 1 && !isUnavailable(err)) {
        for (const g of group) await writeGroup([g]);
        return;
      }
      for (const g of group) g.reject(err);
      return;
    }
    let at = 0;
    for (const g of group) {
      g.resolve(records.slice(at, at + g.writes.audits.length));
      at += g.writes.audits.length;
    }
  }

  async function run<T>(fn: (job: Job) => Promise<T>): Promise<{ out: T; records: AuditRecord[] }> {
    const job = new Job();
    try {
      const out = await fn(job);
      let records: AuditRecord[] = [];
      if (job.opened) records = await job.commit();
      else if (!isEmpty(job.writes)) records = await submit(job.writes);
      return { out, records };
    } catch (err) {
      await job.rollback();
      throw err;
    } finally {
      await job.release();
    }
  }

  const transaction = async <T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> =>
    (await run((job) => fn(job.tx()))).out;

  /** Runs fn in a transaction of its own connection (the domain operations below). */
  const withClient = async <T>(fn: (c: pg.PoolClient, tx: StoreTx) => Promise<T>): Promise<T> =>
    (await run(async (job) => fn(await job.own(), job.tx()))).out;

  async function audit(entry: AuditEntry, at: number): Promise<AuditRecord> {
    const { records } = await run((job) => job.tx().audit(entry, at));
    const rec = records[0];
    if (!rec) throw new TypeError('audit append returned no record');
    return rec;
  }
  return {
    ...reader(() => pool),
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
    transaction,
    audit,
    async getCertificate(serial) {
      const r = await q<CertRow>(pool, `SELECT ${CERT_COLUMNS} FROM ca_certificates WHERE serial = $1`, [
        serial,
      ]);
      const row = r.rows[0];
      return row ? toCert(row) : undefined;
    },
    async standing(identity, serial) {
      const r = await q<
        Partial<CertRow> & {
          identity_revoked: boolean;
          enrolled_method: string | null;
          h_decision_id: string | null;
          h_scope_type: string;
          h_scope_value: string;
          h_placed_at: number;
          h_decision_expires_at: number;
        }
      >(
        pool,
        `SELECT ${CERT_COLUMNS.split(', ')
          .map((col) => `c.${col}`)
          .join(', ')},
           EXISTS (SELECT 1 FROM ca_revoked_identities WHERE identity = $1) AS identity_revoked,
           (SELECT method FROM ca_certificates WHERE identity = $1 ORDER BY issued_at DESC, row_id DESC LIMIT 1)
             AS enrolled_method,
           h.decision_id AS h_decision_id, h.scope_type AS h_scope_type, h.scope_value AS h_scope_value,
           h.placed_at AS h_placed_at, h.decision_expires_at AS h_decision_expires_at
         FROM (SELECT 1) AS one
         LEFT JOIN ca_certificates c ON c.serial = $2::text
         LEFT JOIN LATERAL (SELECT * FROM ca_renewal_holds WHERE identity = $1 AND released_at IS NULL
                            ORDER BY placed_at LIMIT 1) h ON true`,
        [identity, serial ?? null],
      );
      const row = r.rows[0];
      if (!row) throw new TypeError('standing: no row');
      return {
        certificate: typeof row.serial === 'string' ? toCert(row as CertRow) : undefined,
        identityRevoked: row.identity_revoked,
        hold:
          row.h_decision_id === null
            ? undefined
            : toHold({
                identity,
                decision_id: row.h_decision_id,
                scope_type: row.h_scope_type,
                scope_value: row.h_scope_value,
                placed_at: row.h_placed_at,
                decision_expires_at: row.h_decision_expires_at,
                released_at: null,
                released_by: null,
              }),
        enrolledMethod: row.enrolled_method ?? undefined,
      };
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
