// `edgeward ca init`: a new CA in an empty data folder — root, name-constrained intermediate,
// the store (SQLite in the folder, or a shared one) and an admin client identity
// (spiffe://TD/svc/admin) for the remote API.
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../common/clock.js';
import { PRIVATE_FILE_MODE, privateDir, writeFileDurably } from '../common/private-files.js';
import { FILES, MAX_LEAF_TTL_MS, adminId, createAuthority } from './authority.js';
import { openCaStore } from './store-sqlite.js';
import type { CaStoreFactory } from './store.js';
import { EdgewardError } from '../common/errors.js';
import { spkiSha256Hex } from '../common/x509.js';
import { NO_SERVICE_NAMES, SERVICE_NAMES_META, type ServiceNames } from './service-names.js';

export interface InitOptions {
  readonly dataDir: string;
  readonly trustDomain: string;
  readonly clock: Clock;
  readonly passphrase: string | undefined;
  /** The operator's own service names (`--dns`, `--ip`); none by default. */
  readonly serviceNames?: ServiceNames;
  /** Where the CA's state goes; by default SQLite in dataDir. */
  readonly store?: CaStoreFactory;
}

export interface InitOutcome {
  readonly fingerprint: string;
  readonly adminDir: string;
}

export async function initCa(o: InitOptions): Promise<InitOutcome> {
  const now = o.clock.now();
  const names = o.serviceNames ?? NO_SERVICE_NAMES;
  const shared = o.store ? await o.store({ now: () => o.clock.now() }) : undefined;
  if (shared && (await shared.getMeta('trust_domain')) !== undefined) {
    await shared.close();
    throw new EdgewardError('ERR_CA_EXISTS', 'the store already holds a CA: copy its data folder instead');
  }
  let created: ReturnType<typeof createAuthority>;
  try {
    created = createAuthority(o.dataDir, o.trustDomain, now, o.passphrase, names);
  } catch (err) {
    await shared?.close();
    throw err;
  }
  const { authority, fingerprint } = created;
  const store = shared ?? openCaStore(join(o.dataDir, FILES.db));
  try {
    await store.setMeta('trust_domain', o.trustDomain);
    await store.setMeta('created_at', String(now));
    await store.setMeta(SERVICE_NAMES_META, JSON.stringify(names));
    await store.audit(
      { kind: 'ca.init', data: { trustDomain: o.trustDomain, fingerprint, serviceNames: names } },
      now,
    );
    // The admin identity: a client certificate for the remote admin API (revoke).
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = key.publicKey.export({ type: 'spki', format: 'der' });
    const identity = adminId(o.trustDomain);
    const cert = authority.issue({ identity, spkiDer: spki, lifetimeMs: MAX_LEAF_TTL_MS, now });
    await store.transaction(async (tx) => {
      await tx.insertCertificate({
        serial: cert.serial,
        identity,
        spkiSha256: spkiSha256Hex(spki),
        method: 'admin',
        notBefore: cert.notBefore,
        notAfter: cert.notAfter,
        issuedAt: now,
        der: cert.der,
      });
      await tx.audit({ kind: 'admin.issue', data: { identity, serial: cert.serial } }, now);
    });
    const adminDir = join(o.dataDir, FILES.adminDir);
    privateDir(adminDir);
    writeFileDurably(
      join(adminDir, 'key.pem'),
      key.privateKey.export({ type: 'pkcs8', format: 'pem' }),
      PRIVATE_FILE_MODE,
    );
    writeFileSync(join(adminDir, 'cert.pem'), authority.chainPem(cert.der), { mode: 0o644 });
    writeFileSync(join(adminDir, 'bundle.pem'), authority.bundlePem, { mode: 0o644 });
    return { fingerprint, adminDir };
  } finally {
    await store.close();
  }
}
