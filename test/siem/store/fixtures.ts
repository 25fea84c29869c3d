// A SIEM store and its ingest writer on one file, closed after the test body (the writer first,
// so that it commits what it was given).
import {
  openEventWriter,
  type EventWriter,
  type EventWriterOptions,
} from '../../../siem/store/event-writer.js';
import { openSqliteStore } from '../../../siem/store/index.js';
import type { SiemStore } from '../../../siem/store/store.js';

export async function withWriter(
  file: string,
  opts: EventWriterOptions,
  fn: (w: EventWriter, store: SiemStore) => Promise<void>,
): Promise<void> {
  const store = openSqliteStore(file);
  const w = await openEventWriter(file, opts);
  try {
    await fn(w, store);
  } finally {
    await w.close();
    store.close();
  }
}
