// MakeCredential's structure, checked by opening the credential with the seed (the real-TPM
// check, tpm2_activatecredential recovering the secret, is in swtpm.test.ts).
import { createDecipheriv, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  credentialFromSeed,
  kdfa,
  makeCredential,
  objectName,
  parseTpm2bPublic,
  toTpm2ToolsCredentialFile,
} from '../../../attestation/tpm/index.js';

const DIR = join(import.meta.dirname, '../../vectors/tpm');
const load = (f: string) =>
  JSON.parse(readFileSync(join(DIR, f), 'utf8')) as { evidence: Record<string, string> };
const ecc = load('ecc-ek-ecc-ak.json');
const rsa = load('rsa-ek-ecc-ak.json');
const pub = (s: string | undefined) => parseTpm2bPublic(Buffer.from(s ?? '', 'base64'));

describe('makeCredential', () => {
  it('wraps the secret so that the seed, the name and the integrity HMAC open it', () => {
    const ek = pub(rsa.evidence['ekPublic']);
    const name = objectName(pub(rsa.evidence['akPublic']));
    const seed = Buffer.alloc(32, 5);
    const secret = Buffer.from('a secret of thirty-two bytes....');
    const blob = credentialFromSeed(ek, name, secret, seed);
    expect(blob.readUInt16BE(0)).toBe(blob.length - 2);
    const hmacLen = blob.readUInt16BE(2);
    expect(hmacLen).toBe(32);
    const hmac = blob.subarray(4, 4 + hmacLen);
    const enc = blob.subarray(4 + hmacLen);
    const hmacKey = kdfa('sha256', seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), 256);
    expect(createHmac('sha256', hmacKey).update(enc).update(name).digest().equals(hmac)).toBe(true);
    const symKey = kdfa('sha256', seed, 'STORAGE', name, Buffer.alloc(0), 128);
    const d = createDecipheriv('aes-128-cfb', symKey, Buffer.alloc(16));
    const plain = Buffer.concat([d.update(enc), d.final()]);
    expect(plain.readUInt16BE(0)).toBe(secret.length);
    expect(plain.subarray(2).equals(secret)).toBe(true);
  });

  it('produces the sizes a TPM expects for RSA (OAEP) and ECC P-384 (point) EKs', () => {
    const name = objectName(pub(ecc.evidence['akPublic']));
    const r = makeCredential(pub(rsa.evidence['ekPublic']), name, Buffer.alloc(32, 1));
    expect(r.encryptedSecret.readUInt16BE(0)).toBe(256);
    const e = makeCredential(pub(ecc.evidence['ekPublic']), name, Buffer.alloc(32, 1));
    // TPMS_ECC_POINT: two TPM2Bs of 48 bytes
    expect(e.encryptedSecret.readUInt16BE(0)).toBe(2 + 48 + 2 + 48);
    // SHA-384 nameAlg: a 48-byte HMAC; AES-256 for the H-3 template
    expect(e.credentialBlob.readUInt16BE(2)).toBe(48);
    const file = toTpm2ToolsCredentialFile(e);
    expect(file.readUInt32BE(0)).toBe(0xbadcc0de);
    expect(file.readUInt32BE(4)).toBe(1);
  });

  it('refuses secrets longer than the EK name digest', () => {
    const ek = pub(rsa.evidence['ekPublic']);
    expect(() => makeCredential(ek, Buffer.alloc(34), Buffer.alloc(33))).toThrow(TypeError);
  });
});
