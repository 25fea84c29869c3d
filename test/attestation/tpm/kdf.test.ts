// KDFa and KDFe checked against an independent implementation: OpenSSL's KBKDF (SP 800-108
// counter mode, HMAC) and SSKDF (SP 800-56C one-step, hash), which the TPM KDFs instantiate.
import { describe, expect, it } from 'vitest';
import { kdfa, kdfe } from '../../../attestation/tpm/index.js';
import { openssl } from '../../helpers/openssl.js';

function hex(out: string): string {
  return out.trim().replace(/:/g, '').toLowerCase();
}

describe('KDFa', () => {
  it.each([
    ['sha256', 128, 'STORAGE'],
    ['sha256', 256, 'INTEGRITY'],
    ['sha384', 256, 'STORAGE'],
    ['sha384', 384, 'INTEGRITY'],
  ])('%s, %i bits, label %s equals OpenSSL KBKDF', (hash, bits, label) => {
    const key = Buffer.from('000102030405060708090a0b0c0d0e0f1011121314151617', 'hex');
    const u = Buffer.from('000b0123456789abcdef', 'hex');
    const v = Buffer.from('fe', 'hex');
    const ours = kdfa(hash, key, label, u, v, bits);
    const theirs = openssl(['kdf', '-keylen', String(bits / 8), '-kdfopt', 'mac:HMAC', '-kdfopt', `digest:${hash.toUpperCase()}`,
      '-kdfopt', `hexkey:${key.toString('hex')}`, '-kdfopt', `salt:${label}`, '-kdfopt', `hexinfo:${Buffer.concat([u, v]).toString('hex')}`,
      'KBKDF']); // prettier-ignore
    expect(ours.toString('hex')).toBe(hex(theirs));
  });

  it('keeps only the requested bits when they are not a whole number of bytes', () => {
    const out = kdfa('sha256', Buffer.alloc(16, 1), 'X', Buffer.alloc(0), Buffer.alloc(0), 12);
    expect(out).toHaveLength(2);
    expect((out[0] ?? 0) & 0xf0).toBe(0);
  });
});

describe('KDFe', () => {
  it.each([
    ['sha256', 256],
    ['sha384', 384],
  ])('%s equals OpenSSL SSKDF with FixedInfo = label NUL || partyU || partyV', (hash, bits) => {
    const z = Buffer.from('8f'.repeat(48), 'hex');
    const u = Buffer.from('11'.repeat(48), 'hex');
    const v = Buffer.from('22'.repeat(48), 'hex');
    const ours = kdfe(hash, z, 'IDENTITY', u, v, bits);
    const info = Buffer.concat([Buffer.from('IDENTITY\0', 'latin1'), u, v]).toString('hex');
    const theirs = openssl(['kdf', '-keylen', String(bits / 8), '-kdfopt', `digest:${hash.toUpperCase()}`,
      '-kdfopt', `hexkey:${z.toString('hex')}`, '-kdfopt', `hexinfo:${info}`, 'SSKDF']); // prettier-ignore
    expect(ours.toString('hex')).toBe(hex(theirs));
  });
});
