// Shared set-up for the PUF tests: real simulator, real provisioning, the CA's real SQLite store
// in a temporary folder, and real P-256 CSR keys.
import { createHash, generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import type { CsrKey, MethodContext } from '../../../attestation/method.js';
import { openCaStore, type CaStore } from '../../../ca/index.js';
import { fakeClock, type FakeClock } from '../../../common/clock.js';
import { parseIdentity, type Identity } from '../../../common/identity.js';
import { silentLogger } from '../../../common/log.js';
import { importPufRecord } from '../../../attestation/puf/import.js';
import { provisionPuf } from '../../../attestation/puf/provision.js';
import type { PufRecordJson } from '../../../attestation/puf/record.js';
import { createSimPuf } from '../../../attestation/puf/simulator.js';
import { tempDir } from '../../helpers/tmp.js';

export const TD = 'factory.example';

export function csrKey(): CsrKey {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spkiDer = publicKey.export({ format: 'der', type: 'spki' });
  return { spkiDer, spkiSha256: createHash('sha256').update(spkiDer).digest() };
}

export function device(name: string): Identity {
  return parseIdentity(`spiffe://${TD}/device/${name}`);
}

const records = new Map<string, PufRecordJson>();

/** Provisions (once per seed and CRP count) the way `edgeward puf provision` does. */
export function provisioned(id: Identity, seed: string, crps = 4, ber = 0.1): PufRecordJson {
  const key = `${id.uri}|${seed}|${crps}|${ber}`;
  let rec = records.get(key);
  if (!rec) {
    rec = provisionPuf({
      id: id.uri,
      puf: createSimPuf({ seed, ber, noiseSeed: `${seed}/manufacture` }),
      crps,
    }).json;
    records.set(key, rec);
  }
  return rec;
}

export interface Ca {
  readonly store: CaStore;
  readonly clock: FakeClock;
  readonly ctx: MethodContext;
  register(rec: PufRecordJson): Promise<void>;
}

export function ca(): Ca {
  const store = openCaStore(join(tempDir('edgeward-puf-'), 'ca.sqlite'));
  const clock = fakeClock();
  const ctx: MethodContext = {
    clock,
    log: silentLogger,
    trustDomain: TD,
    store,
    renewal: false,
    source: '192.0.2.1',
  };
  return {
    store,
    clock,
    ctx,
    register: async (rec) => {
      await store.transaction((tx) => importPufRecord(tx, rec));
    },
  };
}
