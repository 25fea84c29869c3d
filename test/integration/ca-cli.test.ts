// The CA as operators run it: `edgeward ca ...`, `enroll` and `renew` as real processes, the
// audit chain after tampering, and `kill -9` in the middle of a stream of enrollments.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { enroll } from '../../client/index.js';
import { newJoinToken, createTokenProver } from '../../attestation/index.js';
import { openCaStore } from '../../ca/index.js';
import { edgeward, edgewardServe, stop, tokenEnrollArgs } from '../helpers/cli.js';
import { rawRequest } from '../helpers/https.js';
import { openssl } from '../helpers/openssl.js';
import { tempDir } from '../helpers/tmp.js';

const TD = 'factory.example';
const dir = tempDir();
const data = join(dir, 'ca');
const procs: ChildProcess[] = [];
afterAll(async () => {
  for (const p of procs) await stop(p, 'SIGKILL');
});

async function serve(): Promise<string> {
  const { proc, match } = await edgewardServe(
    ['ca', 'serve', '--data', data, '--listen', '127.0.0.1:0', '--rate-ip', '100000'],
    /listening on (https:\/\/\S+)/,
  );
  procs.push(proc);
  return match[1] ?? '';
}

describe('edgeward ca (real processes)', () => {
  let fingerprint = '';
  it('init creates a CA and refuses to overwrite it', () => {
    const r = edgeward(['ca', 'init', '--data', data, '--trust-domain', TD]);
    expect(r.status, r.stderr).toBe(0);
    fingerprint = /fingerprint \(SHA-256\): ([0-9a-f]{64})/.exec(r.stdout)?.[1] ?? '';
    expect(fingerprint).toHaveLength(64);
    const again = edgeward(['ca', 'init', '--data', data, '--trust-domain', TD]);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('ERR_CA_EXISTS');
  });

  it('init declares service names, and refuses one it cannot put in the name constraints', () => {
    const named = join(dir, 'named');
    const r = edgeward(['ca', 'init', '--data', named, '--trust-domain', TD, '--dns', 'EW.example',
      '--ip', '10.1.0.0/16', '--ip', '::1']); // prettier-ignore
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('service names the CA may vouch for: ew.example, 10.1.0.0/16, ::1/128\n');
    expect(openssl(['x509', '-in', join(named, 'intermediate.pem'), '-noout', '-ext', 'nameConstraints']))
      .toMatch(/Permitted:\s+URI:factory\.example\s+DNS:ew\.example\s+email:invalid\s+IP:10\.1\.0\.0\/255\.255\.0\.0/); // prettier-ignore
    const bad = join(dir, 'bad-names');
    for (const args of [
      ['--ip', '::ffff:10.0.0.1'],
      ['--dns', '*.ew.example'],
      ['--ip', 'fe80::1%eth0'],
    ]) {
      const refused = edgeward(['ca', 'init', '--data', bad, '--trust-domain', TD, ...args]);
      expect(refused.status).toBe(1);
      expect(refused.stderr).toContain('ERR_CA_SERVICE_NAME');
    }
    // Checked before anything is written.
    expect(edgeward(['ca', 'init', '--data', bad, '--trust-domain', TD]).status).toBe(0);
  });

  it('rejects bad usage with exit code 2', () => {
    expect(edgeward(['ca', 'token', '--data', data]).status).toBe(2);
    expect(edgeward(['ca', 'init', '--data', data, '--bogus', 'x']).status).toBe(2);
    expect(edgeward(['nonsense']).status).toBe(2);
  });

  it('token, enroll, renew, revoke, CRL and audit verify', async () => {
    const url = await serve();
    const id = `spiffe://${TD}/node/cli-1`;
    const tokenFile = join(dir, 'cli-1.token');
    const tok = edgeward(['ca', 'token', '--data', data, '--id', id, '--ttl', '10m', '--out', tokenFile]);
    expect(tok.status, tok.stderr).toBe(0);
    expect(tok.stdout.trim()).toBe(`wrote a join token for ${id} to ${tokenFile} (mode 0600)`);
    const out = join(dir, 'cli-1');
    const en = edgeward(tokenEnrollArgs({ url, fingerprint }, id, tokenFile, out));
    expect(en.status, en.stderr).toBe(0);
    expect(en.stdout).toMatch(/POST \/v1\/enroll\/finish/);
    const serial1 = /serial ([0-9a-f]+)/.exec(en.stdout)?.[1] ?? '';
    // The same token a second time is refused, with the CA's code on the command line.
    const en2 = edgeward(tokenEnrollArgs({ url, fingerprint }, id, tokenFile, join(dir, 'x')));
    expect(en2.status).toBe(1);
    expect(en2.stderr).toContain('ERR_CA_TOKEN_USED');
    const rn = edgeward(['renew', '--ca', url, '--dir', out]);
    expect(rn.status, rn.stderr).toBe(0);
    const rv = edgeward(['ca', 'revoke', '--data', data, '--serial', serial1, '--reason', 'superseded']);
    expect(rv.status, rv.stderr).toBe(0);
    expect(rv.stdout).toContain(serial1);
    // The running server sees the revocation made by the other process in its CRL.
    writeFileSync(join(dir, 'crl.der'), (await rawRequest(`${url}/v1/crl`)).body);
    const text = openssl(['crl', '-inform', 'DER', '-in', join(dir, 'crl.der'), '-noout', '-text']);
    expect(text.toLowerCase().replace(/:/g, '')).toContain(serial1.slice(-12));
    const av = edgeward(['ca', 'audit', 'verify', '--data', data]);
    expect(av.status, av.stdout).toBe(0);
    expect(av.stdout).toMatch(/audit chain OK: \d+ records/);
  });

  it('kill -9 during a stream of enrollments loses nothing acknowledged and keeps the chain', async () => {
    const url = await serve();
    const serveProc = procs[procs.length - 1] as ChildProcess;
    const store = openCaStore(join(data, 'ca.db'));
    const tokens: Array<[string, string]> = [];
    const now = Date.now();
    for (let i = 0; i < 400; i++) {
      const id = `spiffe://${TD}/device/k${i}`;
      const t = newJoinToken();
      await store.createToken({ hash: t.hash, identity: id, createdAt: now, expiresAt: now + 600_000 }, now);
      tokens.push([id, t.token]);
    }
    await store.close();
    const acknowledged: string[] = [];
    let next = 0;
    let killed = false;
    const worker = async (): Promise<void> => {
      while (next < tokens.length && !killed) {
        const [id, token] = tokens[next++] as [string, string];
        try {
          const r = await enroll({
            ca: url,
            fingerprint,
            id,
            prover: createTokenProver(token),
            out: join(dir, 'k', String(next)),
          });
          acknowledged.push(r.serial);
        } catch {
          // Refused or cut by the kill: not acknowledged.
        }
      }
    };
    const workers = Array.from({ length: 8 }, () => worker());
    while (acknowledged.length < 40) await new Promise((r) => setTimeout(r, 10));
    serveProc.kill('SIGKILL');
    killed = true;
    await Promise.all(workers);
    expect(acknowledged.length).toBeGreaterThanOrEqual(40);

    const db = new Database(join(data, 'ca.db'), { readonly: true });
    const rows = db.prepare('SELECT serial FROM certificates').all() as Array<{ serial: string }>;
    const stored = new Set(rows.map((r) => r.serial));
    expect(stored.size).toBe(rows.length);
    for (const s of acknowledged)
      expect(stored.has(s), `acknowledged serial ${s} missing after kill -9`).toBe(true);
    db.close();
    // Restart: the chain verifies and the CA serves again.
    const av = edgeward(['ca', 'audit', 'verify', '--data', data]);
    expect(av.status, av.stdout).toBe(0);
    await serve();
  });

  it('names the first broken audit record after tampering', () => {
    const db = new Database(join(data, 'ca.db'));
    // Tampering requires dropping the append-only triggers first: the DB refuses it otherwise.
    expect(() => db.prepare("UPDATE audit SET data = '{}' WHERE seq = 3").run()).toThrow(/append-only/);
    db.exec('DROP TRIGGER audit_no_update');
    db.prepare(`UPDATE audit SET data = '{"identity":"spiffe://${TD}/node/forged"}' WHERE seq = 3`).run();
    db.close();
    const av = edgeward(['ca', 'audit', 'verify', '--data', data]);
    expect(av.status).toBe(1);
    expect(av.stdout).toMatch(/BROKEN at record 3/);
  });
});
