import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Authority, createAuthority, loadAuthority } from '../../ca/authority.js';
import { CRL_REASONS } from '../../common/x509.js';
import { toPem } from '../../common/pem.js';
import { openssl, opensslCrlText } from '../helpers/openssl.js';
import { tempDir } from '../helpers/tmp.js';

const now = Date.now();

describe('CA profiles', () => {
  const dir = tempDir();
  const { authority, fingerprint } = createAuthority(join(dir, 'ca'), 'factory.example', now, undefined);
  const leafKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = leafKey.publicKey.export({ type: 'spki', format: 'der' });
  const leaf = authority.issue({
    identity: 'spiffe://factory.example/node/n1',
    spkiDer: spki,
    lifetimeMs: 86_400_000,
    now,
  });

  it('issues a leaf that openssl verifies against root and intermediate', () => {
    writeFileSync(join(dir, 'root.pem'), authority.bundlePem);
    writeFileSync(join(dir, 'int.pem'), authority.intPem);
    writeFileSync(join(dir, 'leaf.pem'), toPem('CERTIFICATE', leaf.der));
    const out = openssl([
      'verify',
      '-x509_strict',
      '-CAfile',
      join(dir, 'root.pem'),
      '-untrusted',
      join(dir, 'int.pem'),
      join(dir, 'leaf.pem'),
    ]);
    expect(out).toContain('leaf.pem: OK');
  });

  it('follows the leaf profile', () => {
    const x = new X509Certificate(leaf.der);
    expect(x.subjectAltName).toBe('URI:spiffe://factory.example/node/n1');
    expect(x.ca).toBe(false);
    expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(x.serialNumber.replace(/^0+/, '').toLowerCase()).toBe(leaf.serial);
    expect(leaf.serial.length).toBeGreaterThanOrEqual(20);
    expect(Date.parse(x.validFrom)).toBeLessThan(now - 60_000);
    expect(Date.parse(x.validTo) - now).toBeLessThanOrEqual(86_400_000);
    const text = openssl(['x509', '-noout', '-text'], Buffer.from(toPem('CERTIFICATE', leaf.der)));
    expect(text).toMatch(/Subject Key Identifier/);
    expect(text).toMatch(/Authority Key Identifier/);
    expect(text).toMatch(/X509v3 Subject Alternative Name: critical/);
    expect(text).toMatch(/Digital Signature/);
    expect(text).toMatch(/CA:FALSE/);
  });

  it('name-constrains the intermediate to the trust domain', () => {
    const text = openssl(['x509', '-noout', '-text'], Buffer.from(authority.intPem));
    expect(text).toMatch(/Name Constraints: critical/);
    expect(text).toMatch(/Permitted:\s+URI:factory\.example/);
    // A leaf for another trust domain, signed by the same intermediate, fails chain validation.
    const bad = authority.issue({
      identity: 'spiffe://evil.example/node/x',
      spkiDer: spki,
      lifetimeMs: 3_600_000,
      now,
    });
    writeFileSync(join(dir, 'bad.pem'), toPem('CERTIFICATE', bad.der));
    expect(() =>
      openssl([
        'verify',
        '-CAfile',
        join(dir, 'root.pem'),
        '-untrusted',
        join(dir, 'int.pem'),
        join(dir, 'bad.pem'),
      ]),
    ).toThrow(/name constraint|permitted subtree/i);
  });

  it('signs a CRL that openssl reads and verifies', () => {
    const crl = authority.signCrl(
      [{ serialHex: leaf.serial, revokedAt: now, reason: 'keyCompromise' }],
      7,
      now,
      now + 3_600_000,
    );
    const text = opensslCrlText(dir, crl, authority.intPem);
    expect(text).toMatch(/verify OK/);
    expect(text.toLowerCase()).toContain(leaf.serial.slice(-8));
    expect(text).toMatch(/Key Compromise/);
    expect(text).toMatch(/X509v3 CRL Number:\s+7/);
    expect(CRL_REASONS.keyCompromise).toBe(1);
  });

  it('refuses lifetimes under 5 minutes', () => {
    expect(() =>
      authority.issue({
        identity: 'spiffe://factory.example/node/n1',
        spkiDer: spki,
        lifetimeMs: 60_000,
        now,
      }),
    ).toThrow(expect.objectContaining({ code: 'ERR_CA_LIFETIME' }));
  });

  it('refuses to overwrite an existing CA and reloads it', () => {
    expect(() => createAuthority(join(dir, 'ca'), 'factory.example', now, undefined)).toThrow(
      expect.objectContaining({ code: 'ERR_CA_EXISTS' }),
    );
    const again = loadAuthority(join(dir, 'ca'), 'factory.example', undefined);
    expect(again).toBeInstanceOf(Authority);
    expect(again.rootFingerprint).toBe(fingerprint);
  });

  it('encrypts keys at rest with a passphrase', () => {
    const d = join(dir, 'enc');
    createAuthority(d, 'factory.example', now, 'correct horse');
    expect(() => loadAuthority(d, 'factory.example', undefined)).toThrow(
      expect.objectContaining({ code: 'ERR_CA_PASSPHRASE' }),
    );
    expect(() => loadAuthority(d, 'factory.example', 'wrong')).toThrow(
      expect.objectContaining({ code: 'ERR_CA_PASSPHRASE' }),
    );
    expect(loadAuthority(d, 'factory.example', 'correct horse').rootFingerprint).toHaveLength(64);
  });
});
