// The dashboard's host-name certificate check (siem/dashboard/tls.ts) against files made with the
// openssl command line: a good chain is accepted, and each way an operator's files can be wrong
// is refused with its own code before anything listens.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDashboardCertificate, hostNames } from '../../../siem/dashboard/tls.js';
import { opensslRootCa, type Issued, type OpensslCa } from '../../helpers/host-cert.js';
import { openssl } from '../../helpers/openssl.js';
import { tempDir } from '../../helpers/tmp.js';

const dir = tempDir('edgeward-dash-tls-');
let root: OpensslCa;
let inter: OpensslCa;
let host: Issued;
let chainFile: string;

beforeAll(() => {
  root = opensslRootCa(join(dir, 'root'));
  inter = root.intermediate('web-intermediate');
  host = inter.issue('dash');
  chainFile = join(dir, 'chain.pem');
  writeFileSync(chainFile, host.certPem + inter.certPem);
});

const load = (certFile: string, keyFile: string, now = Date.now()) =>
  loadDashboardCertificate({ certFile, keyFile, now });
const code = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
};

describe('loadDashboardCertificate', () => {
  it('accepts a host certificate with its chain and reports its names and expiry', () => {
    const c = load(chainFile, host.keyFile);
    expect(c.names).toEqual(['DNS:localhost', 'IP Address:127.0.0.1']);
    expect(c.certPem.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(c.keyPem).toContain('BEGIN PRIVATE KEY');
    expect(c.notAfter).toBeGreaterThan(Date.now());
    expect(c.notAfter).toBeLessThan(Date.now() + 2 * 86_400_000);
  });

  it('refuses missing, non-regular and oversized files (ERR_DASH_CERT_UNREADABLE)', () => {
    expect(code(() => load(join(dir, 'nope.pem'), host.keyFile))).toBe('ERR_DASH_CERT_UNREADABLE');
    expect(code(() => load(chainFile, join(dir, 'nope.key')))).toBe('ERR_DASH_CERT_UNREADABLE');
    const sub = join(dir, 'a-folder');
    mkdirSync(sub, { recursive: true });
    expect(code(() => load(sub, host.keyFile))).toBe('ERR_DASH_CERT_UNREADABLE');
    const big = join(dir, 'big.pem');
    writeFileSync(big, host.certPem + 'x'.repeat(1024 * 1024));
    expect(code(() => load(big, host.keyFile))).toBe('ERR_DASH_CERT_UNREADABLE');
    if (process.getuid?.() !== 0) {
      const locked = join(dir, 'locked.key');
      writeFileSync(locked, host.keyPem, { mode: 0o600 });
      chmodSync(locked, 0o000);
      expect(code(() => load(chainFile, locked))).toBe('ERR_DASH_CERT_UNREADABLE');
    }
  });

  it('refuses files that hold no certificate or no usable key', () => {
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'hello, not a certificate\n');
    expect(code(() => load(junk, host.keyFile))).toBe('ERR_DASH_CERT_MALFORMED');
    const bad64 = join(dir, 'bad64.pem');
    writeFileSync(bad64, '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n');
    expect(code(() => load(bad64, host.keyFile))).toBe('ERR_DASH_CERT_MALFORMED');
    const notDer = join(dir, 'notder.pem');
    writeFileSync(notDer, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expect(code(() => load(notDer, host.keyFile))).toBe('ERR_DASH_CERT_MALFORMED');
    // The certificate given as the key, and an encrypted key without its passphrase.
    expect(code(() => load(chainFile, chainFile))).toBe('ERR_DASH_KEY_MALFORMED');
    const enc = join(dir, 'enc.key');
    openssl(['pkey', '-in', host.keyFile, '-aes-256-cbc', '-passout', 'pass:secret', '-out', enc]);
    expect(code(() => load(chainFile, enc))).toBe('ERR_DASH_KEY_MALFORMED');
  });

  it('refuses a key that is not the certificate’s (ERR_DASH_CERT_KEY_MISMATCH)', () => {
    const other = inter.issue('other');
    expect(code(() => load(chainFile, other.keyFile))).toBe('ERR_DASH_CERT_KEY_MISMATCH');
  });

  it('refuses a certificate outside its validity (ERR_DASH_CERT_EXPIRED)', () => {
    const old = inter.issue('expired', { startDate: '20200101000000Z', endDate: '20200102000000Z' });
    expect(code(() => load(old.certFile, old.keyFile))).toBe('ERR_DASH_CERT_EXPIRED');
    // Not yet valid: the good one seen from two days ago.
    expect(code(() => load(chainFile, host.keyFile, Date.now() - 2 * 86_400_000))).toBe(
      'ERR_DASH_CERT_EXPIRED',
    );
  });

  it('refuses a certificate without a DNS or IP SAN (ERR_DASH_CERT_NO_HOST_NAME)', () => {
    const uri = inter.issue('uri-only', { san: 'URI:spiffe://factory.example/svc/siem' });
    expect(code(() => load(uri.certFile, uri.keyFile))).toBe('ERR_DASH_CERT_NO_HOST_NAME');
    const none = inter.issue('no-san', { san: null });
    expect(code(() => load(none.certFile, none.keyFile))).toBe('ERR_DASH_CERT_NO_HOST_NAME');
    const ip = inter.issue('ip-only', { san: 'IP:10.0.0.5' });
    expect(load(ip.certFile, ip.keyFile).names).toEqual(['IP Address:10.0.0.5']);
  });

  it('refuses a client-only certificate (ERR_DASH_CERT_USAGE) and a chain out of order', () => {
    const client = inter.issue('client-only', { eku: 'clientAuth' });
    expect(code(() => load(client.certFile, client.keyFile))).toBe('ERR_DASH_CERT_USAGE');
    const reversed = join(dir, 'reversed.pem');
    writeFileSync(reversed, host.certPem + root.certPem);
    expect(code(() => load(reversed, host.keyFile))).toBe('ERR_DASH_CERT_CHAIN');
  });

  it('reads host names from node’s SAN text, not URIs that look like them', () => {
    expect(hostNames('DNS:a.example, IP Address:10.0.0.1, URI:spiffe://td/x')).toEqual([
      'DNS:a.example',
      'IP Address:10.0.0.1',
    ]);
    expect(hostNames('URI:"spiffe://td/x, DNS:evil.example"')).toEqual([]);
    expect(hostNames('URI:"a\\"b, DNS:x", DNS:ok.example')).toEqual(['DNS:ok.example']);
    expect(hostNames('DNS:"weird, name"')).toEqual(['DNS:weird, name']);
    expect(hostNames('DNS:"unterminated')).toEqual([]);
    expect(hostNames('DNS:, email:a@b')).toEqual([]);
    expect(hostNames(undefined)).toEqual([]);
  });
});
