// The reporter's durable on-disk spool: SQLite in WAL mode with synchronous=FULL, so an event
// that append() returned for is on disk and survives kill -9; bounded in events and bytes.
import Database from 'better-sqlite3';
import { EdgewardError } from '../common/errors.js';
import { dirname } from 'node:path';
import { privateDatabase, privateDir } from '../common/private-files.js';

export interface SpoolRow {
  readonly seq: number;
  readonly body: string;
}

export interface SpoolLimits {
  readonly maxEvents: number;
  readonly maxBytes: number;
}

export class Spool {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement<[string]>;
  private readonly select: Database.Statement<[number], SpoolRow>;
  private readonly del: Database.Statement<[number]>;
  private readonly appendMany: (bodies: readonly string[]) => number;
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
        'CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)',
      );
      const stats = this.db
        .prepare('SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(body)), 0) AS b FROM spool')
        .get() as { n: number; b: number };
      this.count = stats.n;
      this.bytes = stats.b;
      this.insert = this.db.prepare('INSERT INTO spool (body) VALUES (?)');
      this.select = this.db.prepare('SELECT seq, body FROM spool ORDER BY seq LIMIT ?');
      this.del = this.db.prepare('DELETE FROM spool WHERE seq <= ?');
    } catch (cause) {
      throw new EdgewardError('ERR_AGENT_SPOOL', `cannot open spool ${file}`, { cause });
    }
    this.appendMany = this.db.transaction((bodies: readonly string[]) => {
      let n = 0;
      for (const b of bodies) {
        if (this.count + 1 > this.limits.maxEvents || this.bytes + b.length > this.limits.maxBytes) break;
        this.insert.run(b);
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

  /** Appends in order; returns how many were stored (the rest were refused: spool full). Durable on return. */
  append(bodies: readonly string[]): number {
    if (bodies.length === 0) return 0;
    let n: number;
    try {
      n = this.appendMany(bodies);
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
