// The rows of a batch of stamped events, encoded once on the ingest thread: one byte buffer of
// UTF-8 text fields and one Float64Array, both transferred to the store's writer thread without
// a copy, and written by one insert routine (event-insert.ts) on either side. (Not one joined
// string: V8 builds a ~700 KB string at ~170 MB/s, 3.6 µs per event, and clones it again for the
// thread; writing UTF-8 into a buffer costs ~1 µs.)
import type { EdgeEvent } from '../../common/events.js';
import { ENTITY, entityHash } from './entity-hash.js';
import type { BatchKey, BatchOutcome } from './store.js';

/** Strings per event: id, action, source identity, destination identity, source IP, serial, observer, doc. */
export const TEXT_COLUMNS = 8;
/** Numbers per event: time, then the timeline hashes of the four entities (-1 when absent). */
export const NUM_COLUMNS = 5;

/**
 * Ends each text field: a zero byte, which UTF-8 uses for U+0000 only. No field can hold it: the
 * columns are validated identities, addresses, hex, ids and actions (no control characters), and
 * the document is JSON, whose strings escape U+0000. decodeText checks the field count all the same.
 */
const END = 0;

export interface EventRows {
  readonly count: number;
  /** TEXT_COLUMNS UTF-8 fields per event, each ended by a zero byte; empty where absent. */
  readonly bytes: Uint8Array;
  /** NUM_COLUMNS per event. Hashes are below 2^53, so exact in a double. */
  readonly num: Float64Array;
  /** The reporter's name for the batch: stored with it, and the batch is stored once per name. */
  readonly key?: BatchKey;
}

/** Appends zero-ended UTF-8 fields to a buffer of its own (never Node's shared pool: it is transferred). */
class FieldWriter {
  private buf: Buffer;
  private n = 0;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafeSlow(Math.max(64, capacity));
  }

  field(s: string): void {
    const need = s.length * 3 + 1; // UTF-8 takes at most 3 bytes per UTF-16 unit
    if (this.buf.length - this.n < need) {
      const b = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.n + need));
      this.buf.copy(b, 0, 0, this.n);
      this.buf = b;
    }
    this.n += this.buf.write(s, this.n, 'utf8');
    this.buf[this.n++] = END;
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.n);
  }
}

/** Rows from their text fields as they are (tests build malformed rows with it). */
export function rowsFromFields(count: number, fields: readonly string[], num: Float64Array): EventRows {
  const w = new FieldWriter(fields.length * 64);
  for (const f of fields) w.field(f);
  return { count, bytes: w.bytes(), num };
}

/** Encodes stamped events (every one must carry `event.id`) for insertEventRows. */
export function encodeEventRows(events: readonly EdgeEvent[], key?: BatchKey): EventRows {
  const n = events.length;
  const text = new FieldWriter(n * 1024);
  const num = new Float64Array(n * NUM_COLUMNS);
  for (let i = 0; i < n; i++) {
    const e = events[i] as EdgeEvent;
    const id = e['event.id'];
    if (id === undefined) throw new TypeError('stored events must carry event.id (stampEvent)');
    const si = e['source.identity'];
    const di = e['destination.identity'];
    const ip = e['source.ip'];
    const se = e['tls.client.x509.serial_number'];
    text.field(id);
    text.field(e['event.action']);
    text.field(si ?? '');
    text.field(di ?? '');
    text.field(ip ?? '');
    text.field(se ?? '');
    text.field(e['observer.identity'] ?? '');
    text.field(JSON.stringify(e));
    let k = i * NUM_COLUMNS;
    num[k++] = e['@timestamp'];
    num[k++] = si === undefined ? -1 : entityHash(ENTITY.sourceIdentity, si);
    num[k++] = di === undefined ? -1 : entityHash(ENTITY.destinationIdentity, di);
    num[k++] = ip === undefined ? -1 : entityHash(ENTITY.sourceIp, ip);
    num[k] = se === undefined ? -1 : entityHash(ENTITY.serial, se);
  }
  return key === undefined
    ? { count: n, bytes: text.bytes(), num }
    : { count: n, bytes: text.bytes(), num, key };
}

/** The text fields of encoded rows, absent ones as null; a TypeError if they do not add up. */
export function decodeText(rows: EventRows): (string | null)[] {
  const b = Buffer.from(rows.bytes.buffer, rows.bytes.byteOffset, rows.bytes.byteLength);
  const f = new Array<string | null>(rows.count * TEXT_COLUMNS);
  let k = 0;
  for (let p = 0; p < b.length; k++) {
    const q = b.indexOf(END, p);
    if (q < 0 || k >= f.length) throw new TypeError('malformed event rows');
    f[k] = q === p ? null : b.toString('utf8', p, q);
    p = q + 1;
  }
  if (k !== f.length) throw new TypeError('malformed event rows');
  return f;
}

/** Refuses rows that are not what encodeEventRows makes (our own misuse: a TypeError). */
export function checkRows(r: EventRows): void {
  if (
    !Number.isSafeInteger(r.count) ||
    r.count < 0 ||
    !(r.bytes instanceof Uint8Array) ||
    !(r.num instanceof Float64Array) ||
    r.num.length !== r.count * NUM_COLUMNS ||
    (r.key !== undefined &&
      (typeof r.key.reporter !== 'string' || typeof r.key.id !== 'string' || !Number.isSafeInteger(r.key.at)))
  )
    throw new TypeError('malformed event rows');
}

/** Per batch of a write: -1 when it was stored now, else the events stored under its key before. */
export type KeyResults = number[];

/** The domain's outcomes of a write from the adapter's KeyResults. */
export function outcomesOf(rows: readonly EventRows[], keys: KeyResults): BatchOutcome[] {
  return rows.map((r, i) => {
    const k = keys[i] ?? -1;
    return k < 0 ? { duplicate: false, accepted: r.count } : { duplicate: true, accepted: k };
  });
}
