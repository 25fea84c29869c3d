// CRL parsing: a CRL from the intermediate verifies; foreign signatures, trailing bytes and junk
// are refused with their codes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseVerifiedCrl } from '../../client/crl.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki();
});
afterAll(async () => {
  await pki.cleanup();
});

describe('parseVerifiedCrl', () => {
  it('returns canonical revoked serials of a CRL signed by the intermediate', async () => {
    const der = await pki.crl(['1a2b3c', '00ff01']);
    const crl = await parseVerifiedCrl(der, [pki.intermediate.pem]);
    expect([...crl.serials].sort()).toEqual(['1a2b3c', 'ff01']);
    expect(crl.thisUpdate).toBeGreaterThan(0);
  });
  it('refuses a CRL signed by another key with the same issuer name', async () => {
    const other = await pki.foreign();
    const der = await pki.crl(['01'], { signer: { ...other.intermediate, cert: pki.intermediate.cert } });
    await expect(parseVerifiedCrl(der, [pki.intermediate.pem])).rejects.toMatchObject({
      code: 'ERR_AGENT_CRL_SIGNATURE',
    });
  });
  it('refuses trailing bytes, truncation and junk', async () => {
    const der = await pki.crl(['01']);
    await expect(
      parseVerifiedCrl(Buffer.concat([der, Buffer.from([0])]), [pki.intermediate.pem]),
    ).rejects.toMatchObject({ code: 'ERR_AGENT_CRL_MALFORMED' });
    await expect(
      parseVerifiedCrl(der.subarray(0, der.length - 1), [pki.intermediate.pem]),
    ).rejects.toMatchObject({ code: 'ERR_AGENT_CRL_MALFORMED' });
    await expect(parseVerifiedCrl(Buffer.from('not a crl'), [pki.intermediate.pem])).rejects.toMatchObject({
      code: 'ERR_AGENT_CRL_MALFORMED',
    });
    await expect(parseVerifiedCrl(Buffer.alloc(0), [pki.intermediate.pem])).rejects.toMatchObject({
      code: 'ERR_AGENT_CRL_MALFORMED',
    });
    await expect(
      parseVerifiedCrl(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]), [pki.intermediate.pem]),
    ).rejects.toMatchObject({ code: 'ERR_AGENT_CRL_MALFORMED' });
  });
  it('refuses a non-minimal length even when the signature would verify', async () => {
    const der = await pki.crl(['01', '02']);
    const n = der[1]! & 0x7f;
    const padded = Buffer.concat([Buffer.from([0x30, 0x80 | (n + 1), 0x00]), der.subarray(2)]);
    const err = await parseVerifiedCrl(padded, [pki.intermediate.pem]).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_AGENT_CRL_MALFORMED', message: 'CRL: non-minimal length' });
  });
  it('reads nextUpdate and names the issuer', async () => {
    const crl = await parseVerifiedCrl(await pki.crl([]), [pki.intermediate.pem]);
    expect(crl.serials.size).toBe(0);
    expect(crl.issuer).toMatch(/CN=/);
  });
});
