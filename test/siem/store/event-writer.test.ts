// The ingest writer on a real SQLite file, on its worker thread and in-thread: commits in order,
// all-or-nothing per write, acknowledged means stored (also when the thread dies mid-stream), and
// the store's own writes go first instead of being starved by a busy writer.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createEventIdFactory, stampEvent, validateEvent, type EdgeEvent } from '../../../common/events.js';
import { asyncStore, openSqliteStoreSync } from '../../../siem/store/index.js';
import { prepareEventInsert, SEGMENT_SHIFT } from '../../../siem/store/event-insert.js';
import { decodeText, encodeEventRows, rowsFromFields, TEXT_COLUMNS } from '../../../siem/store/event-rows.js';
import { openEventWriter } from '../../../siem/store/event-writer.js';
import { withWriter } from './fixtures.js';
import { tempDir } from '../../helpers/tmp.js';

const T = Date.UTC(2026, 0, 10);
const OBS = 'spiffe://factory.example/node/n1';
const nextId = createEventIdFactory(randomBytes);

/** n stamped events of one device (its own timeline), with all four timeline entities. */
function batch(device: string, n: number): EdgeEvent[] {
  return Array.from({ length: n }, (_, i) =>
    stampEvent(
      validateEvent({
        '@timestamp': T + i,
        'event.action': 'connection.accepted',
        'source.identity': `spiffe://factory.example/device/${device}`,
        'destination.identity': 'spiffe://factory.example/node/n1',
        'source.ip': '10.0.0.1',
        'tls.client.x509.serial_number': 'ab01',
      }),
      { id: nextId(T), observer: OBS, ingested: T + i },
    ),
  );
}

const codeOf = async (p: Promise<unknown>): Promise<string | undefined> =>
  p.then(
    () => undefined,
    (err: unknown) => (err as { code?: string }).code ?? (err as Error).name,
  );

describe.each([
  ['on its worker thread', true],
  ['on the calling thread', false],
])('event writer %s', (_name, thread) => {
  const dir = tempDir();

  it('stores text beyond ASCII as it came: accents, CJK, emoji and escapes in the document', async () => {
    await withWriter(join(dir, `utf8-${thread}.db`), { thread }, async (w, store) => {
      const reasons = ['café é', '证书已吊销', 'key 🔑 lost', 'tab\there "quoted" \\ back', 'x'.repeat(5000)];
      const events = batch('u', reasons.length).map((e, i) => ({
        ...e,
        'event.reason': reasons[i] as string,
      }));
      await w.write([encodeEventRows(events)]);
      for (const e of events) expect(store.event(e['event.id'] as string)).toEqual(e);
      // The fields round-trip through the encoding unchanged, absent ones as null.
      const f = decodeText(encodeEventRows(events.slice(0, 1)));
      expect(f).toHaveLength(TEXT_COLUMNS);
      expect(JSON.parse(f[TEXT_COLUMNS - 1] as string)).toEqual(events[0]);
    });
  });

  it('commits writes in order; the store reads them back, timelines included', async () => {
    const file = join(dir, `order-${thread}.db`);
    await withWriter(file, { thread }, async (w, store) => {
      const a = batch('a', 300);
      const b = batch('b', 200);
      await Promise.all([w.write([encodeEventRows(a)]), w.write([encodeEventRows(b)])]);
      expect(store.countEvents()).toBe(500);
      const got = store.timeline({
        entity: 'source.identity',
        value: 'spiffe://factory.example/device/a',
        limit: 10_000,
      });
      expect(got).toHaveLength(300);
      expect(got[0]).toEqual(a[299]);
      expect(store.timeline({ entity: 'serial', value: 'ab01', limit: 10_000 })).toHaveLength(500);
      // Arrival order is rowid order.
      const db = new Database(file, { readonly: true });
      const ids = db.prepare('SELECT id FROM events ORDER BY seq').pluck().all();
      db.close();
      expect(ids).toEqual([...a, ...b].map((e) => e['event.id']));
    });
  });

  it('refuses a missing file, or one without the store\u2019s schema, with ERR_SIEM_STORE', async () => {
    expect(await codeOf(openEventWriter(join(dir, `missing-${thread}.db`), { thread }))).toBe(
      'ERR_SIEM_STORE',
    );
    const bare = join(dir, `bare-${thread}.db`);
    new Database(bare).close();
    expect(await codeOf(openEventWriter(bare, { thread }))).toBe('ERR_SIEM_STORE');
  });

  it('keeps a document whose free text holds U+0000 (the field separator) intact', async () => {
    await withWriter(join(dir, `nul-${thread}.db`), { thread }, async (w, store) => {
      const [e] = batch('nul', 1).map((x) => ({ ...x, message: 'a\u0000b\u0000', 'event.reason': '\u0000' }));
      await w.write([encodeEventRows([e as EdgeEvent])]);
      expect(store.event((e as EdgeEvent)['event.id'] as string)).toEqual(e);
    });
  });

  it('refuses a whole group when one of its batches fails (ERR_SIEM_STORE), then goes on', async () => {
    await withWriter(join(dir, `atomic-${thread}.db`), { thread }, async (w, store) => {
      const good = encodeEventRows(batch('g', 50));
      const rows = encodeEventRows(batch('x', 50));
      // An event without its action breaks the events table's NOT NULL: SQLite refuses it.
      const broken = rowsFromFields(
        rows.count,
        decodeText(rows).map((v, i) => (i % TEXT_COLUMNS === 1 ? '' : (v ?? ''))),
        rows.num,
      );
      expect(await codeOf(w.write([good, broken]))).toBe('ERR_SIEM_STORE');
      expect(store.countEvents()).toBe(0);
      // Rows whose fields do not add up are refused before any insert.
      const s2 = encodeEventRows(batch('s', 2));
      const extra = rowsFromFields(
        s2.count,
        [...decodeText(s2).map((v) => v ?? ''), 'one field too many'],
        s2.num,
      );
      expect(await codeOf(w.write([encodeEventRows(batch('t', 2)), extra]))).toBe(
        thread ? 'ERR_SIEM_STORE' : 'TypeError',
      );
      expect(store.countEvents()).toBe(0);
      await w.write([encodeEventRows(batch('h', 10))]);
      expect(store.countEvents()).toBe(10);
    });
  });
});

describe('event writer thread', () => {
  const dir = tempDir();

  it('never acknowledges a write it did not commit when its thread dies mid-stream; a new thread takes over', async () => {
    await withWriter(join(dir, 'crash.db'), { thread: true }, async (w, store) => {
      const batches = Array.from({ length: 30 }, (_, k) => batch(`c${k}`, 2000));
      const outcome: ('acked' | 'refused')[] = [];
      const codes = new Set<string>();
      const writes = batches.map((b, k) =>
        w.write([encodeEventRows(b)]).then(
          () => void (outcome[k] = 'acked'),
          (err: unknown) => {
            outcome[k] = 'refused';
            codes.add((err as { code: string }).code);
          },
        ),
      );
      await writes[0];
      await w.abort();
      await Promise.all(writes);
      const acked = outcome.flatMap((o, k) => (o === 'acked' ? [k] : []));
      expect(acked.length).toBeGreaterThanOrEqual(1);
      expect(acked.length).toBeLessThan(batches.length);
      expect([...codes]).toEqual(['ERR_SIEM_STORE']);
      const stored = (k: number): number =>
        store.timeline({
          entity: 'source.identity',
          value: `spiffe://factory.example/device/c${k}`,
          limit: 10_000,
        }).length;
      // Every acknowledged write is stored whole; any other write is stored whole or not at all.
      for (const k of acked) expect({ k, n: stored(k) }).toEqual({ k, n: 2000 });
      for (let k = 0; k < batches.length; k++) expect([0, 2000]).toContain(stored(k));
      // The next write starts a new thread.
      await w.write([encodeEventRows(batch('after', 5))]);
      expect(
        store.timeline({ entity: 'source.identity', value: 'spiffe://factory.example/device/after' }),
      ).toHaveLength(5);
    });
  });

  it('lets the store write first: no group commits while a store write runs (no starvation)', async () => {
    const file = join(dir, 'yield.db');
    const own = openSqliteStoreSync(file);
    const w = await openEventWriter(file, { thread: true });
    const reader = new Database(file, { readonly: true });
    const fromWriter = reader
      .prepare(`SELECT count(*) FROM events WHERE source_identity GLOB '*/device/y*'`)
      .pluck();
    try {
      const writes = Array.from({ length: 40 }, (_, k) => w.write([encodeEventRows(batch(`y${k}`, 1000))]));
      await writes[0];
      // A store write that takes a while (150 ms of audit inserts): the writer thread, with 39
      // writes queued, must commit none of them meanwhile, and then commits them all.
      let ownInserts = 0;
      let during: [unknown, unknown] = [-1, -2];
      const slow = Object.assign(Object.create(own) as typeof own, {
        insertEvents: (events: readonly EdgeEvent[]) => {
          const before = fromWriter.get();
          const end = performance.now() + 150;
          while (performance.now() < end) {
            own.insertEvents(events);
            ownInserts++;
          }
          during = [before, fromWriter.get()];
        },
      });
      await asyncStore(slow, (fn) => w.exclusive(fn)).insertEvents(batch('audit', 1));
      expect(during[1]).toBe(during[0]);
      expect(during[0]).toBeLessThan(40_000);
      await Promise.all(writes);
      expect(fromWriter.get()).toBe(40_000);
      // The plain yielding store writes under load without "database is locked".
      const store = asyncStore(own, (fn) => w.exclusive(fn));
      const more = Array.from({ length: 20 }, (_, k) => w.write([encodeEventRows(batch(`z${k}`, 1000))]));
      const own20 = Array.from({ length: 20 }, (_, i) => store.insertEvents(batch(`s${i}`, 1)));
      await Promise.all([...more, ...own20]);
      expect(own.countEvents()).toBe(40_000 + ownInserts + 20_000 + 20);
    } finally {
      reader.close();
      await w.close();
      own.close();
    }
  });
});

describe('event writer thread: merge', () => {
  const dir = tempDir();

  it('commits a write that arrives during a merge before the merge ends (one slice per turn)', async () => {
    const file = join(dir, 'interleave.db');
    const store = openSqliteStoreSync(file);
    const w = await openEventWriter(file, { thread: true });
    const raw = new Database(file, { readonly: true });
    try {
      // 33,000 events of four entities each pass the merge threshold (131,072 entries); the
      // second write is posted before the first is answered.
      const a = w.write([encodeEventRows(batch('big', 33_000))]);
      const b = w.write([encodeEventRows(batch('late', 1))]);
      await a;
      await b;
      // Answered while the merge the first write started still has slices to go (a slice takes
      // tens of ms; before, the whole merge ran between the two writes).
      const unmerged = raw
        .prepare(`SELECT count(*) FROM entity_timeline_recent WHERE event <= 33000`)
        .pluck()
        .get() as number;
      expect(unmerged).toBeGreaterThan(0);
      // The merge completes on its own, and timelines never miss an event meanwhile.
      const recent = raw.prepare(`SELECT count(*) FROM entity_timeline_recent`).pluck();
      for (let i = 0; i < 200 && (recent.get() as number) > 4; i++) {
        expect(store.timeline({ entity: 'source.ip', value: '10.0.0.1', limit: 10_000 })).toHaveLength(
          10_000,
        );
        await new Promise((r) => setTimeout(r, 25));
      }
      expect(recent.get()).toBe(0);
      const big = {
        entity: 'source.identity',
        value: 'spiffe://factory.example/device/big',
        limit: 10_000,
      } as const;
      expect(store.timeline(big)).toHaveLength(10_000);
      expect(store.timeline({ ...big, value: 'spiffe://factory.example/device/late' })).toHaveLength(1);
    } finally {
      raw.close();
      await w.close();
      store.close();
    }
  });
});

describe('timeline entries: recent table and merge', () => {
  const dir = tempDir();
  const q = { entity: 'identity', value: 'spiffe://factory.example/device/m', limit: 100 } as const;
  const later = (events: EdgeEvent[], ms: number): EdgeEvent[] =>
    events.map((e) => ({ ...e, '@timestamp': e['@timestamp'] + ms }));

  function open(name: string) {
    const file = join(dir, name);
    const store = openSqliteStoreSync(file);
    const db = new Database(file);
    // A threshold of 40 entries: 10 events of 4 entities each.
    const ins = prepareEventInsert(db, 40);
    const counts = (): unknown[] =>
      ['entity_timeline_recent', 'entity_timeline'].map((t) =>
        db.prepare(`SELECT count(*) FROM ${t}`).pluck().get(),
      );
    const close = (): void => {
      db.close();
      store.close();
    };
    return { store, ins, counts, close };
  }

  it('answers the same timelines before, during and after a merge in slices', () => {
    const { store, ins, counts, close } = open('merge.db');
    try {
      const a = batch('m', 6);
      ins.insert([encodeEventRows(a)]);
      expect(ins.mergeDue()).toBe(false);
      expect(store.timeline(q)).toEqual([...a].reverse());
      expect(counts()).toEqual([24, 0]);
      const b = later(batch('m', 6), 1000);
      ins.insert([encodeEventRows(b)]);
      expect(ins.mergeDue()).toBe(true);
      // Three slices of the hash space, three steps. Between them an entry may be in both tables:
      // timelines still list each event once. An event inserted meanwhile is merged too.
      const ab = [...a, ...b].reverse();
      expect(ins.mergeStep(3)).toBe(true);
      expect(store.timeline(q)).toEqual(ab);
      expect(ins.mergeStep(3)).toBe(true);
      expect(store.timeline(q)).toEqual(ab);
      const meanwhile = later(batch('late', 1), 1500);
      store.insertEvents(meanwhile);
      expect(ins.mergeStep(3)).toBe(false);
      expect(ins.mergeDue()).toBe(false);
      expect(counts()).toEqual([0, 52]);
      expect(store.timeline(q)).toEqual(ab);
      expect(store.timeline({ ...q, value: 'spiffe://factory.example/device/late' })).toEqual(meanwhile);
      // Newer entries land in the recent table again; a timeline reads both, newest first.
      const c = later(batch('m', 3), 2000);
      ins.insert([encodeEventRows(c)]);
      expect(counts()).toEqual([12, 52]);
      expect(store.timeline(q)).toEqual([...a, ...b, ...c].reverse());
      expect(store.timeline({ ...q, limit: 4 })).toEqual([...c].reverse().concat([b[5] as EdgeEvent]));
      expect(store.timeline({ entity: 'serial', value: 'ab01', limit: 100 })).toHaveLength(16);
    } finally {
      close();
    }
  });

  it('reads and prunes timelines across segments, whatever segments lie between', () => {
    const { store, ins, counts, close } = open('segments.db');
    const raw = new Database(join(dir, 'segments.db'));
    const segments = (): unknown[] =>
      raw.prepare(`SELECT DISTINCT seg FROM entity_timeline ORDER BY seg`).pluck().all();
    try {
      const a = batch('m', 6);
      ins.insert([encodeEventRows(a)]);
      while (ins.mergeStep());
      // An event row (no entities) three segments on: the next events' rowids follow it.
      const skip = 3 * 2 ** SEGMENT_SHIFT;
      raw
        .prepare(`INSERT INTO events (seq, id, ts, action, doc) VALUES (?, 'skip', ?, 'x', '{}')`)
        .run(skip, T + 1500);
      const b = later(batch('m', 6), 2000);
      ins.insert([encodeEventRows(b)]);
      while (ins.mergeStep());
      expect(segments()).toEqual([0, 3]);
      expect(counts()).toEqual([0, 48]);
      const c = later(batch('m', 2), 3000);
      ins.insert([encodeEventRows(c)]);
      // Newest first across the recent table and both segments; cut to the limit across them.
      expect(store.timeline(q)).toEqual([...a, ...b, ...c].reverse());
      expect(store.timeline({ ...q, limit: 9 })).toEqual([...a.slice(-1), ...b, ...c].reverse());
      expect(store.timeline({ ...q, since: T + 5, until: T + 2001 })).toEqual([b[0], a[5]]);
      expect(store.timeline({ entity: 'source.ip', value: '10.0.0.1', limit: 3 })).toEqual(
        [...b.slice(-1), ...c].reverse(),
      );
      // Retention empties the old segment, then the new one's entries of pruned events.
      expect(store.pruneOlderThan(T + 2003, 100)).toBe(10);
      expect(segments()).toEqual([3]);
      expect(counts()).toEqual([8, 12]);
      expect(store.timeline(q)).toEqual([...b.slice(3), ...c].reverse());
    } finally {
      raw.close();
      close();
    }
  });

  it('retention deletes timeline entries from both tables', () => {
    const { store, ins, counts, close } = open('prune.db');
    try {
      const a = batch('m', 6);
      ins.insert([encodeEventRows(a)]);
      while (ins.mergeStep());
      const c = later(batch('m', 3), 2000);
      ins.insert([encodeEventRows(c)]);
      expect(counts()).toEqual([12, 24]);
      expect(store.pruneOlderThan(T + 2000, 100)).toBe(6);
      expect(counts()).toEqual([12, 0]);
      expect(store.timeline(q)).toEqual([...c].reverse());
      expect(store.pruneOlderThan(T + 3000, 100)).toBe(3);
      expect(counts()).toEqual([0, 0]);
    } finally {
      close();
    }
  });
});
