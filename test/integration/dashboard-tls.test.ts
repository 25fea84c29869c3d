// `edgeward siem serve --dashboard HOST:PORT --dashboard-cert F --dashboard-key F` as a real
// process: the dashboard presents the operator's host-name certificate (made with openssl, with
// an intermediate), which a TLS client verifies for "localhost" against the operator's root; bad
// files are refused at start with their codes; without the flags, the SIEM's mesh certificate and a warning.
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { connect, type DetailedPeerCertificate } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceId } from '../../common/identity.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { edgewardAsync, edgewardServe, stop } from '../helpers/cli.js';
import { opensslRootCa, type Issued, type OpensslCa } from '../helpers/host-cert.js';
import { tempDir } from '../helpers/tmp.js';

const TD = 'factory.example';
const dir = tempDir('edgeward-dash-cert-');
const procs: ChildProcess[] = [];
let ca: TestCa;
let root: OpensslCa;
let inter: OpensslCa;
let host: Issued;
let chainFile: string;

beforeAll(async () => {
  ca = await startTestCa();
  root = opensslRootCa(join(dir, 'web-pki'));
  inter = root.intermediate('web-intermediate');
  host = inter.issue('dashboard-host');
  chainFile = join(dir, 'dashboard-chain.pem');
  writeFileSync(chainFile, host.certPem + inter.certPem);
});
afterAll(async () => {
  for (const p of procs) await stop(p, 'SIGKILL');
  await ca?.stop();
});

/** Starts `siem serve` with a dashboard on 127.0.0.1:0; resolves with its URL and stdout so far. */
async function serve(name: string, extra: string[]): Promise<{ proc: ChildProcess; url: URL; out: string }> {
  const { proc, match } = await edgewardServe(
    [
      'siem',
      'serve',
      '--data',
      join(dir, name),
      '--listen',
      '127.0.0.1:0',
      '--ca',
      ca.url,
      '--fingerprint',
      ca.fingerprint,
      '--token-file',
      await ca.tokenFile(serviceId(TD, 'siem')),
      '--dashboard',
      '127.0.0.1:0',
      ...extra,
    ],
    /dashboard on (https:\/\/\S+) .*\n(.*)\n/,
  );
  procs.push(proc);
  return { proc, url: new URL(match[1] ?? ''), out: match[0] };
}

/** A TLS 1.3 handshake that verifies the server for `servername` against `ca` (node's own check). */
function handshake(
  port: number,
  servername: string,
  caPem: string,
): Promise<{ ok: true; peer: DetailedPeerCertificate } | { ok: false; code: string }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, servername, ca: caPem, minVersion: 'TLSv1.3' });
    s.once('secureConnect', () => {
      const peer = s.getPeerCertificate(true);
      s.end();
      resolve({ ok: true, peer });
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, code: err.code ?? err.message }));
  });
}

/** GET / over HTTPS, verified for "localhost" against the operator's root. */
function getPage(port: number): Promise<{ status: number; csp: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        servername: 'localhost',
        ca: root.certPem,
        minVersion: 'TLSv1.3',
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            csp: res.headers['content-security-policy'] as string | undefined,
            body,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('siem serve --dashboard-cert/--dashboard-key', () => {
  it('serves the dashboard with the operator’s host certificate, verified for localhost', async () => {
    const { proc, url, out } = await serve('good', [
      '--dashboard-cert',
      chainFile,
      '--dashboard-key',
      host.keyFile,
    ]);
    expect(out).toMatch(/dashboard certificate for DNS:localhost, IP Address:127\.0\.0\.1, valid until /);
    expect(out).not.toMatch(/warning/);
    const port = Number(url.port);
    const ok = await handshake(port, 'localhost', root.certPem);
    expect(ok.ok).toBe(true);
    if (ok.ok) {
      expect(ok.peer.subjectaltname).toBe('DNS:localhost, IP Address:127.0.0.1');
      expect(ok.peer.issuerCertificate.subject.CN).toBe('web-intermediate');
    }
    // The same certificate for another name, or checked against the mesh's CA, does not pass.
    expect(await handshake(port, 'evil.example', root.certPem)).toEqual({
      ok: false,
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
    expect(await handshake(port, 'localhost', ca.rootPem)).toMatchObject({ ok: false });
    const page = await getPage(port);
    expect(page.status).toBe(200);
    expect(page.csp).toContain("script-src 'self'");
    expect(page.body).toContain('<title>edgeward — threat dashboard</title>');
    await stop(proc);
  });

  it('without the flags keeps the SIEM’s own certificate and warns that browsers need a host one', async () => {
    const { proc, url, out } = await serve('plain', []);
    expect(out).toMatch(/warning: .*browsers will need a host-name certificate/);
    const r = await handshake(Number(url.port), 'localhost', ca.rootPem);
    // The chain is the mesh's, but the certificate names no host: a browser's check fails.
    expect(r).toEqual({ ok: false, code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    await stop(proc);
  });

  describe('refuses bad files at start, with a code and exit status 1, before listening', () => {
    /** Runs serve with these dashboard flags; the CA is never contacted, so none is needed. */
    const refuse = async (
      flags: string[],
    ): Promise<{ status: number | null; stdout: string; stderr: string }> =>
      edgewardAsync([
        'siem',
        'serve',
        '--data',
        join(dir, 'refused'),
        '--listen',
        '127.0.0.1:0',
        '--ca',
        'https://127.0.0.1:1',
        '--fingerprint',
        'a'.repeat(64),
        ...flags,
      ]);
    const expectRefused = (
      r: { status: number | null; stdout: string; stderr: string },
      code: string,
    ): void => {
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toContain(`edgeward siem serve: ${code}: `);
      expect(r.stderr).not.toMatch(/\n\s+at /); // a coded refusal, not a crash's stack trace
      expect(r.stdout).not.toMatch(/listening on/);
    };

    it('a key that is not the certificate’s: ERR_DASH_CERT_KEY_MISMATCH', async () => {
      const other = inter.issue('other-host');
      const r = await refuse([
        '--dashboard',
        '127.0.0.1:0',
        '--dashboard-cert',
        chainFile,
        '--dashboard-key',
        other.keyFile,
      ]);
      expectRefused(r, 'ERR_DASH_CERT_KEY_MISMATCH');
    });

    it('one flag without the other, or both without --dashboard: ERR_DASH_CERT_FLAGS', async () => {
      const onlyCert = await refuse(['--dashboard', '127.0.0.1:0', '--dashboard-cert', chainFile]);
      expectRefused(onlyCert, 'ERR_DASH_CERT_FLAGS');
      expect(onlyCert.stderr).toContain('--dashboard-cert needs --dashboard-key');
      const onlyKey = await refuse(['--dashboard', '127.0.0.1:0', '--dashboard-key', host.keyFile]);
      expectRefused(onlyKey, 'ERR_DASH_CERT_FLAGS');
      const noDash = await refuse(['--dashboard-cert', chainFile, '--dashboard-key', host.keyFile]);
      expectRefused(noDash, 'ERR_DASH_CERT_FLAGS');
    });

    it('an expired certificate: ERR_DASH_CERT_EXPIRED', async () => {
      const old = inter.issue('expired-host', { startDate: '20200101000000Z', endDate: '20200102000000Z' });
      const r = await refuse([
        '--dashboard',
        '127.0.0.1:0',
        '--dashboard-cert',
        old.certFile,
        '--dashboard-key',
        old.keyFile,
      ]);
      expectRefused(r, 'ERR_DASH_CERT_EXPIRED');
    });

    it('a certificate with no DNS or IP SAN (only the SIEM-style URI): ERR_DASH_CERT_NO_HOST_NAME', async () => {
      const uri = inter.issue('uri-host', { san: `URI:spiffe://${TD}/svc/siem` });
      const r = await refuse([
        '--dashboard',
        '127.0.0.1:0',
        '--dashboard-cert',
        uri.certFile,
        '--dashboard-key',
        uri.keyFile,
      ]);
      expectRefused(r, 'ERR_DASH_CERT_NO_HOST_NAME');
    });

    it('a missing file: ERR_DASH_CERT_UNREADABLE', async () => {
      const r = await refuse([
        '--dashboard',
        '127.0.0.1:0',
        '--dashboard-cert',
        join(dir, 'no-such.pem'),
        '--dashboard-key',
        host.keyFile,
      ]);
      expectRefused(r, 'ERR_DASH_CERT_UNREADABLE');
    });
  });
});
