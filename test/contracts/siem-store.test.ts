// The SIEM store contract against the SQLite adapter: two sets of stores on one data folder (two
// processes on the same files, each with its own connections and writer thread).
import { sqliteStores } from '../../siem/store/index.js';
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
