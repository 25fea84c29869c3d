// The inventory of nodes and devices, a projection of ingested events kept in its own indexed
// table: identity, attestation method and last verdict, certificate serial and expiry, last seen,
// revocation. Quarantine status is joined in at query time from the active decisions.
import type Database from 'better-sqlite3';
import type { EdgeEvent } from '../../common/events.js';
import type { InventoryQuery, View } from './api.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS inventory (
  identity TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  method TEXT,
  verdict TEXT,
  serial TEXT,
  not_after INTEGER,
  last_seen INTEGER NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS inventory_kind ON inventory (kind, identity);
CREATE INDEX IF NOT EXISTS inventory_serial ON inventory (serial);
`;

interface Row {
  identity: string;
  kind: string;
  method: string | null;
  verdict: string | null;
  serial: string | null;
  not_after: number | null;
  last_seen: number;
  revoked: number;
}

function view(r: Row, quarantined: (identity: string) => boolean): View {
  return {
    identity: r.identity,
    kind: r.kind,
    method: r.method,
    verdict: r.verdict,
    serial: r.serial,
    notAfter: r.not_after,
    lastSeen: r.last_seen,
    status: r.revoked ? 'revoked' : quarantined(r.identity) ? 'quarantined' : 'healthy',
  };
}

function kindOf(identity: string): string {
  const m = /^spiffe:\/\/[^/]+\/([^/]+)\//.exec(identity);
  return m?.[1] === 'node' || m?.[1] === 'device' || m?.[1] === 'svc' ? m[1] : 'other';
}

export class Inventory {
  private readonly seen: Database.Statement;
  private readonly issued: Database.Statement;
  private readonly verdict: Database.Statement;
  private readonly revoked: Database.Statement;
  private readonly revokedSerial: Database.Statement;
  private readonly applyBatch: (events: readonly EdgeEvent[]) => void;

  constructor(private readonly db: Database.Database) {
    db.exec(SCHEMA);
    this.seen = db.prepare(
      `INSERT INTO inventory (identity, kind, last_seen) VALUES (?, ?, ?)
       ON CONFLICT(identity) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)`,
    );
    this.issued = db.prepare(
      `INSERT INTO inventory (identity, kind, method, verdict, serial, not_after, last_seen) VALUES (?, ?, ?, 'ok', ?, ?, ?)
       ON CONFLICT(identity) DO UPDATE SET method = coalesce(excluded.method, method), verdict = 'ok',
         serial = coalesce(excluded.serial, serial), not_after = coalesce(excluded.not_after, not_after),
         last_seen = max(last_seen, excluded.last_seen)`,
    );
    this.verdict = db.prepare(
      `INSERT INTO inventory (identity, kind, method, verdict, last_seen) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(identity) DO UPDATE SET verdict = excluded.verdict, method = coalesce(excluded.method, method),
         last_seen = max(last_seen, excluded.last_seen)`,
    );
    this.revoked = db.prepare('UPDATE inventory SET revoked = 1 WHERE identity = ?');
    this.revokedSerial = db.prepare('UPDATE inventory SET revoked = 1 WHERE serial = ?');
    this.applyBatch = db.transaction((events: readonly EdgeEvent[]) => {
      for (const e of events) this.applyOne(e);
    });
  }

  /** Updates the projection from a batch of validated events (one transaction). */
  apply(events: readonly EdgeEvent[]): void {
    this.applyBatch(events);
  }

  private applyOne(e: EdgeEvent): void {
    const t = e['@timestamp'];
    const action = e['event.action'];
    const subject = e['source.identity'];
    if (subject && (action === 'enroll.success' || action === 'renewal.success')) {
      this.issued.run(
        subject,
        kindOf(subject),
        e['attestation.method'] ?? null,
        e['tls.client.x509.serial_number'] ?? null,
        e['tls.client.x509.not_after'] ?? null,
        t,
      );
    } else if (
      subject &&
      (action === 'enroll.failure' || action === 'attestation.failure' || action === 'renewal.failure')
    ) {
      this.verdict.run(
        subject,
        kindOf(subject),
        e['attestation.method'] ?? null,
        e['attestation.reason'] ?? e['error.code'] ?? 'failure',
        t,
      );
    } else if (action === 'revocation') {
      if (subject) this.revoked.run(subject);
      const serial = e['tls.client.x509.serial_number'];
      if (serial) this.revokedSerial.run(serial);
    } else if (subject) {
      this.seen.run(subject, kindOf(subject), t);
    }
    const observer = e['observer.identity'];
    if (observer && observer !== subject) this.seen.run(observer, kindOf(observer), t);
  }

  /** One page, with status joined from the identities currently quarantined. */
  query(q: InventoryQuery, quarantined: (identity: string) => boolean): { total: number; items: View[] } {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.kind) {
      where.push('kind = ?');
      args.push(q.kind);
    }
    if (q.q) {
      where.push("(identity LIKE ? ESCAPE '\\' OR serial = ?)");
      args.push(`%${q.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`, q.q.toLowerCase());
    }
    if (q.status === 'revoked') where.push('revoked = 1');
    if (q.status === 'healthy' || q.status === 'quarantined') where.push('revoked = 0');
    const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const toView = (r: Row): View => view(r, quarantined);
    if (q.status === 'healthy' || q.status === 'quarantined') {
      // Quarantine is not a column: filter in order, counting every match for the total.
      const want = q.status;
      const items: View[] = [];
      let total = 0;
      for (const r of this.db
        .prepare(`SELECT * FROM inventory ${w} ORDER BY identity`)
        .iterate(...args) as Iterable<Row>) {
        const v = toView(r);
        if (v['status'] !== want) continue;
        if (total >= q.offset && items.length < q.limit) items.push(v);
        total++;
      }
      return { total, items };
    }
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM inventory ${w}`).get(...args) as { n: number })
      .n;
    const rows = this.db
      .prepare(`SELECT * FROM inventory ${w} ORDER BY identity LIMIT ? OFFSET ?`)
      .all(...args, q.limit, q.offset) as Row[];
    return { total, items: rows.map(toView) };
  }

  get(identity: string, quarantined: (identity: string) => boolean): View | undefined {
    const r = this.db.prepare('SELECT * FROM inventory WHERE identity = ?').get(identity) as Row | undefined;
    return r ? view(r, quarantined) : undefined;
  }
}
