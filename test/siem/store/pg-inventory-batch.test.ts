// The PostgreSQL inventory applies a batch with a few set-based statements (one element per
// identity); the SQLite adapter runs each change's statement in order. Random runs of the CA's
// lifecycle events and other reporters' sightings, on a few identities and serials (so that one
// batch enrolls, revokes and re-enrolls the same identity, and revokes a serial issued in it),
// applied in batches of random sizes to both: every row must come out the same.
import type { EdgeEvent } from '../../../common/events.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quarantineSet } from '../../../siem/index.js';
import { postgresStores, sqliteStores, type SiemStores } from '../../../siem/store/index.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres.js';
import { tempDir } from '../../helpers/tmp.js';

const TD = 'spiffe://batch.example';
const CA = `${TD}/svc/ca`;
const T = Date.UTC(2026, 0, 1);
const IDS = [`${TD}/device/a`, `${TD}/device/b`, `${TD}/node/c`, `${TD}/node/d`, `${TD}/svc/e`];
const OBSERVERS = [CA, `${TD}/node/c`, `${TD}/node/r1`, `${TD}/device/a`];
const SERIALS = ['s1', 's2', 's3', 's4'];

/** A small deterministic generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function events(seed: number, n: number): EdgeEvent[] {
  const r = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)] as T;
  const maybe = <T>(v: T, p = 0.7): T | undefined => (r() < p ? v : undefined);
  const out: EdgeEvent[] = [];
  for (let i = 0; i < n; i++) {
    const observer = r() < 0.6 ? CA : pick(OBSERVERS);
    const ca = observer === CA;
    const action = ca
      ? pick([
          'enroll.success',
          'renewal.success',
          'enroll.failure',
          'attestation.failure',
          'revocation',
          'other',
        ])
      : pick(['connection.accepted', 'connection.denied', 'enroll.success']);
    const fields: Record<string, unknown> = {
      '@timestamp': T + Math.floor(r() * 10_000),
      'event.action': action,
      'event.id': `ev-${seed}-${i}`,
      'event.ingested': T + 20_000 + i,
      'observer.identity': observer,
      'observer.type': ca ? 'ca' : 'node',
      'source.identity': maybe(pick(IDS), 0.9),
      'source.ip': maybe(`192.0.2.${Math.floor(r() * 4)}`, 0.5),
      'attestation.method': maybe(pick(['token', 'tpm', 'puf']), 0.5),
      'attestation.reason': maybe(pick(['pcr_mismatch', 'expired']), 0.5),
      'tls.client.x509.serial_number': maybe(pick(SERIALS), 0.6),
      'tls.client.x509.not_after': maybe(T + 86_400_000 + Math.floor(r() * 1000), 0.5),
      'tls.client.x509.spki_sha256': maybe(pick(['k1', 'k2', 'k3']), 0.6),
    };
    for (const k of Object.keys(fields)) if (fields[k] === undefined) delete fields[k];
    out.push(fields as unknown as EdgeEvent);
  }
  return out;
}

const none = quarantineSet([]);
const rows = async (s: SiemStores): Promise<unknown[]> =>
  (await s.inventory.query({ limit: 10_000, offset: 0 }, none)).items;

let db: TestDatabase;
let pg: SiemStores;
let lite: SiemStores;

beforeAll(async () => {
  db = await createTestDatabase();
  pg = await postgresStores(db.url)({ dataDir: tempDir('edgeward-inv-batch-pg-') });
  lite = await sqliteStores({ dataDir: tempDir('edgeward-inv-batch-lite-'), synchronous: 'NORMAL' });
});
afterAll(async () => {
  await pg?.close();
  await lite?.close();
  await db?.drop();
});

describe('the PostgreSQL inventory, one batch at a time in a few statements', () => {
  it('leaves every row as the SQLite adapter’s change-by-change statements do (200 random runs)', async () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(seed * 7919);
      const all = events(seed, 5 + Math.floor(r() * 60));
      // A fresh start for some runs; the others continue on what the earlier runs left.
      if (seed % 4 === 1) {
        await pg.inventory.rebuild(pg.store, 'batch.example');
        await lite.inventory.rebuild(lite.store, 'batch.example');
      }
      for (let i = 0; i < all.length;) {
        const n = 1 + Math.floor(r() * 25);
        const batch = all.slice(i, i + n);
        i += n;
        await pg.inventory.apply(batch);
        await lite.inventory.apply(batch);
      }
      expect({ seed, rows: await rows(pg) }).toEqual({ seed, rows: await rows(lite) });
    }
  }, 120_000);
});
