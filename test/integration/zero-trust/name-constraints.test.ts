// The mesh root (which a user may trust in a browser) must not vouch for the web. Leaves signed with the mesh's real intermediate key for www.bank.example
// (or a mailbox, or an undeclared address) are refused by openssl and by Node's TLS client; a
// declared address verifies; the CA and the SIEM started as processes verify with curl as printed.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { connect, createServer, type Server } from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FILES } from '../../../ca/index.js';
import { startMesh, type Mesh } from '../../helpers/mesh.js';
import { openssl } from '../../helpers/openssl.js';
import { tempDir } from '../../helpers/tmp.js';

const run = promisify(execFile);
const dir = tempDir('edgeward-nc-');
let mesh: Mesh;

beforeAll(async () => {
  await run('which', ['curl']).catch(() => {
    throw new Error('curl is required for this test (apt-get install -y curl)');
  });
  mesh = await startMesh();
});
afterAll(async () => mesh?.stop());

/** A server leaf for `san` (openssl syntax), signed with the mesh intermediate's own key. */
function forge(name: string, san: string): { cert: string; key: string; chain: string } {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  const cert = join(dir, `${name}.pem`);
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
  openssl(['req', '-new', '-key', key, '-subj', '/O=forged', '-out', csr]);
  writeFileSync(ext, `subjectAltName=${san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
  openssl(['x509', '-req', '-in', csr, '-days', '1', '-CA', join(mesh.caDir, FILES.intCert), '-CAkey',
    join(mesh.caDir, FILES.intKey), '-set_serial', '0x1234', '-extfile', ext, '-out', cert]); // prettier-ignore
  const chain = join(dir, `${name}-chain.pem`);
  writeFileSync(
    chain,
    openssl(['x509', '-in', cert]) + openssl(['x509', '-in', join(mesh.caDir, FILES.intCert)]),
  );
  return { cert, key, chain };
}

function opensslVerifies(cert: string): { ok: boolean; out: string } {
  try {
    const out = openssl(['verify', '-CAfile', join(mesh.caDir, FILES.rootCert), '-untrusted',
      join(mesh.caDir, FILES.intCert), cert]); // prettier-ignore
    return { ok: true, out };
  } catch (err) {
    return { ok: false, out: String(err) };
  }
}

/** Node's TLS client, trusting only the mesh root, connecting to `host` served with the leaf. */
async function nodeVerifies(f: { key: string; chain: string }, host: string): Promise<string> {
  const server: Server = createServer({ key: readFileSync(f.key), cert: readFileSync(f.chain) }, (s) =>
    s.end(),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    return await new Promise<string>((resolve) => {
      // An IP address is checked against the IP SANs (and may not be sent as SNI).
      const s = connect({
        host: '127.0.0.1',
        port,
        ca: mesh.rootPem,
        ...(isIP(host) ? {} : { servername: host }),
      });
      s.once('secureConnect', () => {
        s.destroy();
        resolve('verified');
      });
      s.once('error', (err: NodeJS.ErrnoException) => resolve(`${err.code ?? ''}: ${err.message}`));
    });
  } finally {
    server.close();
  }
}

describe('name constraints vouch for the web', () => {
  it('openssl refuses a leaf for www.bank.example signed with the mesh intermediate key', () => {
    for (const [name, san] of [
      ['bank', 'DNS:www.bank.example'],
      ['mail', 'email:ceo@bank.example'],
      ['public-ip', 'IP:93.184.216.34'],
      ['mapped', 'IP:::ffff:127.0.0.1'],
    ] as const) {
      const v = opensslVerifies(forge(name, san).cert);
      expect(v.ok, `${san}: ${v.out}`).toBe(false);
      expect(v.out).toMatch(/permitted subtree violation|excluded subtree violation/);
    }
    // A declared service address (the mesh declares 127.0.0.0/8 and ::1) verifies.
    expect(opensslVerifies(forge('loopback', 'IP:127.0.0.1').cert).out).toMatch(/: OK/);
  });

  it("node's TLS client refuses the forged web leaf and accepts a declared address", async () => {
    const code = await nodeVerifies(forge('bank-tls', 'DNS:www.bank.example'), 'www.bank.example');
    // OpenSSL's X509_V_ERR_PERMITTED_VIOLATION, which Node reports without a name of its own; the
    // chain is refused before any host-name check (that one would be ERR_TLS_CERT_ALTNAME_INVALID).
    expect(code).toBe('UNSPECIFIED: permitted subtree violation');
    expect(await nodeVerifies(forge('loopback-tls', 'IP:127.0.0.1'), '127.0.0.1')).toBe('verified');
  });

  it('curl --cacert root.pem verifies the CA and the SIEM at 127.0.0.1 as the demo prints it', async () => {
    const root = join(mesh.caDir, FILES.rootCert);
    for (const url of [mesh.caUrl, mesh.siemUrl]) {
      const { stdout } = await run('curl', ['-sS', '--fail', '--cacert', root, `${url}/healthz`]);
      expect(JSON.parse(stdout)).toMatchObject({ status: 'ok', trustDomain: mesh.trustDomain });
    }
  });
});
