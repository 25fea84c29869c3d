// The one serial form every comparison uses (CRL, decisions, events, CA store, enforcement), and
// the certificate writer checked against OpenSSL's reader, and the strict structure readers.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import {
  encodeName,
  ext,
  hostSans,
  isCanonicalSerial,
  nameText,
  normalizeSerial,
  OID,
  readCertificate,
  signCertificate,
  uriSans,
  verifySigned,
} from '../../common/x509.js';

describe('normalizeSerial', () => {
  it('writes lower-case hex without colons or leading zeros', () => {
    for (const [given, want] of [
      ['4f1a', '4f1a'],
      ['4F1A', '4f1a'],
      ['00:4F:1A', '4f1a'],
      ['004f1a', '4f1a'],
      ['0', '0'],
      ['0000', '0'],
      ['AB:CD:EF', 'abcdef'],
    ]) {
      expect(normalizeSerial(given as string), given).toBe(want);
      expect(isCanonicalSerial(given), given).toBe(given === want);
    }
  });

  it('refuses what is not a serial with ERR_SERIAL_INVALID', () => {
    for (const bad of ['', 'xyz', '4f 1a', ':4f', '4f:', '4f::1a', '0x4f', 'a'.repeat(65), '1'.repeat(200)])
      expect(() => normalizeSerial(bad), bad).toThrow(
        expect.objectContaining({ code: 'ERR_SERIAL_INVALID' }),
      );
    // Leading zeros do not count towards the 64 digits.
    expect(normalizeSerial(`00${'a'.repeat(64)}`)).toBe('a'.repeat(64));
  });
});

describe('certificate writer and structure readers', () => {
  const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const leaf = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caName = encodeName([
    [OID.organization, 'Edgeward Test'],
    [OID.commonName, 'Test Intermediate'],
  ]);
  const spkiDer = leaf.publicKey.export({ type: 'spki', format: 'der' });
  const der = signCertificate(
    {
      serial: Buffer.from('00ab12', 'hex'),
      issuer: caName,
      subject: encodeName([[OID.commonName, 'n1']]),
      notBefore: Date.parse('2026-01-01T00:00:00Z'),
      notAfter: Date.parse('2051-01-01T00:00:00Z'),
      spkiDer,
      extensions: [
        ext.basicConstraints(false),
        ext.keyUsage([0]),
        ext.subjectAltName(['spiffe://td/node/n1'], true, ['n1.example'], [Buffer.from([10, 0, 0, 1])]),
      ],
    },
    ca.privateKey,
  );

  it('writes a certificate node:crypto (OpenSSL) reads and verifies, times on both sides of 2050', () => {
    const cert = new X509Certificate(der);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(normalizeSerial(cert.serialNumber)).toBe('ab12');
    expect(cert.issuer).toBe('O=Edgeward Test\nCN=Test Intermediate');
    expect(Date.parse(cert.validTo)).toBe(Date.parse('2051-01-01T00:00:00Z'));
    expect(uriSans(cert.subjectAltName)).toEqual(['spiffe://td/node/n1']);
    expect(hostSans(cert.subjectAltName)).toEqual({ dns: ['n1.example'], ips: ['10.0.0.1'] });
  });
  it('readCertificate returns the SPKI exactly, the names and the extensions with their critical flags', () => {
    const parts = readCertificate(der);
    expect(parts.spki.raw).toEqual(spkiDer);
    expect(nameText(parts.issuer)).toBe('O=Edgeward Test, CN=Test Intermediate');
    expect(nameText(parts.subject)).toBe('CN=n1');
    expect(parts.extensions.map((e) => [e.oid, e.critical])).toEqual([
      [OID.basicConstraints, true],
      [OID.keyUsage, true],
      [OID.subjectAltName, true],
    ]);
    expect(parts.signatureAlgorithm).toBe(OID.ecdsaWithSha256);
    expect(verifySigned(parts, ca.publicKey)).toBe(true);
    expect(verifySigned(parts, leaf.publicKey)).toBe(false);
  });
  it('reads a certificate made by openssl (RSA, v3 extensions)', () => {
    const pem = execFileSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      '/dev/null',
      '-subj',
      '/C=DE/O=x/CN=y',
      '-addext',
      'extendedKeyUsage=clientAuth',
      '-days',
      '1',
    ]).toString();
    const cert = new X509Certificate(pem);
    const parts = readCertificate(cert.raw);
    expect(parts.spki.raw).toEqual(cert.publicKey.export({ type: 'spki', format: 'der' }));
    expect(nameText(parts.subject)).toBe('C=DE, O=x, CN=y');
    expect(parts.extensions.map((e) => e.oid)).toContain(OID.extKeyUsage);
    expect(verifySigned(parts, cert.publicKey)).toBe(true);
  });
  it('refuses hostile certificates with ERR_DER_MALFORMED', () => {
    const n = der[1]! & 0x7f;
    for (const bad of [
      Buffer.concat([der, Buffer.from([0])]),
      der.subarray(0, der.length - 1),
      Buffer.concat([Buffer.from([0x30, 0x80 | (n + 1), 0x00]), der.subarray(2)]),
      Buffer.from([0x30, 0x00]),
      Buffer.from([0x30, 0x03, 0x30, 0x01, 0x00]),
    ])
      expect(() => readCertificate(bad)).toThrow(expect.objectContaining({ code: 'ERR_DER_MALFORMED' }));
  });
  it('an unknown signature algorithm never verifies', () => {
    const parts = readCertificate(der);
    expect(verifySigned({ ...parts, signatureAlgorithm: '1.2.840.10045.4.1' }, ca.publicKey)).toBe(false);
  });
});
