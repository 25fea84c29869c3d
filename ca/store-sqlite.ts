// SQLite adapter of the CA store (better-sqlite3, WAL), the embedded default. Each transaction
// is atomic (certificate, single-use markers, bindings and the audit record, or nothing); the
// transactions of one event-loop turn share one commit (group commit), each in a savepoint.
import Database from 'better-sqlite3';
import type { AuditRecord } from './audit.js';
import { GENESIS, auditHash } from './audit.js';
import type { TokenRecord } from '../attestation/index.js';
import { serialTaken, type AuditEntry, type CaStore, type Revocation, type StoreTx } from './store.js';
import { EdgewardError } from '../common/errors.js';
import { privateDatabase } from '../common/private-files.js';
import type { CrlReason } from '../common/x509.js';
import { holdPlaced, toCert, toHold, type CertRow, type HoldRow } from './store-rows.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS certificates (
  serial TEXT PRIMARY KEY,
  identity TEXT NOT NULL,
  spki_sha256 TEXT NOT NULL,
  method TEXT NOT NULL,
  not_before INTEGER NOT NULL,
  not_after INTEGER NOT NULL,
  issued_at INTEGER NOT NULL,
  der BLOB NOT NULL,
  revoked_at INTEGER,
  revocation_reason TEXT
);
CREATE INDEX IF NOT EXISTS certificates_identity ON certificates (identity, issued_at);
CREATE INDEX IF NOT EXISTS certificates_revoked ON certificates (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS certificates_spki ON certificates (spki_sha256);
-- Renewal holds placed after the SIEM quarantined one of an identity's credentials (ca/quarantine.ts).
CREATE TABLE IF NOT EXISTS renewal_holds (
  identity TEXT NOT NULL, decision_id TEXT NOT NULL, scope_type TEXT NOT NULL, scope_value TEXT NOT NULL,
  placed_at INTEGER NOT NULL, decision_expires_at INTEGER NOT NULL,
  released_at INTEGER, released_by TEXT,
  PRIMARY KEY (identity, decision_id)
);
CREATE TABLE IF NOT EXISTS revoked_identities (identity TEXT PRIMARY KEY, reason TEXT NOT NULL, revoked_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
  hash TEXT PRIMARY KEY, identity TEXT NOT NULL, created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS bindings (
  identity TEXT NOT NULL, method TEXT NOT NULL, hardware_id TEXT NOT NULL,
  record TEXT NOT NULL, created_at INTEGER NOT NULL,
  PRIMARY KEY (identity, method)
);
CREATE UNIQUE INDEX IF NOT EXISTS bindings_hardware ON bindings (method, hardware_id);
CREATE TABLE IF NOT EXISTS used_once (
  namespace TEXT NOT NULL, key TEXT NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY (namespace, key)
);
-- Enrollment sessions are sealed tokens now (ca/sessions.ts); the old table goes.
DROP TABLE IF EXISTS sessions;
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL,
  prev TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
`;

export interface SqliteOptions {
  /** 'normal' survives process crashes (kill -9); 'full' also survives power loss, slower. */
  readonly durability?: 'normal' | 'full';
  readonly readonly?: boolean;
  /** How long a write waits for another process's write lock before ERR_CA_UNAVAILABLE. */
  readonly lockWaitMs?: number;
  /** Stamps bindings (the CA passes its injected clock). */
  readonly now?: () => number;
}

export function openCaStore(file: string, opts: SqliteOptions = {}): CaStore {
  const now = opts.now ?? Date.now;
  const lockWaitMs = opts.lockWaitMs ?? 5000;
  // Written stores (and their WAL) are the owner's only, whatever the umask.
  if (!opts.readonly) privateDatabase(file);
  const db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
  if (!opts.readonly) {
    db.pragma('journal_mode = WAL');
    // Checkpoint every 10,000 pages (~40 MB of WAL) rather than SQLite's 1,000: each checkpoint
    // copies pages back and syncs the database file, and at thousands of issuances a second the
    // default made that several times a second (measured: +7 % enrollments/s). The WAL file is
    // cut back to 64 MB after a checkpoint.
    db.pragma('wal_autocheckpoint = 10000');
    db.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
    db.pragma(`synchronous = ${opts.durability === 'full' ? 'FULL' : 'NORMAL'}`);
    db.pragma('foreign_keys = ON');
    db.exec(SCHEMA);
  }
  // Writers wait for another process's lock in flush (below), not in SQLite's busy handler: it
  // sleeps at least 1 ms per try, far longer than one of our commits (~50 us).
  db.pragma(`busy_timeout = ${opts.readonly ? 5000 : 0}`);
  // Reads outside a transaction go to a second connection, so that while a group's transaction
  // is open (its jobs await their operations) other requests never see its uncommitted writes.
  const rdb = opts.readonly ? db : new Database(file, { readonly: true, fileMustExist: true });
  if (rdb !== db) rdb.pragma('busy_timeout = 5000');

  const w = writeStatements(db);
  const r = opts.readonly ? w : writeStatements(rdb);

  // The head is read inside each write transaction (not cached), because `edgeward ca revoke`
  // and `ca token` may append to the same data folder while `ca serve` runs.
  function appendAudit(entry: AuditEntry, now: number): AuditRecord {
    const head = w.auditHead.get();
    const seq = (head?.seq ?? 0) + 1;
    const prev = head?.hash ?? GENESIS;
    const data = JSON.stringify(entry.data);
    const hash = auditHash(prev, seq, now, entry.kind, data);
    w.auditInsert.run(seq, now, entry.kind, data, prev, hash);
    return { seq, ts: now, kind: entry.kind, data, prev, hash };
  }

  function readerOf(q: Statements): Pick<StoreTx, 'getBinding' | 'findBindingByHardware' | 'wasUsed'> {
    return {
      getBinding: (identity, method) => {
        const row = q.getBinding.get(identity, method);
        return Promise.resolve(row ? (JSON.parse(row.record) as unknown) : undefined);
      },
      findBindingByHardware: (method, hardwareId) =>
        Promise.resolve(q.bindingByHw.get(method, hardwareId)?.identity),
      wasUsed: (namespace, key) => Promise.resolve(q.wasUsed.get(namespace, key) !== undefined),
    };
  }

  const tx: StoreTx = {
    ...readerOf(w),
    putBinding(identity, method, hardwareId, record) {
      w.putBinding.run(identity, method, hardwareId, JSON.stringify(record), now());
      return Promise.resolve();
    },
    useOnce: (namespace, key, expiresAt) =>
      Promise.resolve(w.useOnce.run(namespace, key, expiresAt).changes === 1),
    insertCertificate(rec) {
      try {
        w.insertCert.run(
          rec.serial,
          rec.identity,
          rec.spkiSha256,
          rec.method,
          rec.notBefore,
          rec.notAfter,
          rec.issuedAt,
          rec.der,
        );
      } catch (err) {
        if ((err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
          return Promise.reject(serialTaken(rec.serial, err));
        throw err;
      }
      return Promise.resolve();
    },
    audit: (entry, now) => {
      appendAudit(entry, now);
      return Promise.resolve();
    },
  };

  // Group commit: a commit writes every page it touched to the WAL, which under load cost more
  // than the issuance's own statements; the transactions asked for in one event-loop turn share
  // it, each in its own savepoint (one throwing rolls back only its own writes). When another
  // process holds the write lock, the group waits without blocking the event loop (requests keep
  // arriving and join the next group).
  interface Job {
    readonly fn: (t: StoreTx) => Promise<unknown>;
    readonly resolve: (v: unknown) => void;
    readonly reject: (e: unknown) => void;
    ok?: boolean;
    out?: unknown;
  }
  let pending: Job[] = [];
  let scheduled = false;
  let running = false;
  let busySince = 0;
  let busyTries = 0;
  function schedule(): void {
    scheduled = true;
    // The first retries come right after the I/O of this turn; then every millisecond.
    if (busyTries === 0 || busyTries > 8) setTimeout(() => void flush(), busyTries === 0 ? 0 : 1);
    else setImmediate(() => void flush());
  }
  async function flush(): Promise<void> {
    scheduled = false;
    const jobs = pending;
    pending = [];
    try {
      db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      let fail = err;
      if (isBusy(err)) {
        const t = performance.now();
        if (busyTries === 0) busySince = t;
        if (t - busySince < lockWaitMs) {
          busyTries++;
          pending = jobs.concat(pending);
          schedule();
          return;
        }
        fail = lockTimeout(lockWaitMs, err);
      }
      busyTries = 0;
      for (const j of jobs) j.reject(fail);
      if (pending.length > 0) schedule();
      return;
    }
    busyTries = 0;
    running = true;
    try {
      for (const j of jobs) {
        db.exec('SAVEPOINT job');
        try {
          j.out = await j.fn(tx);
          j.ok = true;
          db.exec('RELEASE job');
        } catch (err) {
          j.out = err;
          j.ok = false;
          db.exec('ROLLBACK TO job');
          db.exec('RELEASE job');
        }
      }
      db.exec('COMMIT');
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      for (const j of jobs) j.reject(err);
      return;
    } finally {
      running = false;
      if (pending.length > 0 && !scheduled) schedule();
    }
    for (const j of jobs) (j.ok ? j.resolve : j.reject)(j.out);
  }
  function transaction<T>(fn: (t: StoreTx) => Promise<T>): Promise<T> {
    if (opts.readonly) return Promise.reject(new TypeError('CA store opened read-only'));
    return new Promise<T>((resolve, reject) => {
      pending.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!scheduled && !running) schedule();
    });
  }
  const write = <T>(run: () => T): Promise<T> => transaction(() => Promise.resolve(run()));

  return {
    ...readerOf(r),
    getMeta: (key) => Promise.resolve(r.getMeta.get(key)?.value),
    setMeta: (key, value) => write(() => void w.setMeta.run(key, value)),
    transaction,
    audit: (entry, at) => write(() => appendAudit(entry, at)),
    getCertificate: (serial) => {
      const row = r.getCert.get(serial);
      return Promise.resolve(row ? toCert(row) : undefined);
    },
    standing(identity, serial) {
      const cert = serial === undefined ? undefined : r.getCert.get(serial);
      const hold = r.activeHold.get(identity);
      return Promise.resolve({
        certificate: cert ? toCert(cert) : undefined,
        identityRevoked: r.identityRevoked.get(identity) !== undefined,
        hold: hold ? toHold(hold) : undefined,
        enrolledMethod: r.lastMethod.get(identity)?.method,
      });
    },
    certificatesOf: (identity) => Promise.resolve(r.certsOf.all(identity).map(toCert)),
    identities: () => Promise.resolve(r.identities.all().map((row) => row.identity)),
    bindingsOf: (identity) =>
      Promise.resolve(
        r.bindingsOf
          .all(identity)
          .map((row) => ({ method: row.method, hardwareId: row.hardware_id, createdAt: row.created_at })),
      ),
    enrolledMethod: (identity) => Promise.resolve(r.lastMethod.get(identity)?.method),
    revokeSerial(serial, reason, at, by) {
      return transaction(async (t) => {
        const changed = w.revokeSerial.run(at, reason, serial).changes === 1;
        if (changed) await t.audit({ kind: 'revoke', data: { serial, reason, by } }, at);
        return changed;
      });
    },
    revokeIdentity(identity, reason, at, by) {
      return transaction(async (t) => {
        const serials = w.liveSerialsOf.all(identity, at).map((x) => x.serial);
        for (const s of serials) w.revokeSerial.run(at, reason, s);
        w.revokeIdentity.run(identity, reason, at);
        await t.audit({ kind: 'revoke', data: { identity, serials, reason, by } }, at);
        return serials;
      });
    },
    revocationCount: () => Promise.resolve(r.revokedCount.get()?.n ?? 0),
    isIdentityRevoked: (identity) => Promise.resolve(r.identityRevoked.get(identity) !== undefined),
    revocations(at): Promise<Revocation[]> {
      return Promise.resolve(
        r.revocations.all(at).map((x) => ({
          serial: x.serial,
          revokedAt: x.revoked_at,
          reason: x.revocation_reason as CrlReason,
        })),
      );
    },
    nextCrlNumber: () =>
      write(() => {
        const n = Number(w.getMeta.get('crl_number')?.value ?? '0') + 1;
        w.setMeta.run('crl_number', String(n));
        return n;
      }),
    releaseBindings(identity, at, by) {
      return transaction(async (t) => {
        const n = w.releaseBindings.run(identity).changes;
        await t.audit({ kind: 'release', data: { identity, bindings: n, by } }, at);
        return n;
      });
    },
    certificatesBySpki: (spki, at) => Promise.resolve(r.certsBySpki.all(spki, at).map(toCert)),
    placeHold(h, at) {
      return transaction(async (t) => {
        const placed =
          w.placeHold.run(
            h.identity,
            h.decisionId,
            h.scope.type,
            h.scope.value,
            h.placedAt,
            h.decisionExpiresAt,
          ).changes === 1;
        if (placed) await t.audit(holdPlaced(h), at);
        return placed;
      });
    },
    holds: () => Promise.resolve(r.holds.all().map(toHold)),
    activeHold(identity) {
      const row = r.activeHold.get(identity);
      return Promise.resolve(row ? toHold(row) : undefined);
    },
    releaseHolds(identity, at, by, decisionId) {
      return transaction(async (t) => {
        const d = decisionId ?? null;
        const n = w.releaseHolds.run(at, by, identity, d, d).changes;
        if (n > 0)
          await t.audit({ kind: 'hold.release', data: { identity, decision: decisionId, holds: n, by } }, at);
        return n;
      });
    },
    createToken(rec: TokenRecord, at) {
      return transaction(async (t) => {
        w.insertToken.run(rec.hash, rec.identity, rec.createdAt, rec.expiresAt);
        await t.audit(
          { kind: 'token.create', data: { identity: rec.identity, expiresAt: rec.expiresAt } },
          at,
        );
      });
    },
    getToken(hash) {
      const row = r.getToken.get(hash);
      return Promise.resolve(
        row
          ? { hash, identity: row.identity, createdAt: row.created_at, expiresAt: row.expires_at }
          : undefined,
      );
    },
    async *auditRecords(): AsyncIterable<AuditRecord> {
      let after = 0;
      for (;;) {
        const page = r.auditPage.all(after, AUDIT_PAGE);
        yield* page;
        const last = page.at(-1);
        if (last === undefined || page.length < AUDIT_PAGE) return;
        after = last.seq;
      }
    },
    purgeExpired: (at) => write(() => void w.purgeUsed.run(at)),
    close: async () => {
      while (running || scheduled) await new Promise((res) => setTimeout(res, 1));
      if (rdb !== db) rdb.close();
      db.close();
    },
  };
}

const AUDIT_PAGE = 1000;

type Statements = ReturnType<typeof writeStatements>;

function writeStatements(db: Database.Database) {
  return {
    getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
    setMeta: db.prepare(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
    ),
    insertCert: db.prepare(
      'INSERT INTO certificates (serial, identity, spki_sha256, method, not_before, not_after, issued_at, der) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    getCert: db.prepare<[string], CertRow>('SELECT * FROM certificates WHERE serial = ?'),
    certsOf: db.prepare<[string], CertRow>(
      'SELECT * FROM certificates WHERE identity = ? ORDER BY issued_at',
    ),
    identities: db.prepare<[], { identity: string }>(
      'SELECT identity FROM certificates UNION SELECT identity FROM bindings ORDER BY identity',
    ),
    bindingsOf: db.prepare<[string], { method: string; hardware_id: string; created_at: number }>(
      'SELECT method, hardware_id, created_at FROM bindings WHERE identity = ? ORDER BY method',
    ),
    lastMethod: db.prepare<[string], { method: string }>(
      'SELECT method FROM certificates WHERE identity = ? ORDER BY issued_at DESC, rowid DESC LIMIT 1',
    ),
    revokeSerial: db.prepare(
      'UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE serial = ? AND revoked_at IS NULL',
    ),
    liveSerialsOf: db.prepare<[string, number], { serial: string }>(
      'SELECT serial FROM certificates WHERE identity = ? AND revoked_at IS NULL AND not_after > ?',
    ),
    revokeIdentity: db.prepare(
      'INSERT INTO revoked_identities (identity, reason, revoked_at) VALUES (?, ?, ?) ON CONFLICT(identity) DO NOTHING',
    ),
    identityRevoked: db.prepare<[string], { n: number }>(
      'SELECT 1 AS n FROM revoked_identities WHERE identity = ?',
    ),
    revocations: db.prepare<[number], { serial: string; revoked_at: number; revocation_reason: string }>(
      'SELECT serial, revoked_at, revocation_reason FROM certificates WHERE revoked_at IS NOT NULL AND not_after > ? ORDER BY revoked_at',
    ),
    insertToken: db.prepare(
      'INSERT INTO tokens (hash, identity, created_at, expires_at) VALUES (?, ?, ?, ?)',
    ),
    getToken: db.prepare<[string], { identity: string; created_at: number; expires_at: number }>(
      'SELECT identity, created_at, expires_at FROM tokens WHERE hash = ?',
    ),
    getBinding: db.prepare<[string, string], { record: string }>(
      'SELECT record FROM bindings WHERE identity = ? AND method = ?',
    ),
    bindingByHw: db.prepare<[string, string], { identity: string }>(
      'SELECT identity FROM bindings WHERE method = ? AND hardware_id = ?',
    ),
    putBinding: db.prepare(
      `INSERT INTO bindings (identity, method, hardware_id, record, created_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(identity, method) DO UPDATE SET hardware_id = excluded.hardware_id, record = excluded.record`,
    ),
    releaseBindings: db.prepare('DELETE FROM bindings WHERE identity = ?'),
    certsBySpki: db.prepare<[string, number], CertRow>(
      'SELECT * FROM certificates WHERE spki_sha256 = ? AND not_after > ? ORDER BY issued_at',
    ),
    placeHold: db.prepare(
      `INSERT INTO renewal_holds (identity, decision_id, scope_type, scope_value, placed_at, decision_expires_at)
       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ),
    holds: db.prepare<[], HoldRow>('SELECT * FROM renewal_holds ORDER BY placed_at'),
    activeHold: db.prepare<[string], HoldRow>(
      'SELECT * FROM renewal_holds WHERE identity = ? AND released_at IS NULL ORDER BY placed_at LIMIT 1',
    ),
    releaseHolds: db.prepare(
      `UPDATE renewal_holds SET released_at = ?, released_by = ?
       WHERE identity = ? AND released_at IS NULL AND (? IS NULL OR decision_id = ?)`,
    ),
    wasUsed: db.prepare<[string, string], { n: number }>(
      'SELECT 1 AS n FROM used_once WHERE namespace = ? AND key = ?',
    ),
    useOnce: db.prepare(
      'INSERT INTO used_once (namespace, key, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
    ),
    purgeUsed: db.prepare('DELETE FROM used_once WHERE expires_at < ?'),
    auditHead: db.prepare<[], { seq: number; hash: string }>(
      'SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1',
    ),
    auditInsert: db.prepare('INSERT INTO audit (seq, ts, kind, data, prev, hash) VALUES (?, ?, ?, ?, ?, ?)'),
    revokedCount: db.prepare<[], { n: number }>(
      'SELECT COUNT(*) AS n FROM certificates WHERE revoked_at IS NOT NULL',
    ),
    auditPage: db.prepare<[number, number], AuditRecord>(
      'SELECT seq, ts, kind, data, prev, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT ?',
    ),
  };
}

function isBusy(err: unknown): boolean {
  return err instanceof Database.SqliteError && err.code.startsWith('SQLITE_BUSY');
}

function lockTimeout(waitMs: number, cause: unknown): EdgewardError {
  return new EdgewardError('ERR_CA_UNAVAILABLE', `store write lock held for over ${waitMs} ms`, { cause });
}
