// The rows of a batch of stamped events, encoded once on the ingest thread: one string and one
// Float64Array, cheap to hand to the store's writer thread (one string copied rather than eight
// per event, the numbers' buffer transferred) and written by one insert routine (event-insert.ts)
// on either side.
import type { EdgeEvent } from '../../common/events.js';
import { ENTITY, entityHash } from './entity-hash.js';

/** Strings per event: id, action, source identity, destination identity, source IP, serial, observer, doc. */
export const TEXT_COLUMNS = 8;
/** Numbers per event: time, then the timeline hashes of the four entities (-1 when absent). */
export const NUM_COLUMNS = 5;

/**
 * Separates the text fields. None of them can hold it: the columns are validated identities,
 * addresses, hex, ids and actions (no control characters), and the document is JSON, whose
 * strings escape U+0000. decodeText checks the field count all the same.
 */
const SEP = '\u0000';

export interface EventRows {
  readonly count: number;
  /** TEXT_COLUMNS fields per event joined by U+0000; an empty field where the value is absent. */
  readonly text: string;
  /** NUM_COLUMNS per event. Hashes are below 2^53, so exact in a double. */
  readonly num: Float64Array;
}

/** Encodes stamped events (every one must carry `event.id`) for insertEventRows. */
export function encodeEventRows(events: readonly EdgeEvent[]): EventRows {
  const n = events.length;
  const text = new Array<string>(n * TEXT_COLUMNS);
  const num = new Float64Array(n * NUM_COLUMNS);
  for (let i = 0; i < n; i++) {
    const e = events[i] as EdgeEvent;
    const id = e['event.id'];
    if (id === undefined) throw new TypeError('stored events must carry event.id (stampEvent)');
    const si = e['source.identity'];
    const di = e['destination.identity'];
    const ip = e['source.ip'];
    const se = e['tls.client.x509.serial_number'];
    let t = i * TEXT_COLUMNS;
    text[t++] = id;
    text[t++] = e['event.action'];
    text[t++] = si ?? '';
    text[t++] = di ?? '';
    text[t++] = ip ?? '';
    text[t++] = se ?? '';
    text[t++] = e['observer.identity'] ?? '';
    text[t] = JSON.stringify(e);
    let k = i * NUM_COLUMNS;
    num[k++] = e['@timestamp'];
    num[k++] = si === undefined ? -1 : entityHash(ENTITY.sourceIdentity, si);
    num[k++] = di === undefined ? -1 : entityHash(ENTITY.destinationIdentity, di);
    num[k++] = ip === undefined ? -1 : entityHash(ENTITY.sourceIp, ip);
    num[k] = se === undefined ? -1 : entityHash(ENTITY.serial, se);
  }
  return { count: n, text: text.join(SEP), num };
}

/** The text fields of encoded rows, absent ones as null; a TypeError if they do not add up. */
export function decodeText(rows: EventRows): (string | null)[] {
  if (rows.count === 0 && rows.text === '') return [];
  const f: (string | null)[] = rows.text.split(SEP);
  if (f.length !== rows.count * TEXT_COLUMNS) throw new TypeError('malformed event rows');
  for (let i = 0; i < f.length; i++) if (f[i] === '') f[i] = null;
  return f;
}
