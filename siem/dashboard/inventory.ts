// The inventory of nodes and devices, a projection of ingested events kept in its own indexed
// table: identity, attestation method and last verdict, certificate serial, key and expiry, last
// seen and from where, revocation. Quarantine status is joined in at query time from the active
// decisions (every scope: identity, node, serial, key, address, range): every
// page, filter and count is one bounded, indexed SQL query, never a walk over the table in JS.
// Only evidence from a reporter allowed to speak of it counts: enrollment, verdicts and
// revocation from the CA (`observer.type: ca`, set by the SIEM from the certificate) and the
// CA's CRL; a row is created by the CA's evidence or for a verified reporter itself, so no other
// reporter can add rows (another reporter's event only refreshes the last-seen time of a row and,
// from a node that accepted the connection, the address the identity came from).
import type Database from 'better-sqlite3';
import type { EdgeEvent } from '../../common/events.js';
import { matchIdentity } from '../../common/identity.js';
import { cidrContains, parseCidr, tryParseIp, type Cidr } from '../../common/ip.js';
import { normalizeSerial } from '../../common/x509.js';
import type { InventoryQuery, View } from './api.js';

/** A search text read as a serial the way the store keeps them (`01:AB` finds `1ab`). */
export function searchedSerial(q: string): string {
  try {
    return normalizeSerial(q);
  } catch {
    return q.toLowerCase();
  }
}

/** What a decision scope is matched against: an identity and what is known of it. */
export interface EntityFacts {
  readonly identity?: string | null | undefined;
  readonly serial?: string | null | undefined;
  readonly spki?: string | null | undefined;
  readonly ip?: string | null | undefined;
}

/**
 * Who is quarantined now, from every scope of the active decisions: exact identities (and nodes),
 * identity patterns with `*` or `**` segments, serials, public keys, addresses and ranges.
 */
export interface QuarantineSet {
  readonly identities: ReadonlySet<string>;
  readonly patterns: readonly string[];
  readonly serials: ReadonlySet<string>;
  readonly spkis: ReadonlySet<string>;
  readonly ips: ReadonlySet<string>;
  readonly cidrs: readonly Cidr[];
  /** True when no decision is active. */
  readonly empty: boolean;
  has(facts: EntityFacts): boolean;
}

const isPattern = (v: string): boolean => v.split('/').some((seg) => seg === '*' || seg === '**');

/** Whether one scope covers an entity (scopes are canonical: lower-case serials, canonical IPs). */
export function scopeCovers(
  scope: { readonly type: string; readonly value: string },
  f: EntityFacts,
): boolean {
  const v = scope.value;
  switch (scope.type) {
    case 'identity':
    case 'node':
      return f.identity != null && (isPattern(v) ? matchIdentity(v, f.identity) : v === f.identity);
    case 'serial':
      return f.serial != null && v === f.serial;
    case 'spki':
      return f.spki != null && v === f.spki;
    case 'ip':
      return f.ip != null && v === f.ip;
    case 'cidr': {
      const ip = f.ip == null ? null : tryParseIp(f.ip);
      if (ip === null) return false;
      try {
        return cidrContains(parseCidr(v), ip);
      } catch {
        return false;
      }
    }
    default:
      return false;
  }
}

/** Builds the set once (per decision revision); `has` is then hash lookups plus the few patterns. */
export function quarantineSet(
  scopes: Iterable<{ readonly type: string; readonly value: string }>,
): QuarantineSet {
  const identities = new Set<string>();
  const patterns: string[] = [];
  const serials = new Set<string>();
  const spkis = new Set<string>();
  const ips = new Set<string>();
  const cidrs: Cidr[] = [];
  let n = 0;
  for (const { type, value: v } of scopes) {
    n++;
    if (type === 'identity' || type === 'node') {
      if (!isPattern(v)) identities.add(v);
      else if (!patterns.includes(v)) patterns.push(v);
    } else if (type === 'serial') serials.add(v);
    else if (type === 'spki') spkis.add(v);
    else if (type === 'ip') ips.add(v);
    else if (type === 'cidr') {
      try {
        cidrs.push(parseCidr(v));
      } catch {
        // Not a range: covers nothing.
      }
    }
  }
  const inCidrs = (ip: string | null | undefined): boolean => {
    if (ip == null || cidrs.length === 0) return false;
    const parsed = tryParseIp(ip);
    return parsed !== null && cidrs.some((c) => cidrContains(c, parsed));
  };
  return {
    identities,
    patterns,
    serials,
    spkis,
    ips,
    cidrs,
    empty: n === 0,
    has: (f) =>
      (f.identity != null &&
        (identities.has(f.identity) || patterns.some((p) => matchIdentity(p, f.identity as string)))) ||
      (f.serial != null && serials.has(f.serial)) ||
      (f.spki != null && spkis.has(f.spki)) ||
      (f.ip != null && (ips.has(f.ip) || inCidrs(f.ip))),
  };
}

/** The literal part of a pattern before its first wildcard segment (always ends with '/'). */
export function literalPrefix(pattern: string): string {
  const segs = pattern.split('/');
  const i = segs.findIndex((seg) => seg === '*' || seg === '**');
  return `${segs.slice(0, i).join('/')}/`;
}

/**
 * 2: rows and states from the CA's evidence only. A table of version 1 may hold rows and
 * revocations any reporter made up: it is rebuilt from the stored evidence (`rebuild`).
 */
const INVENTORY_VERSION = 2;

/** The CA's lifecycle actions the inventory follows. */
export const LIFECYCLE_ACTIONS = [
  'enroll.success',
  'renewal.success',
  'enroll.failure',
  'attestation.failure',
  'renewal.failure',
  'revocation',
] as const;

/** Where a rebuild reads the evidence from (the SIEM's event store). */
export interface InventoryEvidence {
  /** Stored events with these actions reported by this identity, in ingest order. */
  scanEvents(
    q: { actions: readonly string[]; observer: string },
    fn: (e: EdgeEvent) => unknown,
  ): Promise<void>;
  /** Every reporter that ever reported, with the time of its newest event. */
  reporters(): Promise<{ identity: string; lastSeen: number }[]>;
}

/** The evidence a rebuild replays, read from the store before its transaction. */
export async function readEvidence(
  evidence: InventoryEvidence,
  trustDomain: string,
): Promise<{ lifecycle: EdgeEvent[]; reporters: { identity: string; lastSeen: number }[] }> {
  const lifecycle: EdgeEvent[] = [];
  await evidence.scanEvents(
    { actions: LIFECYCLE_ACTIONS, observer: `spiffe://${trustDomain}/svc/ca` },
    (e) => void lifecycle.push(e),
  );
  return { lifecycle, reporters: await evidence.reporters() };
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS inventory_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
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

/** Columns added to a table of version 2 in place (nothing to rebuild: they fill as events come). */
const ADDED_COLUMNS: readonly [string, string][] = [
  ['spki', 'CREATE INDEX IF NOT EXISTS inventory_spki ON inventory (spki)'],
  ['ip', 'CREATE INDEX IF NOT EXISTS inventory_ip ON inventory (ip)'],
];

/** A row of the inventory table, as every adapter keeps it. */
export interface InventoryRow {
  identity: string;
  kind: string;
  method: string | null;
  verdict: string | null;
  serial: string | null;
  not_after: number | null;
  last_seen: number;
  revoked: number;
  spki: string | null;
  ip: string | null;
}

const factsOf = (r: InventoryRow): EntityFacts => ({
  identity: r.identity,
  serial: r.serial,
  spki: r.spki,
  ip: r.ip,
});

/** A row as the dashboard shows it, with its status. */
export function inventoryView(r: InventoryRow, quarantined: QuarantineSet): View {
  return {
    identity: r.identity,
    kind: r.kind,
    method: r.method,
    verdict: r.verdict,
    serial: r.serial,
    spki: r.spki,
    ip: r.ip,
    notAfter: r.not_after,
    lastSeen: r.last_seen,
    status: r.revoked ? 'revoked' : quarantined.has(factsOf(r)) ? 'quarantined' : 'healthy',
  };
}

export function kindOf(identity: string): string {
  const m = /^spiffe:\/\/[^/]+\/([^/]+)\//.exec(identity);
  return m?.[1] === 'node' || m?.[1] === 'device' || m?.[1] === 'svc' ? m[1] : 'other';
}

/**
 * What one stored event changes in the inventory, as the statements every adapter runs in this
 * order: the reporter is seen; the lifecycle of an identity is the CA's word alone, anyone
 * else's is last-seen at most (and only a connection a node accepted proves the address).
 */
export type InventoryChange =
  | { readonly op: 'observed'; readonly args: [identity: string, kind: string, at: number] }
  | { readonly op: 'touch'; readonly args: [at: number, ip: string | null, identity: string] }
  | {
      readonly op: 'issued';
      readonly args: [
        identity: string,
        kind: string,
        method: string | null,
        serial: string | null,
        notAfter: number | null,
        at: number,
        spki: string | null,
      ];
    }
  | {
      readonly op: 'verdict';
      readonly args: [identity: string, kind: string, method: string | null, verdict: string, at: number];
    }
  | { readonly op: 'revoked'; readonly args: [identity: string] }
  | { readonly op: 'revokedSerial'; readonly args: [serial: string] };

export function inventoryChanges(e: EdgeEvent): InventoryChange[] {
  const out: InventoryChange[] = [];
  const t = e['@timestamp'];
  const action = e['event.action'];
  const subject = e['source.identity'];
  const observer = e['observer.identity'];
  if (observer) out.push({ op: 'observed', args: [observer, kindOf(observer), t] });
  if (e['observer.type'] !== 'ca') {
    if (subject && subject !== observer) {
      const ip =
        e['observer.type'] === 'node' && action === 'connection.accepted' ? (e['source.ip'] ?? null) : null;
      out.push({ op: 'touch', args: [t, ip, subject] });
    }
    return out;
  }
  if (subject && (action === 'enroll.success' || action === 'renewal.success')) {
    out.push({
      op: 'issued',
      args: [
        subject,
        kindOf(subject),
        e['attestation.method'] ?? null,
        e['tls.client.x509.serial_number'] ?? null,
        e['tls.client.x509.not_after'] ?? null,
        t,
        e['tls.client.x509.spki_sha256'] ?? null,
      ],
    });
  } else if (
    subject &&
    (action === 'enroll.failure' || action === 'attestation.failure' || action === 'renewal.failure')
  ) {
    out.push({
      op: 'verdict',
      args: [
        subject,
        kindOf(subject),
        e['attestation.method'] ?? null,
        e['attestation.reason'] ?? e['error.code'] ?? 'failure',
        t,
      ],
    });
  } else if (action === 'revocation') {
    if (subject) out.push({ op: 'revoked', args: [subject] });
    const serial = e['tls.client.x509.serial_number'];
    if (serial) out.push({ op: 'revokedSerial', args: [serial] });
  } else if (subject) out.push({ op: 'touch', args: [t, null, subject] });
  return out;
}

export class Inventory {
  private readonly observed: Database.Statement;
  private readonly touch: Database.Statement;
  private readonly issued: Database.Statement;
  private readonly verdict: Database.Statement;
  private readonly revoked: Database.Statement;
  private readonly revokedSerial: Database.Statement;
  private readonly applyBatch: (events: readonly EdgeEvent[]) => void;
  private readonly byPrefix: Database.Statement;
  private readonly statements = new Map<string, Database.Statement>();

  private readonly older: boolean;
  private rebuilt = false;

  /** True when the table came from an older version and waits for `rebuild`. */
  get needsRebuild(): boolean {
    return this.older && !this.rebuilt;
  }

  constructor(private readonly db: Database.Database) {
    const existed = db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'inventory'")
      .get();
    db.exec(SCHEMA);
    const columns = new Set(
      (db.prepare('PRAGMA table_info(inventory)').all() as { name: string }[]).map((c) => c.name),
    );
    for (const [column, index] of ADDED_COLUMNS) {
      if (!columns.has(column)) db.exec(`ALTER TABLE inventory ADD COLUMN ${column} TEXT`);
      db.exec(index);
    }
    const version = (
      db.prepare("SELECT value FROM inventory_meta WHERE key = 'version'").get() as
        { value: number } | undefined
    )?.value;
    this.older = existed !== undefined && (version ?? 1) < INVENTORY_VERSION;
    if (!this.older) this.setVersion();
    // A verified reporter is a row of its own (its certificate proved it exists).
    this.observed = db.prepare(
      `INSERT INTO inventory (identity, kind, last_seen) VALUES (?, ?, ?)
       ON CONFLICT(identity) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)`,
    );
    // Another reporter's word about an identity refreshes a row; it never makes one.
    // A node's connection event also says from which address the identity connected.
    this.touch = db.prepare(
      'UPDATE inventory SET last_seen = max(last_seen, ?), ip = coalesce(?, ip) WHERE identity = ?',
    );
    // A new certificate is not revoked: a re-enrolled identity is live again.
    this.issued = db.prepare(
      `INSERT INTO inventory (identity, kind, method, verdict, serial, not_after, last_seen, spki) VALUES (?, ?, ?, 'ok', ?, ?, ?, ?)
       ON CONFLICT(identity) DO UPDATE SET method = coalesce(excluded.method, method), verdict = 'ok',
         revoked = CASE WHEN excluded.serial IS NOT NULL AND excluded.serial IS NOT serial THEN 0 ELSE revoked END,
         spki = CASE WHEN excluded.serial IS NOT NULL AND excluded.serial IS NOT serial THEN excluded.spki ELSE coalesce(excluded.spki, spki) END,
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
    // A range of the primary key: identities under a pattern's literal prefix.
    this.byPrefix = db.prepare('SELECT identity FROM inventory WHERE identity >= ? AND identity < ?');
  }

  private statement(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (st === undefined) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  /**
   * The quarantined identities to filter on: the exact ones, plus the rows that a pattern covers
   * (a range scan under its literal prefix, so `spiffe://td/node/*` reads the nodes only).
   */
  private quarantinedIdentities(qs: QuarantineSet): string[] {
    const out = new Set(qs.identities);
    for (const p of qs.patterns) {
      const prefix = literalPrefix(p);
      // Every identity under the prefix sorts before the prefix with its final '/' bumped to '0'.
      const upper = `${prefix.slice(0, -1)}0`;
      for (const r of this.byPrefix.all(prefix, upper) as { identity: string }[])
        if (matchIdentity(p, r.identity)) out.add(r.identity);
    }
    return [...out];
  }

  /**
   * The SQL condition of "covered by an active decision" (each column against its own JSON list,
   * each served by its index), or null when nothing is covered. Ranges are matched here on the
   * rows that have an address (only when a range decision is active).
   */
  private coveredCondition(qs: QuarantineSet): { sql: string; args: string[] } | null {
    if (qs.empty) return null;
    const parts: string[] = [];
    const args: string[] = [];
    const ids = this.quarantinedIdentities(qs);
    if (qs.cidrs.length > 0) {
      for (const r of this.statement('SELECT identity, ip FROM inventory WHERE ip IS NOT NULL').all() as {
        identity: string;
        ip: string;
      }[])
        if (qs.has({ ip: r.ip })) ids.push(r.identity);
    }
    const list = (column: string, values: Iterable<string>): void => {
      const a = [...values];
      if (a.length === 0) return;
      // A NULL column is "not covered" (false, not unknown), so NOT (...) keeps its row.
      parts.push(`(${column} IS NOT NULL AND ${column} IN (SELECT value FROM json_each(?)))`);
      args.push(JSON.stringify(a));
    };
    list('identity', ids);
    list('serial', qs.serials);
    list('spki', qs.spkis);
    list('ip', qs.ips);
    return parts.length === 0 ? null : { sql: parts.join(' OR '), args };
  }

  /** The rows whose current certificate has this serial (a serial names one certificate). */
  bySerial(serial: string, quarantined: QuarantineSet): View | undefined {
    const r = this.statement('SELECT * FROM inventory WHERE serial = ? LIMIT 1').get(serial) as
      InventoryRow | undefined;
    return r ? inventoryView(r, quarantined) : undefined;
  }

  /** Updates the projection from a batch of validated events (one transaction). */
  apply(events: readonly EdgeEvent[]): void {
    this.applyBatch(events);
  }

  private setVersion(): void {
    this.db
      .prepare(
        "INSERT INTO inventory_meta (key, value) VALUES ('version', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      )
      .run(INVENTORY_VERSION);
  }

  /**
   * Rebuilds a table of an older version from the stored evidence, in one transaction: the CA's
   * lifecycle events in ingest order, then every verified reporter as a row of its own. What the
   * older version took from other reporters (rows, revocations) is gone; last-seen times come from
   * the CA's events and each reporter's own reports. Revoked serials come back from the next CRL.
   */
  rebuild(evidence: Awaited<ReturnType<typeof readEvidence>>): void {
    this.db.transaction(() => {
      this.db.exec('DELETE FROM inventory');
      for (const e of evidence.lifecycle) this.applyOne(e);
      for (const r of evidence.reporters) this.observed.run(r.identity, kindOf(r.identity), r.lastSeen);
      this.setVersion();
    })();
    this.rebuilt = true;
  }

  /** Marks the rows whose current certificate is among these revoked serials (the CA's CRL). */
  markRevoked(serials: readonly string[]): number {
    let n = 0;
    const st = this.statement(
      'UPDATE inventory SET revoked = 1 WHERE revoked = 0 AND serial IN (SELECT value FROM json_each(?))',
    );
    // In slices: a CRL may list many thousands of serials.
    for (let i = 0; i < serials.length; i += 10_000)
      n += st.run(JSON.stringify(serials.slice(i, i + 10_000))).changes;
    return n;
  }

  private applyOne(e: EdgeEvent): void {
    for (const c of inventoryChanges(e)) {
      switch (c.op) {
        case 'observed':
          this.observed.run(...c.args);
          break;
        case 'touch':
          this.touch.run(...c.args);
          break;
        case 'issued':
          this.issued.run(...c.args);
          break;
        case 'verdict':
          this.verdict.run(...c.args);
          break;
        case 'revoked':
          this.revoked.run(...c.args);
          break;
        case 'revokedSerial':
          this.revokedSerial.run(...c.args);
          break;
      }
    }
  }

  /** One page, with status joined from the identities currently quarantined. */
  query(q: InventoryQuery, quarantined: QuarantineSet): { total: number; items: View[] } {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.kind) {
      where.push('kind = ?');
      args.push(q.kind);
    }
    if (q.q) {
      where.push("(identity LIKE ? ESCAPE '\\' OR serial = ?)");
      args.push(`%${q.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`, searchedSerial(q.q));
    }
    if (q.status === 'revoked') where.push('revoked = 1');
    if (q.status === 'healthy' || q.status === 'quarantined') {
      // Quarantine is not a column: what the decisions cover goes in as JSON array parameters.
      where.push('revoked = 0');
      const covered = this.coveredCondition(quarantined);
      if (covered !== null) {
        where.push(q.status === 'healthy' ? `NOT (${covered.sql})` : `(${covered.sql})`);
        args.push(...covered.args);
      } else if (q.status === 'quarantined') where.push('0');
    }
    const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const total = (this.statement(`SELECT COUNT(*) AS n FROM inventory ${w}`).get(...args) as { n: number })
      .n;
    const rows = this.statement(`SELECT * FROM inventory ${w} ORDER BY identity LIMIT ? OFFSET ?`).all(
      ...args,
      q.limit,
      q.offset,
    ) as InventoryRow[];
    return { total, items: rows.map((r) => inventoryView(r, quarantined)) };
  }

  get(identity: string, quarantined: QuarantineSet): View | undefined {
    const r = this.statement('SELECT * FROM inventory WHERE identity = ?').get(identity) as
      InventoryRow | undefined;
    return r ? inventoryView(r, quarantined) : undefined;
  }
}
