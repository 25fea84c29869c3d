// Batch ids (Edgeward-Batch-Id) on the real stores: a batch sent again under its id (its first
// answer lost) is stored once and answered as a duplicate, on PostgreSQL (two replicas on one
// database, racing on one id) and on a SQLite file; another reporter's same id is its own batch;
// a malformed id is refused with its code before anything is stored.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningSiem } from '../../siem/index.js';
import { postgresStores } from '../../siem/store/index.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { call, enrollAs, enrollSiemIdentity, startTestSiem, type Creds } from '../siem/service/setup.js';

const TD = 'factory.example';
const dir = tempDir('edgeward-batch-id-');
let ca: TestCa;
let db: TestDatabase;
let pgA: RunningSiem;
let pgB: RunningSiem;
let lite: RunningSiem;
let node: Creds;
let other: Creds;
let k = 0;

beforeAll(async () => {
  [ca, db] = await Promise.all([startTestCa(), createTestDatabase()]);
  const identity = await enrollSiemIdentity(ca, dir);
  const stores = postgresStores(db.url);
  for (const d of ['a', 'b', 'lite']) mkdirSync(join(dir, d, 'siem'), { recursive: true, mode: 0o700 });
  pgA = await startTestSiem(join(dir, 'a'), identity, ca.url, { stores });
  pgB = await startTestSiem(join(dir, 'b'), identity, ca.url, { stores });
  lite = await startTestSiem(join(dir, 'lite'), identity, ca.url);
  node = await enrollAs(ca, `spiffe://${TD}/node/bid1`, join(dir, 'n1'));
  other = await enrollAs(ca, `spiffe://${TD}/node/bid2`, join(dir, 'n2'));
}, 120_000);
afterAll(async () => {
  for (const s of [pgA, pgB, lite]) await s?.close();
  await ca?.stop();
  await db?.drop();
});

const device = (): string => `spiffe://${TD}/device/bid${k++}`;
const batch = (who: string, n = 20): Record<string, unknown>[] =>
  Array.from({ length: n }, (_, i) => ({
    '@timestamp': Date.now() - 1000 + i,
    'event.action': 'connection.accepted',
    'source.identity': who,
    'source.port': 2000 + i,
  }));
const post = (s: RunningSiem, creds: Creds, body: unknown, id?: string) =>
  call(`${s.url}/v1/events`, creds, {
    body,
    ...(id !== undefined ? { headers: { 'edgeward-batch-id': id } } : {}),
  });
const stored = async (s: RunningSiem, who: string): Promise<number> =>
  (await s.stores.store.timeline({ entity: 'source.identity', value: who, limit: 10_000 })).length;
const newId = (): string => randomBytes(16).toString('hex');

describe.each([
  ['PostgreSQL', () => [pgA, pgB] as const],
  ['SQLite', () => [lite, lite] as const],
])('batch ids on %s', (_name, replicas) => {
  it('a batch sent again under its id (the first answer lost) is stored once, answered as a duplicate with the first count', async () => {
    const [a, b] = replicas();
    const who = device();
    const id = newId();
    const first = await post(a, node, batch(who), id);
    expect([first.status, first.json]).toEqual([200, { accepted: 20 }]);
    // The retry may go to another replica; sent as the same events, as the agent's spool does.
    const again = await post(b, node, batch(who), id);
    expect([again.status, again.json]).toEqual([200, { accepted: 20, duplicate: true }]);
    expect(await stored(a, who)).toBe(20);
  });

  it('two copies racing on one id (two replicas when there are two) store it once; one is answered as a duplicate', async () => {
    const [a, b] = replicas();
    for (let round = 0; round < 5; round++) {
      const who = device();
      const id = newId();
      const answers = await Promise.all([post(a, node, batch(who), id), post(b, node, batch(who), id)]);
      expect(answers.map((r) => r.status)).toEqual([200, 200]);
      expect(answers.filter((r) => r.json?.['duplicate'] === true)).toHaveLength(1);
      expect(await stored(a, who)).toBe(20);
    }
  });

  it("another reporter's batch under the same id is its own batch: stored", async () => {
    const [a] = replicas();
    const who = device();
    const id = newId();
    expect((await post(a, node, batch(who), id)).json).toEqual({ accepted: 20 });
    expect((await post(a, other, batch(who), id)).json).toEqual({ accepted: 20 });
    expect(await stored(a, who)).toBe(40);
  });

  it('without an id, a batch sent twice is stored twice (nothing names it)', async () => {
    const [a] = replicas();
    const who = device();
    const body = batch(who);
    await post(a, node, body);
    await post(a, node, body);
    expect(await stored(a, who)).toBe(40);
  });

  it('refuses a malformed id with 400 ERR_SIEM_BATCH_ID_MALFORMED and stores nothing', async () => {
    const [a] = replicas();
    const who = device();
    for (const bad of [
      '',
      'abc',
      newId().toUpperCase(),
      `${newId()}0`,
      newId().slice(1),
      `${newId().slice(0, 31)}g`,
    ]) {
      const r = await post(a, node, batch(who), bad);
      expect([bad, r.status, r.json?.['code']]).toEqual([bad, 400, 'ERR_SIEM_BATCH_ID_MALFORMED']);
    }
    expect(await stored(a, who)).toBe(0);
  });
});
