// The reporter's durable on-disk spool: SQLite in WAL mode with synchronous=FULL, so an event
// that append() returned for is on disk and survives kill -9; bounded in events and bytes. Each
// row carries the id of the batch it is sent in once that batch was formed, so a batch resent
// (after a lost answer, or after a restart) has the same id and the SIEM stores it once.
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { EdgewardError } from '../common/errors.js';
import { dirname } from 'node:path';
import { privateDatabase, privateDir } from '../common/private-files.js';

export interface SpoolRow {
  readonly seq: number;
  readonly body: string;
  /** The batch it is sent in (Edgeward-Batch-Id), or null until its batch is formed. */
  readonly batch: string | null;
}

/** A new batch id: 128 random bits as 32 lowercase hex digits. */
export const newBatchId = (): string => randomBytes(16).toString('hex');

export interface SpoolLimits {
  readonly maxEvents: number;
  readonly maxBytes: number;
}

export class Spool {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement<[string, string | null]>;
  private readonly select: Database.Statement<[number], SpoolRow>;
  private readonly head: Database.Statement<[], SpoolRow>;
  private readonly del: Database.Statement<[number]>;
  private readonly name: Database.Statement<[string, number, number]>;
  private readonly unnameRows: Database.Statement<[number, number]>;
  private readonly appendMany: (bodies: readonly string[], batch: string | null) => number;
  private count: number;
  private bytes: number;
  /** Events refused because the spool was full (since open). */
  dropped = 0;

  constructor(
    readonly file: string,
    private readonly limits: SpoolLimits,
  ) {
    try {
      privateDir(dirname(file));
      this.db = new Database(privateDatabase(file));
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.exec(
        'CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, batch TEXT)',
      );
      // A spool from before batch ids: its rows get theirs when they are sent.
      const cols = this.db.prepare(`SELECT name FROM pragma_table_info('spool')`).pluck().all() as string[];
      if (!cols.includes('batch')) this.db.exec('ALTER TABLE spool ADD COLUMN batch TEXT');
      const stats = this.db
        .prepare('SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(body)), 0) AS b FROM spool')
        .get() as { n: number; b: number };
      this.count = stats.n;
      this.bytes = stats.b;
      this.insert = this.db.prepare('INSERT INTO spool (body, batch) VALUES (?, ?)');
      this.select = this.db.prepare('SELECT seq, body, batch FROM spool ORDER BY seq LIMIT ?');
      this.head = this.db.prepare('SELECT seq, body, batch FROM spool ORDER BY seq');
      this.del = this.db.prepare('DELETE FROM spool WHERE seq <= ?');
      this.name = this.db.prepare('UPDATE spool SET batch = ? WHERE seq >= ? AND seq <= ? AND batch IS NULL');
      this.unnameRows = this.db.prepare('UPDATE spool SET batch = NULL WHERE seq >= ? AND seq <= ?');
    } catch (cause) {
      throw new EdgewardError('ERR_AGENT_SPOOL', `cannot open spool ${file}`, { cause });
    }
    this.appendMany = this.db.transaction((bodies: readonly string[], batch: string | null) => {
      let n = 0;
      for (const b of bodies) {
        if (this.count + 1 > this.limits.maxEvents || this.bytes + b.length > this.limits.maxBytes) break;
        this.insert.run(b, batch);
        this.count += 1;
        this.bytes += b.length;
        n += 1;
      }
      return n;
    });
  }

  get size(): number {
    return this.count;
  }

  /**
   * Appends in order, as one batch with id `batch` (a batch formed already, whose send failed) or
   * as rows whose batch is formed when they are sent; returns how many were stored (the rest were
   * refused: spool full). Durable on return.
   */
  append(bodies: readonly string[], batch?: string): number {
    if (bodies.length === 0) return 0;
    let n: number;
    try {
      n = this.appendMany(bodies, batch ?? null);
    } catch (cause) {
      // The transaction rolled back: recount so the counters match the disk again.
      this.recount();
      throw new EdgewardError('ERR_AGENT_SPOOL', 'spool write failed', { cause });
    }
    this.dropped += bodies.length - n;
    return n;
  }

  peek(limit: number): SpoolRow[] {
    return this.select.all(limit);
  }

  /**
   * The next batch to send, with its id: the first rows' batch as it was formed (all its rows,
   * whatever `limit` is now), or else up to `limit` rows not in a batch yet, given a new id that is
   * on disk before this returns (so the same rows are sent under the same id after a restart).
   */
  nextBatch(limit: number): { id: string; rows: SpoolRow[] } | undefined {
    const rows: SpoolRow[] = [];
    let id: string | null = null;
    for (const r of this.head.iterate()) {
      if (rows.length === 0) id = r.batch;
      else if (r.batch !== id || (id === null && rows.length >= limit)) break;
      rows.push(r);
    }
    const first = rows[0];
    const last = rows[rows.length - 1];
    if (first === undefined || last === undefined) return undefined;
    if (id !== null) return { id, rows };
    const fresh = newBatchId();
    try {
      this.name.run(fresh, first.seq, last.seq);
    } catch (cause) {
      throw new EdgewardError('ERR_AGENT_SPOOL', 'spool write failed', { cause });
    }
    return { id: fresh, rows: rows.map((r) => ({ ...r, batch: fresh })) };
  }

  /** Forgets the batch id of rows first..last (a batch the SIEM refused without storing it). */
  unname(first: number, last: number): void {
    try {
      this.unnameRows.run(first, last);
    } catch (cause) {
      throw new EdgewardError('ERR_AGENT_SPOOL', 'spool write failed', { cause });
    }
  }

  /** Removes every row up to and including `seq` (after the SIEM accepted them). */
  ack(seq: number): void {
    this.del.run(seq);
    this.recount();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private recount(): void {
    const s = this.db
      .prepare('SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(body)), 0) AS b FROM spool')
      .get() as { n: number; b: number };
    this.count = s.n;
    this.bytes = s.b;
  }
}
