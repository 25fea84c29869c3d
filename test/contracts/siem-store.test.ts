// The SIEM store contract against both adapters: SQLite (two sets of stores on one data folder:
// two processes on the same files, each with its own connections and writer thread) and
// PostgreSQL (two sets of stores on one new database, as two SIEM replicas have).
import { postgresStores, sqliteStores } from '../../siem/store/index.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { siemStoreContract } from './siem-store.contract.js';

siemStoreContract('SQLite', {
  async open() {
    const dataDir = tempDir('edgeward-siem-contract-');
    const a = await sqliteStores({ dataDir, synchronous: 'NORMAL' });
    const b = await sqliteStores({ dataDir, synchronous: 'NORMAL' });
    return {
      a,
      b,
      async cleanup() {
        await a.close();
        await b.close();
      },
    };
  },
});

siemStoreContract('PostgreSQL', {
  async open() {
    const db = await createTestDatabase();
    // Each set of stores has a data folder of its own (replicas keep only their keys there).
    const a = await postgresStores(db.url)({ dataDir: tempDir('edgeward-siem-contract-a-') });
    const b = await postgresStores(db.url)({ dataDir: tempDir('edgeward-siem-contract-b-') });
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
