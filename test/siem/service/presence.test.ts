// Which agents hold each replica's decision streams, shared through the PostgreSQL store: a
// replica's views count the connections of every replica that spoke lately, and none of one
// that stopped speaking (killed) or said it holds none (stopped).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../common/log.js';
import { AgentLedger, PRESENCE_STALE_MS } from '../../../siem/service/agents.js';
import { postgresStores, type SiemStores } from '../../../siem/store/index.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres.js';
import { tempDir } from '../../helpers/tmp.js';

const N = (name: string): string => `spiffe://presence.example/node/${name}`;
let db: TestDatabase;
let pa: SiemStores;
let pb: SiemStores;

beforeAll(async () => {
  db = await createTestDatabase();
  pa = await postgresStores(db.url)({ dataDir: tempDir('edgeward-presence-a-') });
  pb = await postgresStores(db.url)({ dataDir: tempDir('edgeward-presence-b-') });
});
afterAll(async () => {
  await pa?.close();
  await pb?.close();
  await db?.drop();
});

const connected = async (l: AgentLedger, id: string): Promise<number> => {
  await l.refresh();
  return l.view(id, Date.now())?.connected ?? 0;
};

async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  for (const end = Date.now() + 10_000; Date.now() < end; await new Promise((r) => setTimeout(r, 50)))
    if (await check()) return;
  throw new Error(`timed out waiting for ${what}`);
}

describe('agents connected to other replicas', () => {
  it('count on every replica while their replica speaks, and not after it stops or goes silent', async () => {
    const a = new AgentLedger(0, Date.now(), pa.acks);
    const b = new AgentLedger(0, Date.now(), pb.acks);
    const sa = a.sharePresence('replica-a', silentLogger);
    const sb = b.sharePresence('replica-b', silentLogger);
    try {
      a.connect(N('n1'), Date.now());
      a.connect(N('n1'), Date.now());
      b.connect(N('n1'), Date.now());
      b.connect(N('n2'), Date.now());
      await eventually('both replicas to count both', async () => (await connected(a, N('n1'))) === 3);
      expect(await connected(b, N('n1'))).toBe(3);
      expect(await connected(a, N('n2'))).toBe(1);
      // An agent only the other replica knows is listed here too.
      expect(a.list(Date.now()).map((v) => v.identity)).toContain(N('n2'));
      // A disconnection is said soon, not at the next turn.
      b.disconnect(N('n2'), Date.now());
      await eventually('n2 offline on A', async () => (await connected(a, N('n2'))) === 0);
      // A replica that went silent (killed): what it said last counts until it is stale.
      await pa.acks.setPresence?.('replica-killed', new Map([[N('n3'), 1]]), Date.now() - 1000);
      expect(await connected(b, N('n3'))).toBe(1);
      await pa.acks.setPresence?.(
        'replica-killed',
        new Map([[N('n3'), 1]]),
        Date.now() - PRESENCE_STALE_MS - 1,
      );
      expect(await connected(b, N('n3'))).toBe(0);
      // A replica that stops says it holds none.
      await sa.stop();
      expect(await connected(b, N('n1'))).toBe(1);
    } finally {
      await sa.stop();
      await sb.stop();
    }
  });

  it('a store of one process shares nothing and counts only its own', async () => {
    const l = new AgentLedger(0, Date.now());
    const s = l.sharePresence('alone', silentLogger);
    l.connect(N('n1'), Date.now());
    expect(await connected(l, N('n1'))).toBe(1);
    await s.stop();
  });
});
