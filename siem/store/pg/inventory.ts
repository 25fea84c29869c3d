// The dashboard inventory on PostgreSQL: the same projection, by the same rules, as the SQLite
// adapter (siem/dashboard/inventory.ts): only the CA's evidence makes rows and states, another
// reporter's event refreshes last-seen (and, from a node that accepted the connection, the
// address). Quarantine status is joined in at query time from the active decisions. Identities
// sort byte-wise (COLLATE "C"), as SQLite's do.
import type pg from 'pg';
import type { EdgeEvent } from '../../../common/events.js';
import { matchIdentity } from '../../../common/identity.js';
import type { InventoryQuery, View } from '../../dashboard/api.js';
import {
  inventoryChanges,
  inventoryView,
  kindOf,
  literalPrefix,
  readEvidence,
  searchedSerial,
  type InventoryChange,
  type InventoryRow,
  type QuarantineSet,
} from '../../dashboard/inventory.js';
import type { InventoryStore } from '../store.js';
import type { PgRunner } from './side.js';

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

const COLUMNS = 'identity, kind, method, verdict, serial, not_after, last_seen, revoked, spki, ip';

// A verified reporter is a row of its own (its certificate proved it exists).
const OBSERVED = `INSERT INTO siem_inventory (identity, kind, last_seen) VALUES ($1, $2, $3)
  ON CONFLICT (identity) DO UPDATE SET last_seen = greatest(siem_inventory.last_seen, excluded.last_seen)`;
// Another reporter's word about an identity refreshes a row; it never makes one.
const TOUCH = `UPDATE siem_inventory SET last_seen = greatest(last_seen, $1), ip = coalesce($2, ip)
  WHERE identity = $3`;
// A new certificate is not revoked: a re-enrolled identity is live again.
const ISSUED = `INSERT INTO siem_inventory (identity, kind, method, verdict, serial, not_after, last_seen, spki)
  VALUES ($1, $2, $3, 'ok', $4, $5, $6, $7)
  ON CONFLICT (identity) DO UPDATE SET method = coalesce(excluded.method, siem_inventory.method), verdict = 'ok',
    revoked = CASE WHEN excluded.serial IS NOT NULL AND excluded.serial IS DISTINCT FROM siem_inventory.serial
                   THEN 0 ELSE siem_inventory.revoked END,
    spki = CASE WHEN excluded.serial IS NOT NULL AND excluded.serial IS DISTINCT FROM siem_inventory.serial
                THEN excluded.spki ELSE coalesce(excluded.spki, siem_inventory.spki) END,
    serial = coalesce(excluded.serial, siem_inventory.serial),
    not_after = coalesce(excluded.not_after, siem_inventory.not_after),
    last_seen = greatest(siem_inventory.last_seen, excluded.last_seen)`;
const VERDICT = `INSERT INTO siem_inventory (identity, kind, method, verdict, last_seen) VALUES ($1, $2, $3, $4, $5)
  ON CONFLICT (identity) DO UPDATE SET verdict = excluded.verdict,
    method = coalesce(excluded.method, siem_inventory.method),
    last_seen = greatest(siem_inventory.last_seen, excluded.last_seen)`;

const STATEMENTS: Readonly<Record<InventoryChange['op'], string>> = {
  observed: OBSERVED,
  touch: TOUCH,
  issued: ISSUED,
  verdict: VERDICT,
  revoked: 'UPDATE siem_inventory SET revoked = 1 WHERE identity = $1',
  revokedSerial: 'UPDATE siem_inventory SET revoked = 1 WHERE serial = $1',
};

async function applyOne(c: Queryable, e: EdgeEvent): Promise<void> {
  for (const change of inventoryChanges(e)) await c.query(STATEMENTS[change.op], [...change.args]);
}

export function postgresInventoryStore(db: PgRunner): InventoryStore {
  /** Exact quarantined identities plus the rows a pattern covers (a range scan under its literal prefix). */
  async function quarantinedIdentities(qs: QuarantineSet): Promise<string[]> {
    const out = new Set(qs.identities);
    for (const p of qs.patterns) {
      const prefix = literalPrefix(p);
      const upper = `${prefix.slice(0, -1)}0`;
      const r = await db.q<{ identity: string }>(
        'inventory',
        'SELECT identity FROM siem_inventory WHERE identity >= $1 AND identity < $2',
        [prefix, upper],
      );
      for (const row of r.rows) if (matchIdentity(p, row.identity)) out.add(row.identity);
    }
    return [...out];
  }

  /** "Covered by an active decision" as SQL over array parameters, or null when nothing is covered. */
  async function covered(qs: QuarantineSet, args: unknown[]): Promise<string | null> {
    if (qs.empty) return null;
    const ids = await quarantinedIdentities(qs);
    if (qs.cidrs.length > 0) {
      const r = await db.q<{ identity: string; ip: string }>(
        'inventory',
        'SELECT identity, ip FROM siem_inventory WHERE ip IS NOT NULL',
      );
      for (const row of r.rows) if (qs.has({ ip: row.ip })) ids.push(row.identity);
    }
    const parts: string[] = [];
    const list = (column: string, values: Iterable<string>): void => {
      const a = [...values];
      if (a.length === 0) return;
      // A NULL column is "not covered" (false, not unknown), so NOT (...) keeps its row.
      parts.push(`(${column} IS NOT NULL AND ${column} = ANY($${args.push(a)}::text[]))`);
    };
    list('identity', ids);
    list('serial', qs.serials);
    list('spki', qs.spkis);
    list('ip', qs.ips);
    return parts.length === 0 ? null : parts.join(' OR ');
  }

  return {
    // The projection starts with the schema that holds it: never from an older version.
    needsRebuild: () => Promise.resolve(false),
    async apply(events) {
      if (events.length === 0) return;
      await db.tx('update the inventory', async (c) => {
        for (const e of events) await applyOne(c, e);
      });
    },
    async rebuild(evidence, _trustDomain) {
      const ev = await readEvidence(evidence, _trustDomain);
      await db.tx('rebuild the inventory', async (c) => {
        await c.query('DELETE FROM siem_inventory');
        for (const e of ev.lifecycle) await applyOne(c, e);
        for (const r of ev.reporters) await c.query(OBSERVED, [r.identity, kindOf(r.identity), r.lastSeen]);
      });
    },
    async markRevoked(serials) {
      let n = 0;
      for (let i = 0; i < serials.length; i += 10_000) {
        const r = await db.q(
          'mark revoked',
          'UPDATE siem_inventory SET revoked = 1 WHERE revoked = 0 AND serial = ANY($1::text[])',
          [serials.slice(i, i + 10_000)],
        );
        n += r.rowCount ?? 0;
      }
      return n;
    },
    async query(q: InventoryQuery, quarantined) {
      const where: string[] = [];
      const args: unknown[] = [];
      if (q.kind) where.push(`kind = $${args.push(q.kind)}`);
      if (q.q) {
        const like = `%${q.q.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
        // ILIKE: SQLite's LIKE ignores the case of ASCII letters.
        where.push(
          `(identity ILIKE $${args.push(like)} ESCAPE '\\' OR serial = $${args.push(searchedSerial(q.q))})`,
        );
      }
      if (q.status === 'revoked') where.push('revoked = 1');
      if (q.status === 'healthy' || q.status === 'quarantined') {
        where.push('revoked = 0');
        const cond = await covered(quarantined, args);
        if (cond !== null) where.push(q.status === 'healthy' ? `NOT (${cond})` : `(${cond})`);
        else if (q.status === 'quarantined') where.push('false');
      }
      const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
      const total = await db.q<{ n: number }>(
        'inventory',
        `SELECT count(*)::bigint AS n FROM siem_inventory ${w}`,
        args,
      );
      const rows = await db.q<InventoryRow>(
        'inventory',
        `SELECT ${COLUMNS} FROM siem_inventory ${w} ORDER BY identity LIMIT $${args.length + 1} OFFSET $${args.length + 2}`,
        [...args, q.limit, q.offset],
      );
      return { total: total.rows[0]?.n ?? 0, items: rows.rows.map((r) => inventoryView(r, quarantined)) };
    },
    async get(identity, quarantined): Promise<View | undefined> {
      const r = await db.q<InventoryRow>(
        'inventory',
        `SELECT ${COLUMNS} FROM siem_inventory WHERE identity = $1`,
        [identity],
      );
      const row = r.rows[0];
      return row ? inventoryView(row, quarantined) : undefined;
    },
    async bySerial(serial, quarantined) {
      const r = await db.q<InventoryRow>(
        'inventory',
        `SELECT ${COLUMNS} FROM siem_inventory WHERE serial = $1 LIMIT 1`,
        [serial],
      );
      const row = r.rows[0];
      return row ? inventoryView(row, quarantined) : undefined;
    },
  };
}
