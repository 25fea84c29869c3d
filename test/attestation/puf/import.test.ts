import { describe, expect, it } from 'vitest';
import { importPufRecord, validatePufRecord } from '../../../attestation/puf/import.js';
import { ca, device, provisioned } from './fixtures.js';

describe('importPufRecord (edgeward ca puf import)', () => {
  it('stores the record as the identity binding, keyed by the PUF public key', async () => {
    const c = ca();
    const rec = provisioned(device('imp-1'), 'import-1');
    const out = await c.store.transaction((tx) => importPufRecord(tx, JSON.stringify(rec)));
    expect(out).toMatchObject({ identity: rec.id, publicKey: rec.publicKey, crps: 4 });
    expect(await c.store.getBinding(rec.id, 'puf')).toEqual(rec);
    expect(await c.store.findBindingByHardware('puf', rec.publicKey)).toBe(rec.id);
  });

  it('refuses a record for an identity that already has one (ERR_ATT_PUF_RECORD_EXISTS)', async () => {
    const c = ca();
    await c.register(provisioned(device('imp-2'), 'import-2'));
    const again = provisioned(device('imp-2'), 'import-2b');
    await expect(c.register(again)).rejects.toMatchObject({ code: 'ERR_ATT_PUF_RECORD_EXISTS' });
    expect(
      ((await c.store.getBinding(device('imp-2').uri, 'puf')) as { publicKey: string }).publicKey,
    ).not.toBe(again.publicKey);
  });

  it('refuses a PUF already registered for another identity (ERR_ATT_PUF_HARDWARE_BOUND)', async () => {
    const c = ca();
    const rec = provisioned(device('imp-3'), 'import-3');
    await c.register(rec);
    await expect(c.register({ ...rec, id: device('imp-3-clone').uri })).rejects.toMatchObject({
      code: 'ERR_ATT_PUF_HARDWARE_BOUND',
    });
  });

  it('refuses records of another trust domain and malformed input, storing nothing', async () => {
    const c = ca();
    const rec = provisioned(device('imp-4'), 'import-4');
    expect(() => validatePufRecord(rec, { trustDomain: 'other.example' })).toThrow(
      expect.objectContaining({ code: 'ERR_CA_FOREIGN_TRUST_DOMAIN' }),
    );
    await expect(c.store.transaction((tx) => importPufRecord(tx, '{"format":1'))).rejects.toMatchObject({
      code: 'ERR_ATT_PUF_RECORD_MALFORMED',
    });
    expect(await c.store.getBinding(rec.id, 'puf')).toBeUndefined();
  });
});
