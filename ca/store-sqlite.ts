// SQLite adapter of the CA store (better-sqlite3, WAL). Synchronous transactions make each
// issuance atomic: certificate, single-use markers, bindings and the audit record, or nothing.
import Database from 'better-sqlite3';
import type { AuditRecord } from './audit.js';
import { GENESIS, auditHash } from './audit.js';
import type { TokenRecord } from '../attestation/index.js';
import type { AuditEntry, CaStore, CertRecord, Revocation, StoreTx } from './store.js';
import { EdgewardError } from '../common/errors.js';
import { privateDatabase } from '../common/private-files.js';
import type { CrlReason } from '../common/x509.js';
import type { DecisionScopeType } from '../common/decisions.js';
import type { RenewalHold } from './quarantine.js';

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

interface CertRow {
  serial: string;
  identity: string;
  spki_sha256: string;
  method: string;
  not_before: number;
  not_after: number;
  issued_at: number;
  der: Buffer;
  revoked_at: number | null;
  revocation_reason: string | null;
}

function toCert(r: CertRow): CertRecord {
  return {
    serial: r.serial,
    identity: r.identity,
    spkiSha256: r.spki_sha256,
    method: r.method,
    notBefore: r.not_before,
    notAfter: r.not_after,
    issuedAt: r.issued_at,
    der: r.der,
    revokedAt: r.revoked_at,
    revocationReason: r.revocation_reason,
  };
}

interface HoldRow {
  identity: string;
  decision_id: string;
  scope_type: string;
  scope_value: string;
  placed_at: number;
  decision_expires_at: number;
  released_at: number | null;
  released_by: string | null;
}

function toHold(r: HoldRow): RenewalHold {
  return {
    identity: r.identity,
    decisionId: r.decision_id,
    scope: { type: r.scope_type as DecisionScopeType, value: r.scope_value },
    placedAt: r.placed_at,
    decisionExpiresAt: r.decision_expires_at,
    releasedAt: r.released_at,
    releasedBy: r.released_by,
  };
}

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
  // Writers wait for the lock in writeLocked (below), not in SQLite's busy handler.
  db.pragma(`busy_timeout = ${opts.readonly ? 5000 : 0}`);

  const q = {
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
    auditAll: db.prepare<[], AuditRecord>('SELECT seq, ts, kind, data, prev, hash FROM audit ORDER BY seq'),
  };

  // The head is read inside each write transaction (not cached), because `edgeward ca revoke`
  // and `ca token` may append to the same data folder while `ca serve` runs.
  function appendAudit(entry: AuditEntry, now: number): AuditRecord {
    const head = q.auditHead.get();
    const seq = (head?.seq ?? 0) + 1;
    const prev = head?.hash ?? GENESIS;
    const data = JSON.stringify(entry.data);
    const hash = auditHash(prev, seq, now, entry.kind, data);
    q.auditInsert.run(seq, now, entry.kind, data, prev, hash);
    return { seq, ts: now, kind: entry.kind, data, prev, hash };
  }

  const reader = {
    getBinding(identity: string, method: string): unknown {
      const row = q.getBinding.get(identity, method);
      return row ? (JSON.parse(row.record) as unknown) : undefined;
    },
    findBindingByHardware(method: string, hardwareId: string): string | undefined {
      return q.bindingByHw.get(method, hardwareId)?.identity;
    },
    wasUsed(namespace: string, key: string): boolean {
      return q.wasUsed.get(namespace, key) !== undefined;
    },
  };

  const tx: StoreTx = {
    ...reader,
    putBinding(identity, method, hardwareId, record) {
      q.putBinding.run(identity, method, hardwareId, JSON.stringify(record), now());
    },
    useOnce(namespace, key, expiresAt) {
      return q.useOnce.run(namespace, key, expiresAt).changes === 1;
    },
    insertCertificate(rec) {
      q.insertCert.run(
        rec.serial,
        rec.identity,
        rec.spkiSha256,
        rec.method,
        rec.notBefore,
        rec.notAfter,
        rec.issuedAt,
        rec.der,
      );
    },
    audit: appendAudit,
  };

  // At the top level a transaction, inside another one (the group commit's) a savepoint.
  const withTx = db.transaction((fn: (t: StoreTx) => unknown) => fn(tx));

  function transaction<T>(fn: (t: StoreTx) => T): T {
    // IMMEDIATE takes the write lock up front, so two processes never both read the same head.
    return locked(() => withTx.immediate(fn) as T);
  }

  function locked<T>(run: () => T): T {
    return writeLocked(db, run, opts.lockWaitMs ?? 5000);
  }

  // Group commit: a commit writes every page it touched to the WAL, which under load cost more
  // than the issuance's own statements; calls of one event-loop turn share it. When another
  // process holds the write lock, the group waits without blocking the event loop (requests
  // keep arriving and join it), unlike the synchronous transaction() above.
  interface Job {
    readonly fn: (t: StoreTx) => unknown;
    readonly resolve: (v: unknown) => void;
    readonly reject: (e: unknown) => void;
    ok?: boolean;
    out?: unknown;
  }
  let pending: Job[] = [];
  let scheduled = false;
  let busySince = 0;
  let busyTries = 0;
  const runJobs = db.transaction((jobs: Job[]) => {
    for (const j of jobs) {
      try {
        j.out = withTx(j.fn);
        j.ok = true;
      } catch (err) {
        j.out = err;
        j.ok = false;
      }
    }
  });
  function schedule(): void {
    scheduled = true;
    // The first retries come right after the I/O of this turn; then every millisecond.
    if (busyTries === 0 || busyTries > 8) setTimeout(flush, busyTries === 0 ? 0 : 1);
    else setImmediate(flush);
  }
  function flush(): void {
    scheduled = false;
    const jobs = pending;
    pending = [];
    try {
      runJobs.immediate(jobs);
    } catch (err) {
      let fail = err;
      if (isBusy(err) && !db.inTransaction) {
        const now = performance.now();
        if (busyTries === 0) busySince = now;
        if (now - busySince < (opts.lockWaitMs ?? 5000)) {
          busyTries++;
          pending = jobs.concat(pending);
          schedule();
          return;
        }
        fail = lockTimeout(opts.lockWaitMs ?? 5000, err);
      }
      busyTries = 0;
      for (const j of jobs) j.reject(fail);
      return;
    }
    busyTries = 0;
    for (const j of jobs) (j.ok ? j.resolve : j.reject)(j.out);
  }
  function grouped<T>(fn: (t: StoreTx) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      pending.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!scheduled) schedule();
    });
  }

  return {
    ...reader,
    getMeta: (key) => q.getMeta.get(key)?.value,
    setMeta: (key, value) => void locked(() => q.setMeta.run(key, value)),
    transaction,
    grouped,
    audit: (entry, now) => transaction((t) => t.audit(entry, now)),
    getCertificate: (serial) => {
      const r = q.getCert.get(serial);
      return r ? toCert(r) : undefined;
    },
    certificatesOf: (identity) => q.certsOf.all(identity).map(toCert),
    identities: () => q.identities.all().map((r) => r.identity),
    bindingsOf: (identity) =>
      q.bindingsOf
        .all(identity)
        .map((r) => ({ method: r.method, hardwareId: r.hardware_id, createdAt: r.created_at })),
    enrolledMethod: (identity) => q.lastMethod.get(identity)?.method,
    revokeSerial(serial, reason, now, by) {
      return transaction((t) => {
        const changed = q.revokeSerial.run(now, reason, serial).changes === 1;
        if (changed) t.audit({ kind: 'revoke', data: { serial, reason, by } }, now);
        return changed;
      });
    },
    revokeIdentity(identity, reason, now, by) {
      return transaction((t) => {
        const serials = q.liveSerialsOf.all(identity, now).map((r) => r.serial);
        for (const s of serials) q.revokeSerial.run(now, reason, s);
        q.revokeIdentity.run(identity, reason, now);
        t.audit({ kind: 'revoke', data: { identity, serials, reason, by } }, now);
        return serials;
      });
    },
    revocationCount: () => q.revokedCount.get()?.n ?? 0,
    isIdentityRevoked: (identity) => q.identityRevoked.get(identity) !== undefined,
    revocations(now): Revocation[] {
      return q.revocations.all(now).map((r) => ({
        serial: r.serial,
        revokedAt: r.revoked_at,
        reason: r.revocation_reason as CrlReason,
      }));
    },
    releaseBindings(identity, now, by) {
      return transaction((t) => {
        const n = q.releaseBindings.run(identity).changes;
        t.audit({ kind: 'release', data: { identity, bindings: n, by } }, now);
        return n;
      });
    },
    certificatesBySpki: (spki, now) => q.certsBySpki.all(spki, now).map(toCert),
    placeHold(h, now) {
      return transaction((t) => {
        const placed =
          q.placeHold.run(
            h.identity,
            h.decisionId,
            h.scope.type,
            h.scope.value,
            h.placedAt,
            h.decisionExpiresAt,
          ).changes === 1;
        if (placed)
          t.audit(
            {
              kind: 'hold.place',
              data: {
                identity: h.identity,
                decision: h.decisionId,
                scope: h.scope,
                decisionExpiresAt: h.decisionExpiresAt,
              },
            },
            now,
          );
        return placed;
      });
    },
    holds: () => q.holds.all().map(toHold),
    activeHold(identity) {
      const r = q.activeHold.get(identity);
      return r ? toHold(r) : undefined;
    },
    releaseHolds(identity, now, by, decisionId) {
      return transaction((t) => {
        const d = decisionId ?? null;
        const n = q.releaseHolds.run(now, by, identity, d, d).changes;
        if (n > 0)
          t.audit({ kind: 'hold.release', data: { identity, decision: decisionId, holds: n, by } }, now);
        return n;
      });
    },
    createToken(rec: TokenRecord, now) {
      transaction((t) => {
        q.insertToken.run(rec.hash, rec.identity, rec.createdAt, rec.expiresAt);
        t.audit({ kind: 'token.create', data: { identity: rec.identity, expiresAt: rec.expiresAt } }, now);
      });
    },
    getToken(hash) {
      const r = q.getToken.get(hash);
      return r ? { hash, identity: r.identity, createdAt: r.created_at, expiresAt: r.expires_at } : undefined;
    },
    auditRecords: () => q.auditAll.iterate(),
    purgeExpired: (now) => void locked(() => q.purgeUsed.run(now)),
    close: () => db.close(),
  };
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Runs a write (an IMMEDIATE transaction or one statement), waiting for the write lock when another process (`ca serve
 * --workers N`, `ca revoke`) holds it. SQLite's own busy handler sleeps at least 1 ms per try,
 * far longer than one of our commits (~50 us), so with several writers it left the CPU idle and
 * made the p99 tens of milliseconds; here the store's connection has busy_timeout 0 and retries
 * after short, growing, jittered pauses (Atomics.wait sleeps for fractions of a millisecond).
 * WAL readers never wait for writers, so reads outside transactions are unaffected.
 */
function isBusy(err: unknown): boolean {
  return err instanceof Database.SqliteError && err.code.startsWith('SQLITE_BUSY');
}

function lockTimeout(waitMs: number, cause: unknown): EdgewardError {
  return new EdgewardError('ERR_CA_UNAVAILABLE', `store write lock held for over ${waitMs} ms`, { cause });
}

function writeLocked<T>(db: Database.Database, run: () => T, waitMs: number): T {
  const deadline = performance.now() + waitMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return run();
    } catch (err) {
      if (!isBusy(err) || db.inTransaction) throw err;
      if (performance.now() > deadline) throw lockTimeout(waitMs, err);
      const ms = Math.min(0.02 * 2 ** Math.min(attempt, 7), 2) * (0.5 + Math.random());
      Atomics.wait(pause, 0, 0, ms);
    }
  }
}
