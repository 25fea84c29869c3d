// The CSR parser: CSRs from openssl and from buildCsr are read; hostile CSRs (bad framing, a
// signature that does not verify, weak keys, junk text) are refused with their codes.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildCsr, csrDerFromText, MAX_CSR_BYTES, parseCsr } from '../../common/csr.js';

const dir = mkdtempSync(join(tmpdir(), 'csr-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function opensslCsr(keyArgs: string[], san: string): Buffer {
  const key = join(dir, 'k.pem');
  const csr = join(dir, 'r.der');
  execFileSync('openssl', ['genpkey', ...keyArgs, '-out', key]);
  execFileSync('openssl', [
    'req',
    '-new',
    '-key',
    key,
    '-subj',
    '/CN=x',
    '-addext',
    `subjectAltName=${san}`,
    '-outform',
    'DER',
    '-out',
    csr,
  ]);
  return readFileSync(csr);
}

const p256 = (): { privateKey: KeyObject; publicKey: KeyObject } =>
  generateKeyPairSync('ec', { namedCurve: 'P-256' });

describe('parseCsr', () => {
  it('reads an openssl CSR: key kind, URI and host SANs', () => {
    const der = opensslCsr(
      ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      'URI:spiffe://td/svc/ca,DNS:ca.example,IP:10.0.0.1',
    );
    const csr = parseCsr(der);
    expect(csr).toMatchObject({
      keyKind: 'ec-p256',
      uri: 'spiffe://td/svc/ca',
      dnsNames: ['ca.example'],
      ipAddresses: ['10.0.0.1'],
    });
    expect(csr.spkiSha256.length).toBe(32);
  });
  it('reads an RSA CSR only when the policy allows RSA of that size', () => {
    const der = opensslCsr(
      ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
      'URI:spiffe://td/node/n1',
    );
    expect(() => parseCsr(der)).toThrow(expect.objectContaining({ code: 'ERR_CA_WEAK_KEY' }));
    expect(parseCsr(der, { allow: ['rsa'], rsaMinBits: 2048 })).toMatchObject({
      keyKind: 'rsa',
      rsaBits: 2048,
    });
    expect(() => parseCsr(der, { allow: ['rsa'], rsaMinBits: 3072 })).toThrow(
      expect.objectContaining({ code: 'ERR_CA_WEAK_KEY', message: 'RSA key of 2048 bits is too small' }),
    );
  });
  it('round-trips buildCsr', () => {
    const { privateKey, publicKey } = p256();
    const csr = parseCsr(buildCsr(privateKey, publicKey, 'spiffe://td/device/d1'));
    expect(csr.uri).toBe('spiffe://td/device/d1');
    expect(csr.spkiDer).toEqual(publicKey.export({ type: 'spki', format: 'der' }));
  });
  it('refuses a CSR whose signature does not verify', () => {
    const { privateKey, publicKey } = p256();
    const der = buildCsr(privateKey, publicKey, 'spiffe://td/device/d1');
    const flipped = Buffer.from(der);
    flipped[flipped.length - 5]! ^= 0x01;
    expect(() => parseCsr(flipped)).toThrow(expect.objectContaining({ code: 'ERR_CA_CSR_SIGNATURE' }));
    const other = p256();
    const swapped = buildCsr(other.privateKey, publicKey, 'spiffe://td/device/d1');
    expect(() => parseCsr(swapped)).toThrow(expect.objectContaining({ code: 'ERR_CA_CSR_SIGNATURE' }));
  });
  it('refuses bad framing as ERR_CA_CSR_MALFORMED, naming the DER fault', () => {
    const { privateKey, publicKey } = p256();
    const der = buildCsr(privateKey, publicKey, 'spiffe://td/device/d1');
    for (const bad of [
      Buffer.concat([der, Buffer.from([0])]),
      der.subarray(0, der.length - 1),
      Buffer.from([0x30, 0x00]),
      Buffer.from([0x30, 0x80, 0x00, 0x00]),
      Buffer.from('junk'),
    ])
      expect(() => parseCsr(bad)).toThrow(expect.objectContaining({ code: 'ERR_CA_CSR_MALFORMED' }));
    const n = der[1]! & 0x7f;
    const padded = Buffer.concat([Buffer.from([0x30, 0x80 | (n + 1), 0x00]), der.subarray(2)]);
    expect(() => parseCsr(padded)).toThrow(/^malformed CSR: malformed DER: non-minimal length$/);
  });
  it('refuses a CSR over the size limit before reading it', () => {
    expect(() => parseCsr(Buffer.alloc(MAX_CSR_BYTES + 1))).toThrow(
      expect.objectContaining({ code: 'ERR_INPUT_TOO_LARGE' }),
    );
  });
});

describe('csrDerFromText', () => {
  it('accepts PEM and bare base64', () => {
    const { privateKey, publicKey } = p256();
    const der = buildCsr(privateKey, publicKey, 'spiffe://td/device/d1');
    const b64 = der.toString('base64');
    const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${b64.replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(csrDerFromText(pem)).toEqual(der);
    expect(csrDerFromText(b64)).toEqual(der);
  });
  it('refuses text that is neither, and oversized text', () => {
    for (const bad of [
      '',
      'not base64!',
      'abc',
      '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----',
    ])
      expect(() => csrDerFromText(bad), bad).toThrow(
        expect.objectContaining({ code: 'ERR_CA_CSR_MALFORMED' }),
      );
    expect(() => csrDerFromText('A'.repeat(MAX_CSR_BYTES * 2 + 1))).toThrow(
      expect.objectContaining({ code: 'ERR_INPUT_TOO_LARGE' }),
    );
  });
});
