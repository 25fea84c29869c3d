// The dashboard inventory on PostgreSQL follows committed events through an outage: a group whose
// inventory update finds the store away (the test's own cluster, stopped) is tried again, and the
// rows it makes are there once PostgreSQL is back; nothing is lost and the page does not fail.
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EdgeEvent } from '../../../common/events.js';
import { silentLogger } from '../../../common/log.js';
import type { Alert } from '../../../siem/correlate/index.js';
import { ResponseEngine } from '../../../siem/playbooks/index.js';
import { parsePlaybookTexts } from '../../../policies/index.js';
import { createDashboardApi } from '../../../siem/service/dashboard-api.js';
import { DecisionHub } from '../../../siem/service/hub.js';
import { openPostgresSiem, openSqliteStore, type OpenedPostgres } from '../../../siem/store/index.js';
import { startPrivatePostgres, type PrivatePostgres } from '../../helpers/private-postgres.js';
import { tempDir } from '../../helpers/tmp.js';

const TD = 'factory.example';
const CA = { 'observer.identity': `spiffe://${TD}/svc/ca`, 'observer.type': 'ca' } as const;
const dev = (i: number): string => `spiffe://${TD}/device/o${i}`;
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });

let server: PrivatePostgres;
let pgStores: OpenedPostgres;

beforeAll(async () => {
  server = await startPrivatePostgres();
  await server.createDatabase('edgeward_inventory_outage');
  pgStores = await openPostgresSiem(server.url('edgeward_inventory_outage'));
}, 120_000);
afterAll(async () => {
  await pgStores?.close();
  server?.destroy();
});

describe('the dashboard inventory while PostgreSQL is away', () => {
  it('applies the changes of a group committed before the outage once the store is back', async () => {
    const dir = tempDir();
    const store = openSqliteStore(join(dir, 'siem.db'), { synchronous: 'NORMAL' });
    const engine = new ResponseEngine({ trustDomain: TD, config: parsePlaybookTexts([]) });
    const now = (): number => Date.UTC(2026, 0, 1);
    const hub = new DecisionHub({
      engine,
      store,
      signer: { key: privateKey, kid: 'k1' },
      now,
      log: silentLogger,
    });
    const eventFns = new Set<(e: readonly EdgeEvent[]) => void>();
    const api = createDashboardApi(
      {
        hub,
        store,
        now,
        audit: async () => undefined,
        subscribeEvents: (fn) => (eventFns.add(fn), () => void eventFns.delete(fn)),
        subscribeAlerts: (_fn: (a: Alert) => void) => () => undefined,
      },
      { inventory: pgStores.inventory },
    );
    const feed = (events: EdgeEvent[]): void => {
      for (const fn of eventFns) fn(events);
    };
    const enrolled = (i: number): EdgeEvent => ({
      '@timestamp': now(),
      'event.action': 'enroll.success',
      'source.identity': dev(i),
      ...CA,
    });
    try {
      feed([enrolled(1)]);
      const q = { q: 'device/o', limit: 10, offset: 0 };
      expect((await api.inventory(q)).total).toBe(1);
      await server.stop('fast');
      // Committed while the store went away: its inventory update fails, and is tried again.
      feed([enrolled(2), enrolled(3)]);
      await new Promise((r) => setTimeout(r, 2500));
      await server.start();
      const page = await api.inventory(q);
      expect(page.items.map((x) => x['identity'])).toEqual([dev(1), dev(2), dev(3)]);
    } finally {
      api.close();
      await hub.settled();
      await store.close();
    }
  }, 60_000);
});
