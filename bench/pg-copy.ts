// COPY ... FROM STDIN with `pg` alone (no pg-copy-streams): a query object of pg's Submittable
// kind that sends the rows, already in COPY text format, once the server asks for them. For the
// ingest benchmark's comparison of COPY with the multi-row unnest insert; not an ingest path.
import type pg from 'pg';

interface CopyConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

class CopyIn {
  private error: unknown;
  rowCount = 0;
  readonly done: Promise<number>;
  private settle!: { resolve: (n: number) => void; reject: (e: unknown) => void };

  constructor(
    private readonly text: string,
    private readonly chunks: readonly Buffer[],
  ) {
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
  }

  submit(connection: CopyConnection): void {
    connection.query(this.text);
  }

  handleCopyInResponse(connection: CopyConnection): void {
    for (const c of this.chunks) connection.sendCopyFromChunk(c);
    connection.endCopyFrom();
  }

  handleCommandComplete(msg: { text?: string }): void {
    this.rowCount = Number(/(\d+)$/.exec(msg.text ?? '')?.[1] ?? 0);
  }

  handleError(err: unknown): void {
    this.error = err;
  }

  handleReadyForQuery(): void {
    if (this.error !== undefined) this.settle.reject(this.error);
    else this.settle.resolve(this.rowCount);
  }

  // Messages a COPY FROM never gets; pg calls them on any active query.
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}

/** One field in COPY text format: \N for null, backslash escapes for the separators. */
function field(v: unknown): string {
  if (v === null || v === undefined) return '\\N';
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /[\\\t\n\r]/.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c] as string) : s; // prettier-ignore
}

/** COPY of column arrays (one array per column, equal lengths) into `table (columns)`. */
export async function copyColumns(
  c: pg.PoolClient,
  table: string,
  columns: readonly string[],
  values: readonly (readonly unknown[])[],
): Promise<number> {
  const n = values[0]?.length ?? 0;
  const chunks: Buffer[] = [];
  let lines: string[] = [];
  for (let i = 0; i < n; i++) {
    lines.push(values.map((col) => field(col[i])).join('\t'));
    if (lines.length === 500) {
      chunks.push(Buffer.from(`${lines.join('\n')}\n`));
      lines = [];
    }
  }
  if (lines.length > 0) chunks.push(Buffer.from(`${lines.join('\n')}\n`));
  const q = new CopyIn(`COPY ${table} (${columns.join(', ')}) FROM STDIN`, chunks);
  (c as unknown as { query(q: CopyIn): unknown }).query(q);
  return q.done;
}
