// The event insert, shared by the store's own connection and the ingest writer thread: one
// transaction per group of batches, the event rows in arrival order, then the group's per-entity
// timeline entries sorted by key into the small entity_timeline_recent table; from time to time
// those are merged into entity_timeline in one sorted run. Timeline keys are random (an entity
// hash first), so every commit into the large table dirtied (and wrote to the WAL, then
// checkpointed) a page per entity it touched; the small table has few pages to dirty, and a
// merge writes each page it touches once for ~30,000 events. The large table's key starts with
// the event's segment (its rowid >> SEGMENT_SHIFT): a merge touches only the newest segment's
// pages, so its cost stays the same however large the store grows (without segments it grew
// with the whole table, and the ingest rate fell as the store filled). Queries read both tables.
import type Database from 'better-sqlite3';
import {
  checkRows,
  decodeText,
  NUM_COLUMNS,
  TEXT_COLUMNS,
  type EventRows,
  type KeyResults,
} from './event-rows.js';
import { BATCH_KEY_PRUNE_MS, BATCH_KEY_RETENTION_MS, BATCH_KEYS_PER_REPORTER } from './store.js';

/** Timeline entries gathered in entity_timeline_recent before a merge (about 32,000 events). */
export const MERGE_ENTRIES = 131_072;
/** Events per timeline segment: 2^17 = 131,072 (about 524,000 timeline entries). */
export const SEGMENT_SHIFT = 17;

export interface EventInsert {
  /**
   * Inserts the batches' events and timeline entries in one IMMEDIATE transaction; a batch whose
   * key (reporter, id) is stored already is left out.
   */
  insert(groups: readonly EventRows[]): KeyResults;
  /** Whether the batch keys should be pruned now (about once every BATCH_KEY_PRUNE_MS of key time). */
  pruneDue(): boolean;
  /** Deletes the batch keys past their retention, and beyond the newest per reporter written to since the last prune. */
  pruneKeys(): void;
  /** Whether the recent entries should be merged now (as far as this connection knows). */
  mergeDue(): boolean;
  /**
   * Moves the recent timeline entries into entity_timeline in key order, one of `slices` ranges
   * of the entity hash per IMMEDIATE transaction (so that another connection's write waits for
   * one slice, not the whole merge); returns whether slices are left.
   */
  mergeStep(slices?: number): boolean;
}

// Rows per statement: fewer calls into SQLite (measured best of 1..64 on the bench workload).
const ENTITY_ROWS = 32;
const EVENT_ROWS = 16;

/** Transactions per merge (entity hashes are uniform, so each moves about the same number). */
export const MERGE_SLICES = 4;
/** Entity hashes are below 2^53 (entity-hash.ts). */
const HASH_END = 2 ** 53;

/**
 * Prepares the statements on `db` (whose schema exists). Transactions are IMMEDIATE, so a second
 * connection's writer waits for the lock instead of failing.
 */
export function prepareEventInsert(db: Database.Database, mergeEntries = MERGE_ENTRIES): EventInsert {
  const eventsSql = (rows: number): string =>
    `INSERT INTO events (id, ts, action, source_identity, destination_identity, source_ip, serial, observer, doc)
     VALUES ${Array<string>(rows).fill('(?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`;
  const insEvent = db.prepare(eventsSql(1));
  const insEvents = db.prepare(eventsSql(EVENT_ROWS));
  const eventParam = new Array<string | number | null>(9);
  const eventParams = new Array<string | number | null>(9 * EVENT_ROWS);
  const insEntity = db.prepare(
    `INSERT OR IGNORE INTO entity_timeline_recent (h, ts, event) VALUES (?, ?, ?)`,
  );
  const insEntities = db.prepare(
    `INSERT OR IGNORE INTO entity_timeline_recent (h, ts, event) VALUES ${Array<string>(ENTITY_ROWS)
      .fill('(?, ?, ?)')
      .join(', ')}`,
  );
  const params = new Array<number>(ENTITY_ROWS * 3);
  // The recent table is read in key order, so the large one takes a sorted run. A slice is
  // copied; the last step copies the rest (and what was inserted meanwhile, after `mark`) and
  // empties the table at once (far cheaper than deleting row by row). Until then an entry may be
  // in both tables: queries take their union.
  const copySlice = db.prepare(
    `INSERT OR IGNORE INTO entity_timeline (seg, h, ts, event)
     SELECT event >> ${SEGMENT_SHIFT}, h, ts, event FROM entity_timeline_recent WHERE h >= ? AND h < ?`,
  );
  const copyRest = db.prepare(
    `INSERT OR IGNORE INTO entity_timeline (seg, h, ts, event)
     SELECT event >> ${SEGMENT_SHIFT}, h, ts, event FROM entity_timeline_recent WHERE h >= ? OR event > ?`,
  );
  const empty = db.prepare(`DELETE FROM entity_timeline_recent`);
  const lastSeq = db.prepare(`SELECT coalesce(max(seq), 0) FROM events`).pluck();
  const insKey = db.prepare(`INSERT OR IGNORE INTO batches (reporter, id, at, accepted) VALUES (?, ?, ?, ?)`);
  const getKey = db.prepare(`SELECT accepted FROM batches WHERE reporter = ? AND id = ?`).pluck();
  const pruneOld = db.prepare(`DELETE FROM batches WHERE at < ?`);
  const pruneMany = db.prepare(
    `DELETE FROM batches WHERE reporter = ?1 AND at < (
       SELECT at FROM batches WHERE reporter = ?1 ORDER BY at DESC LIMIT 1 OFFSET ?2)`,
  );
  /** The newest key time written, the key time of the last prune and the reporters written since. */
  let newestKey = 0;
  let lastPrune = 0;
  const keyed = new Set<string>();
  let slice = 0;
  let mark = 0;
  let recent = db.prepare(`SELECT count(*) FROM entity_timeline_recent`).pluck().get() as number;
  let ent = new Float64Array(3 * 4 * 1024);
  let order = new Uint32Array(4 * 1024);
  const byKey = (a: number, b: number): number =>
    (ent[a * 3] as number) - (ent[b * 3] as number) ||
    (ent[a * 3 + 1] as number) - (ent[b * 3 + 1] as number) ||
    (ent[a * 3 + 2] as number) - (ent[b * 3 + 2] as number);

  const tx = db.transaction((all: readonly EventRows[]) => {
    let total = 0;
    const texts: (string | null)[][] = [];
    for (const g of all) checkRows(g);
    const results: KeyResults = [];
    const groups: EventRows[] = [];
    // The key first, in the events' transaction: a batch whose key is there already (a retry whose
    // first copy was committed) is not stored again.
    for (const g of all) {
      const k = g.key;
      if (k !== undefined && insKey.run(k.reporter, k.id, k.at, g.count).changes === 0) {
        results.push((getKey.get(k.reporter, k.id) as number | undefined) ?? g.count);
        continue;
      }
      results.push(-1);
      groups.push(g);
    }
    for (const g of groups) {
      texts.push(decodeText(g));
      total += g.count;
    }
    if (ent.length < total * 12) {
      ent = new Float64Array(total * 12);
      order = new Uint32Array(total * 4);
    }
    let m = 0;
    let prev = 0;
    for (let gi = 0; gi < groups.length; gi++) {
      const g = groups[gi] as EventRows;
      const text = texts[gi] as (string | null)[];
      const num = g.num;
      for (let i = 0; i < g.count;) {
        const k = g.count - i >= EVENT_ROWS ? EVENT_ROWS : 1;
        const p = k === 1 ? eventParam : eventParams;
        for (let j = 0; j < k; j++) {
          const t = (i + j) * TEXT_COLUMNS;
          const q = j * 9;
          p[q] = text[t] as string;
          p[q + 1] = num[(i + j) * NUM_COLUMNS] as number;
          for (let c = 1; c < TEXT_COLUMNS; c++) p[q + 1 + c] = text[t + c] as string | null;
        }
        // Rows without a rowid get the table's largest plus one, one after the other.
        const first = Number((k === 1 ? insEvent : insEvents).run(p).lastInsertRowid) - k + 1;
        if (first <= prev) throw new Error('event rowids out of order');
        prev = first + k - 1;
        for (let j = 0; j < k; j++) {
          const n = (i + j) * NUM_COLUMNS;
          const ts = num[n] as number;
          for (let e = 1; e <= 4; e++) {
            const h = num[n + e] as number;
            if (h < 0) continue;
            ent[m * 3] = h;
            ent[m * 3 + 1] = ts;
            ent[m * 3 + 2] = first + j;
            m++;
          }
        }
        i += k;
      }
    }
    const idx = order.subarray(0, m);
    for (let i = 0; i < m; i++) idx[i] = i;
    idx.sort(byKey);
    let i = 0;
    for (; i + ENTITY_ROWS <= m; i += ENTITY_ROWS) {
      for (let j = 0; j < ENTITY_ROWS; j++) {
        const x = (idx[i + j] as number) * 3;
        params[j * 3] = ent[x] as number;
        params[j * 3 + 1] = ent[x + 1] as number;
        params[j * 3 + 2] = ent[x + 2] as number;
      }
      insEntities.run(params);
    }
    for (; i < m; i++) {
      const x = (idx[i] as number) * 3;
      insEntity.run(ent[x], ent[x + 1], ent[x + 2]);
    }
    return { m, results };
  });
  const prune = db.transaction(() => {
    pruneOld.run(newestKey - BATCH_KEY_RETENTION_MS);
    for (const r of keyed) pruneMany.run(r, BATCH_KEYS_PER_REPORTER);
  });
  const step = db.transaction((from: number, to: number | null) => {
    if (to !== null) copySlice.run(from, to);
    else {
      copyRest.run(from, mark);
      empty.run();
    }
  });
  return {
    insert(groups) {
      if (groups.length === 0) return [];
      const { m, results } = tx.immediate(groups);
      recent += m;
      for (const g of groups)
        if (g.key !== undefined) {
          keyed.add(g.key.reporter);
          if (g.key.at > newestKey) newestKey = g.key.at;
        }
      return results;
    },
    pruneDue: () => keyed.size > 0 && newestKey - lastPrune >= BATCH_KEY_PRUNE_MS,
    pruneKeys() {
      prune.immediate();
      keyed.clear();
      lastPrune = newestKey;
    },
    mergeDue: () => recent >= mergeEntries,
    mergeStep(slices = MERGE_SLICES) {
      const n = Math.max(1, Math.floor(slices));
      const width = Math.ceil(HASH_END / n);
      if (slice === 0) mark = lastSeq.get() as number;
      const last = slice >= n - 1;
      step.immediate(slice * width, last ? null : (slice + 1) * width);
      slice = last ? 0 : slice + 1;
      if (last) recent = 0;
      return !last;
    },
  };
}
