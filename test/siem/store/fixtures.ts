// A SIEM store (the SQLite adapter's synchronous face) and its ingest writer on one file, closed
// after the test body (the writer first, so that it commits what it was given).
import {
  openEventWriter,
  type EventWriterOptions,
  type SqliteEventWriter,
} from '../../../siem/store/event-writer.js';
import { openSqliteStoreSync, type SqliteStoreSync } from '../../../siem/store/index.js';

export async function withWriter(
  file: string,
  opts: EventWriterOptions,
  fn: (w: SqliteEventWriter, store: SqliteStoreSync) => Promise<void>,
): Promise<void> {
  const store = openSqliteStoreSync(file);
  const w = await openEventWriter(file, opts);
  try {
    await fn(w, store);
  } finally {
    await w.close();
    store.close();
  }
}
