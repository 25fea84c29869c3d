// The CA store contract against both adapters: SQLite (two connections on one file, as
// `ca serve` and `ca revoke` have) and PostgreSQL (two pools on one database, as two replicas).
import { join } from 'node:path';
import { openCaStore, openPostgresCaStore } from '../../ca/index.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { caStoreContract } from './ca-store.contract.js';

caStoreContract('SQLite', {
  open() {
    const file = join(tempDir('edgeward-contract-'), 'ca.db');
    const a = openCaStore(file);
    const b = openCaStore(file);
    return Promise.resolve({
      a,
      b,
      async cleanup() {
        await a.close();
        await b.close();
      },
    });
  },
});

caStoreContract('PostgreSQL', {
  async open() {
    const db = await createTestDatabase();
    const a = await openPostgresCaStore(db.url);
    const b = await openPostgresCaStore(db.url);
    return {
      a,
      b,
      async cleanup() {
        await a.close();
        await b.close();
        await db.drop();
      },
    };
  },
});
