// The ingest pipeline over a real writer thread, a real SQLite file and the default rule pack:
// acknowledged means committed, groups grow while a commit is under way, committed groups are
// correlated in commit order, and a failed commit refuses its batches and nothing else.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createEventIdFactory, stampEvent, validateEvent, type EdgeEvent } from '../../../common/events.js';
import { silentLogger } from '../../../common/log.js';
import { loadRules } from '../../../policies/rules/index.js';
import { Correlator, type Alert } from '../../../siem/correlate/index.js';
import { IngestPipeline } from '../../../siem/service/ingest.js';
import { decodeText, rowsFromFields, TEXT_COLUMNS, type EventRows } from '../../../siem/store/event-rows.js';
import {
  domainEventWriter,
  openEventWriter,
  type SqliteEventWriter,
} from '../../../siem/store/event-writer.js';
import { openSqliteStoreSync } from '../../../siem/store/index.js';
import { tempDir } from '../../helpers/tmp.js';
import { RULES } from './setup.js';

const OBS = 'spiffe://factory.example/node/n1';
const nextId = createEventIdFactory(randomBytes);

function events(n: number, fields: Record<string, unknown>, t0 = Date.now() - 30_000): EdgeEvent[] {
  return Array.from({ length: n }, (_, i) =>
    stampEvent(validateEvent({ '@timestamp': t0 + i * 100, ...fields }), {
      id: nextId(Date.now()),
      observer: OBS,
      ingested: Date.now(),
    }),
  );
}
const failures = (ip: string, n: number) =>
  events(n, { 'event.action': 'handshake.failure', 'source.ip': ip, 'event.reason': 'unknown_ca' });

async function setup(name: string, wrap: (w: SqliteEventWriter) => SqliteEventWriter = (w) => w) {
  const file = join(tempDir(), `${name}.db`);
  const store = openSqliteStoreSync(file);
  const writer = await openEventWriter(file);
  const committed: string[][] = [];
  const alerts: Alert[] = [];
  const ingest = new IngestPipeline({
    writer: domainEventWriter(wrap(writer)),
    correlator: new Correlator(await loadRules(RULES)),
    log: silentLogger,
    onAlerts: (a) => {
      alerts.push(...a);
    },
    onCommitted: (es) => committed.push(es.map((e) => e['event.id'] as string)),
  });
  const done = async () => {
    await ingest.close();
    await writer.close();
    store.close();
  };
  return { store, ingest, committed, alerts, done };
}

const codeOf = (p: Promise<unknown>): Promise<string | undefined> =>
  p.then(
    () => undefined,
    (err: unknown) => (err as { code?: string }).code,
  );

describe('ingest pipeline', () => {
  it('acknowledges batches once committed, in groups, and correlates them in commit order', async () => {
    const { store, ingest, committed, alerts, done } = await setup('groups');
    try {
      // Ten batches in one turn of the event loop: one group commit.
      const first = Array.from({ length: 10 }, (_, k) => events(100, { 'event.action': `a.b${k}` }));
      await Promise.all(first.map((b) => ingest.submit(b)));
      expect(store.countEvents()).toBe(1000);
      expect(ingest.commits).toBe(1);
      // 20 handshake failures from one address fire the default burst rule once committed.
      const burst = failures('192.0.2.77', 20);
      const acked = ingest.submit(burst);
      let stored = -1;
      void acked.then(() => (stored = store.countEvents()));
      await acked;
      expect(stored).toBe(1020);
      // Acknowledged, not yet correlated: still counted against the queue limit.
      expect(ingest.queued).toBe(20);
      await new Promise((r) => setImmediate(r));
      expect(alerts.map((a) => a.ruleId)).toContain('ew-handshake-failures-burst');
      expect(committed.flat()).toEqual([...first.flat(), ...burst].map((e) => e['event.id']));
      expect(ingest.queued).toBe(0);
    } finally {
      await done();
    }
  });

  it('joins the batches that arrive during a commit into the next group', async () => {
    const { store, ingest, done } = await setup('grow');
    try {
      const a = ingest.submit(events(2000, { 'event.action': 'x.first' }));
      await new Promise((r) => setImmediate(r)); // the first group is on its way to the writer
      const rest = Array.from({ length: 8 }, () => ingest.submit(events(500, { 'event.action': 'x.more' })));
      await Promise.all([a, ...rest]);
      expect(store.countEvents()).toBe(6000);
      expect(ingest.commits).toBe(2);
    } finally {
      await done();
    }
  });

  it('refuses the batches of a failed commit (ERR_SIEM_STORE), stores and correlates none of them, and goes on', async () => {
    let failNext = false;
    const { store, ingest, committed, alerts, done } = await setup('fail', (w) => ({
      write: (batches: readonly EventRows[]) => {
        if (!failNext) return w.write(batches);
        failNext = false;
        // A real SQLite failure: the last batch's events lose their action (NOT NULL).
        const last = batches[batches.length - 1] as EventRows;
        const broken = rowsFromFields(
          last.count,
          decodeText(last).map((v, i) => (i % TEXT_COLUMNS === 1 ? '' : (v ?? ''))),
          last.num,
        );
        return w.write([...batches.slice(0, -1), broken]);
      },
      exclusive: (fn) => w.exclusive(fn),
      walCheckpoints: () => w.walCheckpoints(),
      close: () => w.close(),
      abort: () => w.abort(),
    }));
    try {
      failNext = true;
      const burst = failures('192.0.2.88', 20);
      const [x, y] = await Promise.all([
        codeOf(ingest.submit(burst)),
        codeOf(ingest.submit(events(10, { 'event.action': 'x.same-group' }))),
      ]);
      expect([x, y]).toEqual(['ERR_SIEM_STORE', 'ERR_SIEM_STORE']);
      expect(store.countEvents()).toBe(0);
      await ingest.submit(events(5, { 'event.action': 'x.after' }));
      await new Promise((r) => setImmediate(r));
      expect(store.countEvents()).toBe(5);
      expect(committed.flat()).toHaveLength(5);
      expect(alerts.filter((a) => a.ruleId === 'ew-handshake-failures-burst')).toEqual([]);
      expect(ingest.queued).toBe(0);
    } finally {
      await done();
    }
  });

  it('close() commits and correlates what is queued, then refuses new batches (ERR_SIEM_UNAVAILABLE)', async () => {
    const { store, ingest, alerts, done } = await setup('close');
    try {
      const pending = ingest.submit(failures('192.0.2.99', 20));
      await ingest.close();
      await pending;
      expect(store.countEvents()).toBe(20);
      expect(alerts.map((a) => a.ruleId)).toContain('ew-handshake-failures-burst');
      expect(await codeOf(ingest.submit(events(1, { 'event.action': 'x.late' })))).toBe(
        'ERR_SIEM_UNAVAILABLE',
      );
    } finally {
      await done();
    }
  });
});
