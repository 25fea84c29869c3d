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

/** A row's columns besides its identity, as the projection's statements leave them. */
type Values = Omit<InventoryRow, 'identity'>;

/**
 * What a run of changes does to one identity, in two forms: `created` is the row they make when
 * there was none (every change after the first that makes a row, applied to it); the rest is
 * what they do to a row that was already there, as parameters of UPDATE_SQL (the row's own
 * columns stay unknown until the statement reads them).
 */
interface Fold {
  readonly identity: string;
  created: Values | undefined;
  /** Newest time of a change that refreshes last-seen (null: none did). */
  at: number | null;
  /** The last address, method, serial and not-after given (each null: none was). */
  ip: string | null;
  method: string | null;
  serial: string | null;
  notAfter: number | null;
  /** The last verdict set ('ok' by an issue). */
  verdict: string | null;
  /** The first issue that named a serial: the one compared with the row's own serial, its position and key. */
  s1: string | null;
  s1At: number | null;
  spki1: string | null;
  /** Before s1: the identity revoked, and the last key given by an issue without a serial. */
  preRevoked: boolean;
  preSpki: string | null;
  /** After s1 (whose serial is then known): the revoked flag and the key as the changes set them. */
  postRevoked: number | null;
  postSpkiSet: boolean;
  postSpki: string | null;
}

const newFold = (identity: string): Fold => ({
  identity,
  created: undefined,
  at: null,
  ip: null,
  method: null,
  serial: null,
  notAfter: null,
  verdict: null,
  s1: null,
  s1At: null,
  spki1: null,
  preRevoked: false,
  preSpki: null,
  postRevoked: null,
  postSpkiSet: false,
  postSpki: null,
});

const later = (a: number | null, b: number): number => (a === null || b > a ? b : a);

/** The same statements as the SQLite adapter's, on a row whose columns are known. */
function applyKnown(r: Values, c: InventoryChange): void {
  switch (c.op) {
    case 'observed':
      r.last_seen = Math.max(r.last_seen, c.args[2]);
      return;
    case 'touch':
      r.last_seen = Math.max(r.last_seen, c.args[0]);
      r.ip = c.args[1] ?? r.ip;
      return;
    case 'issued': {
      const [, , method, serial, notAfter, at, spki] = c.args;
      const changed = serial !== null && serial !== r.serial;
      r.method = method ?? r.method;
      r.verdict = 'ok';
      r.revoked = changed ? 0 : r.revoked;
      r.spki = changed ? spki : (spki ?? r.spki);
      r.serial = serial ?? r.serial;
      r.not_after = notAfter ?? r.not_after;
      r.last_seen = Math.max(r.last_seen, at);
      return;
    }
    case 'verdict':
      r.verdict = c.args[3];
      r.method = c.args[2] ?? r.method;
      r.last_seen = Math.max(r.last_seen, c.args[4]);
      return;
    case 'revoked':
      r.revoked = 1;
      return;
    case 'revokedSerial':
      if (r.serial === c.args[0]) r.revoked = 1;
      return;
  }
}

/** The row a change makes when there is none (null: this change never makes one). */
function created(c: InventoryChange): Values | null {
  const row = (kind: string, at: number): Values => ({
    kind,
    method: null,
    verdict: null,
    serial: null,
    not_after: null,
    last_seen: at,
    revoked: 0,
    spki: null,
    ip: null,
  });
  switch (c.op) {
    case 'observed':
      return row(c.args[1], c.args[2]);
    case 'issued': {
      const [, kind, method, serial, notAfter, at, spki] = c.args;
      return { ...row(kind, at), method, verdict: 'ok', serial, not_after: notAfter, spki };
    }
    case 'verdict':
      return { ...row(c.args[1], c.args[4]), method: c.args[2], verdict: c.args[3] };
    default:
      return null;
  }
}

/** A change to a row that was already there, its columns still unknown. */
function applyExisting(f: Fold, c: InventoryChange, pos: number): void {
  switch (c.op) {
    case 'observed':
      f.at = later(f.at, c.args[2]);
      return;
    case 'touch':
      f.at = later(f.at, c.args[0]);
      f.ip = c.args[1] ?? f.ip;
      return;
    case 'issued': {
      const [, , method, serial, notAfter, at, spki] = c.args;
      f.method = method ?? f.method;
      f.verdict = 'ok';
      f.notAfter = notAfter ?? f.notAfter;
      f.at = later(f.at, at);
      if (f.s1 === null) {
        if (serial === null) f.preSpki = spki ?? f.preSpki;
        else [f.s1, f.s1At, f.spki1] = [serial, pos, spki];
      } else if (serial !== null && serial !== f.serial) {
        f.postRevoked = 0;
        [f.postSpkiSet, f.postSpki] = [true, spki];
      } else if (spki !== null) [f.postSpkiSet, f.postSpki] = [true, spki];
      f.serial = serial ?? f.serial;
      return;
    }
    case 'verdict':
      f.verdict = c.args[3];
      f.method = c.args[2] ?? f.method;
      f.at = later(f.at, c.args[4]);
      return;
    case 'revoked':
      if (f.s1 === null) f.preRevoked = true;
      else f.postRevoked = 1;
      return;
    case 'revokedSerial':
      // Before s1 the row's own serial decides (UPDATE_SQL, by position); after it, it is known.
      if (f.s1 !== null && f.serial === c.args[0]) f.postRevoked = 1;
      return;
  }
}

/**
 * Folds a run of changes, in order, into one statement's parameters per identity (ON CONFLICT
 * cannot touch a row twice in one statement, so each identity is one element), plus the serials
 * revoked, by their positions in the run.
 */
export function foldChanges(changes: readonly InventoryChange[]): {
  folds: Fold[];
  revokedSerials: { serials: string[]; at: number[] };
} {
  const folds = new Map<string, Fold>();
  /** Identities whose serial, after their s1, is known to be this one. */
  const bySerial = new Map<string, Set<string>>();
  const serials: string[] = [];
  const at: number[] = [];
  const fold = (identity: string): Fold => {
    let f = folds.get(identity);
    if (f === undefined) folds.set(identity, (f = newFold(identity)));
    return f;
  };
  changes.forEach((c, pos) => {
    if (c.op === 'revokedSerial') {
      const serial = c.args[0];
      serials.push(serial);
      at.push(pos);
      for (const id of bySerial.get(serial) ?? []) {
        const f = folds.get(id) as Fold;
        applyExisting(f, c, pos);
        if (f.created) applyKnown(f.created, c);
      }
      return;
    }
    const f = fold(c.op === 'touch' ? c.args[2] : c.args[0]);
    const before = f.s1 === null ? null : f.serial;
    applyExisting(f, c, pos);
    if (f.created) applyKnown(f.created, c);
    else f.created = created(c) ?? undefined;
    if (f.s1 !== null && f.serial !== before) {
      if (before !== null) bySerial.get(before)?.delete(f.identity);
      const set = bySerial.get(f.serial as string) ?? new Set<string>();
      set.add(f.identity);
      bySerial.set(f.serial as string, set);
    }
  });
  return { folds: [...folds.values()], revokedSerials: { serials, at } };
}

// The rows made by the run (identities that had none); taken in identity order.
const INSERT_SQL = `INSERT INTO siem_inventory
  (identity, kind, method, verdict, serial, not_after, last_seen, revoked, spki, ip)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
                       $7::bigint[], $8::int[], $9::text[], $10::text[]) ORDER BY 1
  ON CONFLICT (identity) DO NOTHING RETURNING identity`;

// The run applied to rows that were there: each column as the statements in order leave it, from
// the row's own values. Revoked: reset by a first issue of another serial, else set by a
// revocation of the identity or of its own serial before that issue ($16, $17: the run's revoked
// serials and their positions); after it, as the run set it (post_revoked).
const UPDATE_SQL = `UPDATE siem_inventory AS o SET
    last_seen = greatest(o.last_seen, u.at),
    ip = coalesce(u.ip, o.ip),
    method = coalesce(u.method, o.method),
    verdict = coalesce(u.verdict, o.verdict),
    serial = coalesce(u.serial, o.serial),
    not_after = coalesce(u.not_after, o.not_after),
    revoked = coalesce(u.post_revoked, CASE
      WHEN u.s1 IS NOT NULL AND o.serial IS DISTINCT FROM u.s1 THEN 0
      WHEN u.pre_revoked OR EXISTS (SELECT 1 FROM unnest($16::text[], $17::int[]) AS r (serial, at)
                                    WHERE r.serial = o.serial AND (u.s1_at IS NULL OR r.at < u.s1_at)) THEN 1
      ELSE o.revoked END),
    spki = CASE WHEN u.post_spki_set THEN u.post_spki
                WHEN u.s1 IS NOT NULL AND o.serial IS DISTINCT FROM u.s1 THEN u.spki1
                ELSE coalesce(u.spki1, u.pre_spki, o.spki) END
  FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
              $8::text[], $9::int[], $10::text[], $11::text[], $12::bool[], $13::int[], $14::bool[],
              $15::text[])
    AS u (identity, at, ip, method, verdict, serial, not_after, s1, s1_at, spki1, pre_spki,
          pre_revoked, post_revoked, post_spki_set, post_spki)
  WHERE o.identity = u.identity`;

// A revoked serial on the rows the run did not otherwise touch (their serial did not move).
const REVOKED_SERIALS_SQL = `UPDATE siem_inventory SET revoked = 1
  WHERE serial = ANY($1::text[]) AND revoked = 0 AND identity <> ALL($2::text[])`;

// The rows a run will change, locked in identity order before any is written: the UPDATEs below
// lock rows in whatever order their plan visits them (by index for a few rows, by the heap's order
// for many), so two replicas' runs over the same rows could each hold a row the other waits for.
const LOCK_SQL = `SELECT 1 FROM siem_inventory
  WHERE identity = ANY($1::text[]) OR (serial = ANY($2::text[]) AND revoked = 0)
  ORDER BY identity FOR UPDATE`;

const byIdentity = (a: Fold, b: Fold): number =>
  a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0;

/**
 * Applies a run of changes with at most three statements, whatever its length: the rows it
 * makes, the rows it changes, and the serials it revokes on other rows. The result is the one
 * the statements of every change, run one by one in order, leave (the SQLite adapter's way).
 */
async function applyChanges(c: Queryable, changes: readonly InventoryChange[]): Promise<void> {
  if (changes.length === 0) return;
  const { folds, revokedSerials } = foldChanges(changes);
  folds.sort(byIdentity);
  await c.query(LOCK_SQL, [folds.map((f) => f.identity), [...new Set(revokedSerials.serials)]]);
  const making = folds.filter((f) => f.created !== undefined);
  const made = new Set<string>();
  if (making.length > 0) {
    const col = <K extends keyof Values>(k: K): Values[K][] => making.map((f) => (f.created as Values)[k]);
    const r = await c.query<{ identity: string }>(INSERT_SQL, [
      making.map((f) => f.identity),
      col('kind'),
      col('method'),
      col('verdict'),
      col('serial'),
      col('not_after'),
      col('last_seen'),
      col('revoked'),
      col('spki'),
      col('ip'),
    ]);
    for (const row of r.rows) made.add(row.identity);
  }
  const rest = folds.filter((f) => !made.has(f.identity));
  if (rest.length > 0) {
    const col = <K extends keyof Fold>(k: K): Fold[K][] => rest.map((f) => f[k]);
    await c.query(UPDATE_SQL, [
      col('identity'),
      col('at'),
      col('ip'),
      col('method'),
      col('verdict'),
      col('serial'),
      col('notAfter'),
      col('s1'),
      col('s1At'),
      col('spki1'),
      col('preSpki'),
      col('preRevoked'),
      col('postRevoked'),
      col('postSpkiSet'),
      col('postSpki'),
      revokedSerials.serials,
      revokedSerials.at,
    ]);
  }
  if (revokedSerials.serials.length > 0)
    await c.query(REVOKED_SERIALS_SQL, [[...new Set(revokedSerials.serials)], folds.map((f) => f.identity)]);
}

/** Changes per statement run: bounds the arrays sent (rebuild feeds every lifecycle event). */
const RUN_CHANGES = 20_000;

async function applyEvents(c: Queryable, events: readonly EdgeEvent[]): Promise<void> {
  let run: InventoryChange[] = [];
  for (const e of events) {
    for (const change of inventoryChanges(e)) run.push(change);
    if (run.length >= RUN_CHANGES) {
      await applyChanges(c, run);
      run = [];
    }
  }
  await applyChanges(c, run);
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
      await db.txRetried('update the inventory', (c) => applyEvents(c, events));
    },
    async rebuild(evidence, _trustDomain) {
      const ev = await readEvidence(evidence, _trustDomain);
      await db.tx('rebuild the inventory', async (c) => {
        await c.query('DELETE FROM siem_inventory');
        await applyEvents(c, ev.lifecycle);
        await applyChanges(
          c,
          ev.reporters.map((r) => ({ op: 'observed', args: [r.identity, kindOf(r.identity), r.lastSeen] })),
        );
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
