// Two SIEM replicas update one PostgreSQL inventory at once: batches from many nodes, each
// touching the rows of the devices it saw and of its own reporter, some revoking serials. Rows
// must be locked in one order whatever the batch's size or the plan PostgreSQL picks for it, or
// two replicas' transactions wait on each other and one is killed as a deadlock (40P01).
import type { EdgeEvent } from '../../../common/events.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quarantineSet } from '../../../siem/index.js';
import { postgresStores, type SiemStores } from '../../../siem/store/index.js';
import { PgRunner } from '../../../siem/store/pg/side.js';
import { createPool, parsePostgresUrl } from '../../../common/postgres.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres.js';
import { tempDir } from '../../helpers/tmp.js';

const TD = 'spiffe://replicas.example';
const CA = `${TD}/svc/ca`;
const T = Date.UTC(2026, 0, 1);
const DEVICES = 3000;
const device = (i: number): string => `${TD}/device/d${String(i).padStart(5, '0')}`;
const serial = (i: number): string => i.toString(16).padStart(8, '0');
let seq = 0;

function enrolled(i: number): EdgeEvent {
  return {
    '@timestamp': T,
    'event.id': `en-${i}`,
    'event.action': 'enroll.success',
    'observer.identity': CA,
    'observer.type': 'ca',
    'source.identity': device(i),
    'tls.client.x509.serial_number': serial(i),
  };
}

function sighting(node: string, i: number, at: number): EdgeEvent {
  return {
    '@timestamp': at,
    'event.id': `s-${seq++}`,
    'event.action': 'connection.accepted',
    'observer.identity': `${TD}/node/${node}`,
    'observer.type': 'node',
    'source.identity': device(i),
    'source.ip': '192.0.2.1',
  };
}

function revoked(i: number, at: number): EdgeEvent {
  return {
    '@timestamp': at,
    'event.id': `rv-${seq++}`,
    'event.action': 'revocation',
    'observer.identity': CA,
    'observer.type': 'ca',
    'tls.client.x509.serial_number': serial(i),
  };
}

/** A permutation of 0..n-1 (mulberry32), so that the heap's order is not the identities' order. */
function shuffled(n: number, seed: number): number[] {
  let a = seed >>> 0;
  const r = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j] as number, out[i] as number];
  }
  return out;
}

let db: TestDatabase;
let a: SiemStores;
let b: SiemStores;

beforeAll(async () => {
  db = await createTestDatabase();
  a = await postgresStores(db.url)({ dataDir: tempDir('edgeward-inv-replica-a-') });
  b = await postgresStores(db.url)({ dataDir: tempDir('edgeward-inv-replica-b-') });
  // Enrolled in a shuffled order: the rows' physical order is not their identities' order.
  await a.inventory.apply(shuffled(DEVICES, 7).map(enrolled));
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  await db?.drop();
});

describe('two replicas updating one PostgreSQL inventory', () => {
  it('never deadlock, whatever the batches’ sizes and orders, and leave every row as the batches say', async () => {
    for (let round = 0; round < 12; round++) {
      const at = T + 1000 * (round + 1);
      const order = shuffled(DEVICES, 100 + round);
      // Replica A: one large batch from node n1 over every device in shuffled order (a plan over
      // the whole table); replica B: many small batches from node n2 in the reverse order (a
      // plan by index), and a revocation among them.
      const big = order.map((i) => sighting('n1', i, at));
      const small: EdgeEvent[][] = [];
      for (let k = order.length; k > 0; k -= 25)
        small.push(
          order
            .slice(Math.max(0, k - 25), k)
            .reverse()
            .map((i) => sighting('n2', i, at + 1)),
        );
      small[3]?.push(revoked(order[round] as number, at + 1));
      const results = await Promise.allSettled([
        a.inventory.apply(big),
        (async () => {
          for (const batch of small) await b.inventory.apply(batch);
        })(),
        // A second large writer on B at the same time: two statements over the whole table.
        b.inventory.apply([...big].reverse().map((e) => ({ ...e, 'event.id': `${e['event.id']}-b` }))),
      ]);
      const failed = results.filter((r) => r.status === 'rejected');
      expect(
        failed.map((r) => {
          const e = r.reason as Error;
          return `${String(e)}: ${String((e.cause as { code?: string } | undefined)?.code)} ${String(e.cause)}`;
        }),
      ).toEqual([]);
    }
    const { items } = await a.inventory.query(
      { limit: DEVICES + 10, offset: 0, kind: 'device' },
      quarantineSet([]),
    );
    expect(items).toHaveLength(DEVICES);
    const last = T + 1000 * 12 + 1;
    expect(items.filter((r) => r.lastSeen !== last)).toEqual([]);
    expect(items.filter((r) => r.status === 'revoked').length).toBe(12);
  }, 240_000);
});

describe('a transaction PostgreSQL aborts as a deadlock', () => {
  it('is run again, and both transactions’ writes land once', async () => {
    const url = parsePostgresUrl(db.url);
    const pool = createPool(url, { max: 4 });
    const runner = new PgRunner(pool, url);
    try {
      await pool.query('CREATE TABLE deadlock_probe (k TEXT PRIMARY KEY, n INTEGER NOT NULL)');
      await pool.query("INSERT INTO deadlock_probe VALUES ('x', 0), ('y', 0)");
      // Each takes one row, waits until the other has taken the other row, then takes it: a
      // deadlock on the first run; PostgreSQL aborts one, and its second run waits its turn.
      let held = 0;
      const runs = { xy: 0, yx: 0 };
      const both = (first: string, second: string, name: 'xy' | 'yx') =>
        runner.txRetried('probe', async (c) => {
          runs[name]++;
          await c.query('UPDATE deadlock_probe SET n = n + 1 WHERE k = $1', [first]);
          if (runs[name] === 1) {
            held++;
            for (let i = 0; held < 2 && i < 500; i++) await new Promise((r) => setTimeout(r, 10));
          }
          await c.query('UPDATE deadlock_probe SET n = n + 1 WHERE k = $1', [second]);
        });
      await Promise.all([both('x', 'y', 'xy'), both('y', 'x', 'yx')]);
      expect(runs.xy + runs.yx).toBe(3);
      const r = await pool.query<{ k: string; n: number }>('SELECT k, n FROM deadlock_probe ORDER BY k');
      expect(r.rows).toEqual([
        { k: 'x', n: 2 },
        { k: 'y', n: 2 },
      ]);
      // Any other failure is not run again.
      let calls = 0;
      await expect(
        runner.txRetried('probe', async (c) => {
          calls++;
          await c.query('SELECT * FROM no_such_table');
        }),
      ).rejects.toMatchObject({ code: 'ERR_SIEM_STORE' });
      expect(calls).toBe(1);
    } finally {
      await pool.end();
    }
  });
});
