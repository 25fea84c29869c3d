// Every behaviour a CA store must have, written once and run against each adapter
// (ca-store.test.ts). `open` gives two handles on one backing store, as two replicas (or a
// `ca serve` and a `ca revoke`) have: what one writes, the other must see and respect.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain, type CaStore, type CertRecord } from '../../ca/index.js';

export interface ContractBackend {
  /** Two handles on one new, empty store. */
  open(): Promise<{ a: CaStore; b: CaStore; cleanup(): Promise<void> }>;
}

const TD = 'spiffe://contract.example';
const NOW = 1_800_000_000_000;
let n = 0;

function cert(
  identity: string,
  over: Partial<CertRecord> = {},
): Omit<CertRecord, 'revokedAt' | 'revocationReason'> {
  n++;
  return {
    serial: `0a${n.toString(16).padStart(30, '0')}`,
    identity,
    spkiSha256: `${n.toString(16).padStart(64, '0')}`,
    method: 'token',
    notBefore: NOW - 1000,
    notAfter: NOW + 86_400_000,
    issuedAt: NOW + n,
    der: Buffer.from([0x30, n & 0xff]),
    ...over,
  };
}

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

export function caStoreContract(name: string, backend: ContractBackend): void {
  describe(`CA store contract: ${name}`, () => {
    let a: CaStore;
    let b: CaStore;
    let opened: Awaited<ReturnType<ContractBackend['open']>>;
    beforeAll(async () => {
      opened = await backend.open();
      ({ a, b } = opened);
    });
    afterAll(async () => {
      await opened.cleanup();
    });

    it('keeps meta values, seen by every handle', async () => {
      expect(await a.getMeta('trust_domain')).toBeUndefined();
      await a.setMeta('trust_domain', 'contract.example');
      await b.setMeta('bundle_sequence', '2');
      expect(await b.getMeta('trust_domain')).toBe('contract.example');
      await a.setMeta('bundle_sequence', '3');
      expect(await b.getMeta('bundle_sequence')).toBe('3');
    });

    it('refuses a serial twice, and the refused transaction leaves nothing (no audit record)', async () => {
      const c = cert(`${TD}/node/serial`);
      await a.transaction(async (tx) => {
        await tx.insertCertificate(c);
        await tx.audit({ kind: 'issue', data: { serial: c.serial } }, NOW);
      });
      const before = (await all(a.auditRecords())).length;
      await expect(
        b.transaction(async (tx) => {
          await tx.audit({ kind: 'issue', data: { serial: c.serial, again: true } }, NOW);
          await tx.useOnce('contract', 'serial-dup', NOW + 60_000);
          await tx.insertCertificate({ ...c, identity: `${TD}/node/other` });
        }),
      ).rejects.toMatchObject({ code: 'ERR_CA_SERIAL_TAKEN' });
      expect((await all(a.auditRecords())).length).toBe(before);
      expect(await a.wasUsed('contract', 'serial-dup')).toBe(false);
      expect((await b.getCertificate(c.serial))?.identity).toBe(`${TD}/node/serial`);
    });

    it('commits transactions finishing together each on its own: a taken serial refuses only its own', async () => {
      const taken = cert(`${TD}/node/group`);
      await a.transaction((tx) => tx.insertCertificate(taken));
      const batch = Array.from({ length: 24 }, (_, i) =>
        i === 7 ? { ...cert(`${TD}/node/group`), serial: taken.serial } : cert(`${TD}/node/group`),
      );
      const settled = await Promise.allSettled(
        batch.map((c, i) =>
          (i % 2 ? a : b).transaction(async (tx) => {
            await tx.insertCertificate(c);
            await tx.audit({ kind: 'group', data: { serial: c.serial, i } }, NOW + i);
            return i;
          }),
        ),
      );
      expect(settled.map((r) => r.status)).toEqual(batch.map((_, i) => (i === 7 ? 'rejected' : 'fulfilled')));
      expect(settled[7]).toMatchObject({ reason: { code: 'ERR_CA_SERIAL_TAKEN' } });
      for (const [i, c] of batch.entries())
        if (i !== 7) expect((await b.getCertificate(c.serial))?.serial).toBe(c.serial);
      const group = (await all(a.auditRecords())).filter((r) => r.kind === 'group');
      expect(group.map((r) => (JSON.parse(r.data) as { i: number }).i).sort((x, y) => x - y)).toEqual(
        batch.map((_, i) => i).filter((i) => i !== 7),
      );
      expect(await verifyAuditChain(b.auditRecords())).toMatchObject({ ok: true });
      // Appends outside a transaction return their records, numbered in one sequence.
      const recs = await Promise.all(
        Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).audit({ kind: 'numbered', data: { i } }, NOW)),
      );
      expect(new Set(recs.map((r) => r.seq)).size).toBe(6);
      for (const r of recs) expect(r).toMatchObject({ kind: 'numbered', ts: NOW });
    });

    it("reads an identity's standing at once: certificate, revocation, hold and method", async () => {
      const id = `${TD}/node/standing`;
      const c = cert(id, { method: 'puf' });
      expect(await a.standing(id, c.serial)).toEqual({
        certificate: undefined,
        identityRevoked: false,
        hold: undefined,
        enrolledMethod: undefined,
      });
      await a.transaction((tx) => tx.insertCertificate(c));
      const hold = {
        identity: id,
        decisionId: 'd-standing',
        scope: { type: 'spki' as const, value: c.spkiSha256 },
        placedAt: NOW,
        decisionExpiresAt: NOW + 60_000,
        releasedAt: null,
        releasedBy: null,
      };
      await b.placeHold(hold, NOW);
      const s = await b.standing(id, c.serial);
      expect(s.certificate).toMatchObject({ serial: c.serial, identity: id, revokedAt: null });
      expect(Buffer.compare(s.certificate!.der, c.der)).toBe(0);
      expect(s).toMatchObject({ identityRevoked: false, hold, enrolledMethod: 'puf' });
      await b.releaseHolds(id, NOW + 1, 'contract');
      await a.revokeIdentity(id, 'keyCompromise', NOW + 2, 'contract');
      const after = await a.standing(id);
      expect(after).toMatchObject({ certificate: undefined, identityRevoked: true, hold: undefined });
    });

    it('marks a single-use key once, even when both handles race for it', async () => {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          (i % 2 ? a : b).transaction((tx) => tx.useOnce('contract', 'race', NOW + 60_000)),
        ),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await a.wasUsed('contract', 'race')).toBe(true);
      expect(await b.wasUsed('contract', 'other')).toBe(false);
      // Expired markers are purged; live ones stay.
      await a.transaction((tx) => tx.useOnce('contract', 'old', NOW - 1));
      await b.purgeExpired(NOW);
      expect(await a.wasUsed('contract', 'old')).toBe(false);
      expect(await a.wasUsed('contract', 'race')).toBe(true);
    });

    it('keeps one verifiable audit chain under concurrent appends from both handles', async () => {
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          (i % 2 ? a : b).audit({ kind: 'concurrent', data: { i } }, NOW + i),
        ),
      );
      // A transaction that throws after appending leaves no record.
      await expect(
        a.transaction(async (tx) => {
          await tx.audit({ kind: 'rolled-back', data: {} }, NOW);
          throw new Error('refused');
        }),
      ).rejects.toThrow('refused');
      const records = await all(b.auditRecords());
      expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i + 1));
      expect(records.filter((r) => r.kind === 'concurrent')).toHaveLength(40);
      expect(records.some((r) => r.kind === 'rolled-back')).toBe(false);
      const v = await verifyAuditChain(a.auditRecords());
      expect(v).toMatchObject({ ok: true, count: records.length });
    });

    it('binds hardware to one identity, and releases bindings (audited)', async () => {
      const id = `${TD}/device/bound`;
      await a.transaction((tx) => tx.putBinding(id, 'tpm', 'ek-1', { ekSha256: 'ek-1', clock: '5' }));
      expect(await b.getBinding(id, 'tpm')).toEqual({ ekSha256: 'ek-1', clock: '5' });
      expect(await b.findBindingByHardware('tpm', 'ek-1')).toBe(id);
      expect(await b.findBindingByHardware('puf', 'ek-1')).toBeUndefined();
      // The same identity and method: the record is updated in place.
      await b.transaction((tx) => tx.putBinding(id, 'tpm', 'ek-1', { ekSha256: 'ek-1', clock: '6' }));
      expect(await a.getBinding(id, 'tpm')).toEqual({ ekSha256: 'ek-1', clock: '6' });
      // The same hardware for another identity is refused by the store itself.
      await expect(
        a.transaction((tx) => tx.putBinding(`${TD}/device/clone`, 'tpm', 'ek-1', {})),
      ).rejects.toBeTruthy();
      expect(await a.releaseBindings(id, NOW, 'contract')).toBe(1);
      expect(await b.getBinding(id, 'tpm')).toBeUndefined();
      const last = (await all(a.auditRecords())).at(-1);
      expect(last?.kind).toBe('release');
      expect(JSON.parse(last?.data ?? '{}')).toEqual({ identity: id, bindings: 1, by: 'contract' });
    });

    it('revokes by serial and by identity, counts revocations and lists the live ones', async () => {
      const id = `${TD}/node/revoked`;
      const live = [cert(id), cert(id)];
      const expired = cert(id, { notAfter: NOW - 1 });
      await a.transaction(async (tx) => {
        for (const c of [...live, expired]) await tx.insertCertificate(c);
      });
      const count0 = await b.revocationCount();
      expect(await a.revokeSerial(live[0]!.serial, 'keyCompromise', NOW, 'contract')).toBe(true);
      expect(await b.revokeSerial(live[0]!.serial, 'keyCompromise', NOW, 'contract')).toBe(false);
      expect(await b.revocationCount()).toBe(count0 + 1);
      expect((await b.revokeIdentity(id, 'cessationOfOperation', NOW + 1, 'contract')).sort()).toEqual([
        live[1]!.serial,
      ]);
      expect(await a.isIdentityRevoked(id)).toBe(true);
      expect(await a.isIdentityRevoked(`${TD}/node/fine`)).toBe(false);
      const listed = await a.revocations(NOW);
      expect(
        listed.filter(
          (r) => r.serial.startsWith('0a') && [live[0]!.serial, live[1]!.serial].includes(r.serial),
        ),
      ).toEqual([
        { serial: live[0]!.serial, revokedAt: NOW, reason: 'keyCompromise' },
        { serial: live[1]!.serial, revokedAt: NOW + 1, reason: 'cessationOfOperation' },
      ]);
      expect(listed.some((r) => r.serial === expired.serial)).toBe(false);
      expect((await a.getCertificate(live[1]!.serial))?.revocationReason).toBe('cessationOfOperation');
    });

    it('hands out CRL numbers as one increasing sequence across handles', async () => {
      const got = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).nextCrlNumber()));
      expect(new Set(got).size).toBe(10);
      const next = await a.nextCrlNumber();
      expect(next).toBeGreaterThan(Math.max(...got));
    });

    it('places a quarantine hold once per identity and decision, and releases it (audited)', async () => {
      const id = `${TD}/node/held`;
      const hold = {
        identity: id,
        decisionId: 'd-1',
        scope: { type: 'serial' as const, value: '0abc' },
        placedAt: NOW,
        decisionExpiresAt: NOW + 3_600_000,
        releasedAt: null,
        releasedBy: null,
      };
      expect(await a.placeHold(hold, NOW)).toBe(true);
      expect(await b.placeHold(hold, NOW)).toBe(false);
      expect(await b.placeHold({ ...hold, decisionId: 'd-2', placedAt: NOW + 1 }, NOW)).toBe(true);
      expect((await a.activeHold(id))?.decisionId).toBe('d-1');
      expect(await a.releaseHolds(id, NOW + 5, 'siem', 'd-1')).toBe(1);
      expect((await b.activeHold(id))?.decisionId).toBe('d-2');
      expect(await b.releaseHolds(id, NOW + 6, 'cli')).toBe(1);
      expect(await b.releaseHolds(id, NOW + 7, 'cli')).toBe(0);
      expect(await a.activeHold(id)).toBeUndefined();
      const mine = (await a.holds()).filter((h) => h.identity === id);
      expect(mine.map((h) => [h.decisionId, h.releasedAt, h.releasedBy])).toEqual([
        ['d-1', NOW + 5, 'siem'],
        ['d-2', NOW + 6, 'cli'],
      ]);
      const kinds = (await all(b.auditRecords())).map((r) => r.kind);
      expect(kinds.filter((k) => k === 'hold.place').length).toBeGreaterThanOrEqual(2);
      expect(kinds.filter((k) => k === 'hold.release').length).toBeGreaterThanOrEqual(2);
    });

    it('keeps the inventory: certificates of an identity, by key, and the method renewals follow', async () => {
      const id = `${TD}/device/inventory`;
      const first = cert(id, { method: 'puf' });
      const second = cert(id, { method: 'tpm', spkiSha256: first.spkiSha256 });
      const gone = cert(id, { notAfter: NOW - 1, issuedAt: NOW - 10, spkiSha256: first.spkiSha256 });
      await a.transaction(async (tx) => {
        await tx.insertCertificate(first);
        await tx.insertCertificate(gone);
      });
      await b.transaction((tx) => tx.insertCertificate(second));
      const mine = await b.certificatesOf(id);
      expect(mine.map((c) => c.serial)).toEqual([gone.serial, first.serial, second.serial]);
      expect(mine[1]).toMatchObject({ ...first, revokedAt: null, revocationReason: null });
      expect(Buffer.compare(mine[1]!.der, first.der)).toBe(0);
      expect(await a.enrolledMethod(id)).toBe('tpm');
      expect(await a.enrolledMethod(`${TD}/device/none`)).toBeUndefined();
      expect((await a.certificatesBySpki(first.spkiSha256, NOW)).map((c) => c.serial)).toEqual([
        first.serial,
        second.serial,
      ]);
      expect(await a.getCertificate('ffff')).toBeUndefined();
    });

    it('keeps join tokens (audited at creation)', async () => {
      const rec = {
        hash: 'ab'.repeat(32),
        identity: `${TD}/node/token`,
        createdAt: NOW,
        expiresAt: NOW + 60_000,
      };
      await a.createToken(rec, NOW);
      expect(await b.getToken(rec.hash)).toEqual(rec);
      expect(await b.getToken('cd'.repeat(32))).toBeUndefined();
      await expect(b.createToken(rec, NOW)).rejects.toBeTruthy();
      expect((await all(a.auditRecords())).filter((r) => r.kind === 'token.create')).toHaveLength(1);
    });
  });
}
