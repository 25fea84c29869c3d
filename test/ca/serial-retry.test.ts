// Two replicas may draw the same random serial; the store refuses the second (ERR_CA_SERIAL_TAKEN)
// and the issuing replica signs again with a fresh serial. The collision is forced by giving the
// service a serial source whose first serial is one the store already holds.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTokenMethod, hashToken, newJoinToken } from '../../attestation/index.js';
import { createAuthority } from '../../ca/authority.js';
import { openCaStore, openPostgresCaStore, verifyAuditChain, type CaStore } from '../../ca/index.js';
import { CaService, SERIAL_TRIES } from '../../ca/service.js';
import { fakeClock } from '../../common/clock.js';
import { buildCsr } from '../../common/csr.js';
import { silentLogger } from '../../common/log.js';
import { toPem } from '../../common/pem.js';
import { normalizeSerial } from '../../common/x509.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

const TD = 'collide.example';
const IP = '192.0.2.7';
const databases: TestDatabase[] = [];
const stores: CaStore[] = [];

afterAll(async () => {
  for (const s of stores) await s.close();
  for (const d of databases) await d.drop();
});

/** Two handles on one store: `first` holds the taken serial, `replica` issues. */
async function open(
  kind: 'PostgreSQL' | 'SQLite',
  dir: string,
): Promise<{ first: CaStore; replica: CaStore }> {
  if (kind === 'SQLite') {
    const pair = { first: openCaStore(join(dir, 'ca.db')), replica: openCaStore(join(dir, 'ca.db')) };
    stores.push(pair.first, pair.replica);
    return pair;
  }
  const db = await createTestDatabase();
  databases.push(db);
  const pair = { first: await openPostgresCaStore(db.url), replica: await openPostgresCaStore(db.url) };
  stores.push(pair.first, pair.replica);
  return pair;
}

async function setup(kind: 'PostgreSQL' | 'SQLite', serials: (taken: Buffer) => () => Buffer) {
  const clock = fakeClock(Date.now());
  const dir = join(tempDir('edgeward-serial-'), 'ca');
  const { authority } = createAuthority(dir, TD, clock.now(), undefined);
  const { first, replica } = await open(kind, dir);
  const taken = Buffer.concat([Buffer.from([0x5e]), randomBytes(15)]);
  const takenHex = normalizeSerial(taken.toString('hex'));
  await first.transaction(async (tx) => {
    await tx.insertCertificate({
      serial: takenHex,
      identity: `spiffe://${TD}/node/earlier`,
      spkiSha256: '00'.repeat(32),
      method: 'token',
      notBefore: clock.now() - 1000,
      notAfter: clock.now() + 3_600_000,
      issuedAt: clock.now(),
      der: Buffer.from([0x30, 0x00]),
    });
    await tx.audit({ kind: 'test.issue', data: { serial: takenHex } }, clock.now());
  });
  const svc = new CaService(replica, authority, {
    clock,
    log: silentLogger,
    methods: [createTokenMethod((h) => replica.getToken(h))],
    serials: serials(taken),
  });
  const enroll = async (id: string, token: string) => {
    const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const b = await svc.begin(IP, { id, method: 'token' });
    const csr = toPem('CERTIFICATE REQUEST', buildCsr(k.privateKey, k.publicKey, id));
    return svc.finish(IP, { session: b.session, csr, response: { token } });
  };
  const token = async (id: string): Promise<string> => {
    const t = newJoinToken();
    await replica.createToken(
      { hash: t.hash, identity: id, createdAt: clock.now(), expiresAt: clock.now() + 600_000 },
      clock.now(),
    );
    return t.token;
  };
  return { svc, first, replica, takenHex, enroll, token };
}

for (const kind of ['PostgreSQL', 'SQLite'] as const) {
  describe(`issuance when the serial is taken (${kind})`, () => {
    it('signs again with a fresh serial: one certificate, one audit record, the token used once', async () => {
      const { svc, first, takenHex, enroll, token } = await setup(kind, (taken) => {
        let calls = 0;
        return () => (calls++ === 0 ? taken : randomBytes(16));
      });
      const id = `spiffe://${TD}/node/lucky`;
      const t = await token(id);
      const r = await enroll(id, t);
      expect(r.identity).toBe(id);
      expect(r.serial).not.toBe(takenHex);
      expect((await first.getCertificate(r.serial))?.identity).toBe(id);
      expect((await first.getCertificate(takenHex))?.identity).toBe(`spiffe://${TD}/node/earlier`);
      const records = [];
      for await (const rec of first.auditRecords()) records.push(rec);
      expect(await verifyAuditChain(records)).toMatchObject({ ok: true });
      expect(records.filter((rec) => rec.kind === 'enroll.success')).toHaveLength(1);
      expect(await svc.renderMetrics()).toMatch(/^edgeward_ca_serial_retries_total 1$/m);
      await expect(enroll(id, t)).rejects.toMatchObject({ code: 'ERR_CA_TOKEN_USED' });
    });

    it(`refuses after ${SERIAL_TRIES} taken serials with ERR_CA_SERIAL_TAKEN, and the token stays usable`, async () => {
      const { first, enroll, token } = await setup(kind, (taken) => () => taken);
      const id = `spiffe://${TD}/node/unlucky`;
      const t = await token(id);
      await expect(enroll(id, t)).rejects.toMatchObject({ code: 'ERR_CA_SERIAL_TAKEN' });
      const records = [];
      for await (const rec of first.auditRecords()) records.push(rec);
      expect(records.filter((rec) => rec.kind === 'enroll.success')).toHaveLength(0);
      expect(await first.wasUsed('token', hashToken(t))).toBe(false);
    });
  });
}
