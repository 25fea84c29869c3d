// Two `ca serve` replicas on one PostgreSQL database, as operators run them: each with its own
// copy of the CA folder and the same --store. A begin on one finishes on the other, a revocation
// made anywhere is in both CRLs, and `kill -9` of one replica during a stream of renewals spread
// over both loses nothing acknowledged, issues no serial twice and keeps one audit chain.
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenProver } from '../../attestation/index.js';
import { enroll, renew } from '../../client/index.js';
import { edgeward, stop, serveCaReplica } from '../helpers/cli.js';
import { rawRequest } from '../helpers/https.js';
import { openssl } from '../helpers/openssl.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

const TD = 'replicas.example';
const dir = tempDir('edgeward-replicas-');
const dataA = join(dir, 'ca-a');
const dataB = join(dir, 'ca-b');
const procs: ChildProcess[] = [];
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  for (const p of procs) await stop(p, 'SIGKILL');
  await db.drop();
});

async function serve(data: string): Promise<{ url: string; proc: ChildProcess }> {
  const r = await serveCaReplica(data, db.url, ['--rate-ip', '100000', '--rate-identity', '100000']);
  procs.push(r.proc);
  return r;
}

function token(id: string): string {
  const r = edgeward(['ca', 'token', '--data', dataA, '--store', db.url, '--id', id, '--ttl', '10m']);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim();
}

async function storedSerials(): Promise<string[]> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    return (await c.query<{ serial: string }>('SELECT serial FROM ca_certificates')).rows.map(
      (r) => r.serial,
    );
  } finally {
    await c.end();
  }
}

describe('CA replicas on PostgreSQL (real processes)', () => {
  let fingerprint = '';
  let a = { url: '', proc: undefined as unknown as ChildProcess };
  let b = { url: '', proc: undefined as unknown as ChildProcess };

  it('init puts the CA in the store once; a second init on that store is refused', () => {
    const r = edgeward(['ca', 'init', '--data', dataA, '--trust-domain', TD, '--store', db.url]);
    expect(r.status, r.stderr).toBe(0);
    fingerprint = /fingerprint \(SHA-256\): ([0-9a-f]{64})/.exec(r.stdout)?.[1] ?? '';
    const again = edgeward([
      'ca',
      'init',
      '--data',
      join(dir, 'other'),
      '--trust-domain',
      TD,
      '--store',
      db.url,
    ]);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('ERR_CA_EXISTS');
    // The second replica's folder is a copy of the first (the same keys).
    cpSync(dataA, dataB, { recursive: true });
  });

  it('serves from two replicas; a begin on one finishes on the other', async () => {
    [a, b] = await Promise.all([serve(dataA), serve(dataB)]);
    const id = `spiffe://${TD}/node/split`;
    const begin = await rawRequest(`${a.url}/v1/enroll/begin`, {
      method: 'POST',
      body: JSON.stringify({ id, method: 'token' }),
    });
    expect(begin.status).toBe(200);
    const out = join(dir, 'split');
    // enroll() runs both halves against one URL; here the finish goes to the other replica.
    const issued = await enroll({ ca: b.url, fingerprint, id, prover: createTokenProver(token(id)), out });
    expect(issued.identity).toBe(id);
    const session = (begin.json as { session: string }).session;
    const finish = await rawRequest(`${b.url}/v1/enroll/finish`, {
      method: 'POST',
      body: JSON.stringify({ session, csr: 'x', response: { token: token(id) } }),
    });
    // The session from replica A opens on replica B (its refusal is about the CSR, not the session).
    expect(finish.json?.['code']).toBe('ERR_CA_CSR_MALFORMED');
  });

  it('a revocation made anywhere is in both replicas’ CRLs, numbered from one sequence', async () => {
    const id = `spiffe://${TD}/node/revoked`;
    const out = join(dir, 'revoked');
    const issued = await enroll({ ca: a.url, fingerprint, id, prover: createTokenProver(token(id)), out });
    const rv = edgeward(['ca', 'revoke', '--data', dataB, '--store', db.url, '--serial', issued.serial,
      '--reason', 'keyCompromise']); // prettier-ignore
    expect(rv.status, rv.stderr).toBe(0);
    const numbers: number[] = [];
    for (const r of [a, b]) {
      const file = join(dir, `crl-${numbers.length}.der`);
      writeFileSync(file, (await rawRequest(`${r.url}/v1/crl`)).body);
      const text = openssl(['crl', '-inform', 'DER', '-in', file, '-noout', '-text']);
      expect(text.toLowerCase().replace(/:/g, '')).toContain(issued.serial.slice(-12));
      numbers.push(Number(/X509v3 CRL Number:\s*\n?\s*(\d+)/.exec(text)?.[1]));
    }
    expect(new Set(numbers).size).toBe(2);
  });

  it('kill -9 of one replica during renewals over both: nothing acknowledged lost, no serial twice', async () => {
    const ids = Array.from({ length: 6 }, (_, i) => `spiffe://${TD}/device/r${i}`);
    const dirs: string[] = [];
    for (const id of ids) {
      const out = join(dir, id.split('/').pop() as string);
      await enroll({ ca: a.url, fingerprint, id, prover: createTokenProver(token(id)), out });
      dirs.push(out);
    }
    const acknowledged: string[] = [];
    let killed = false;
    let failures = 0;
    const worker = async (k: number): Promise<void> => {
      for (let i = 0; acknowledged.length < 400 && i < 1000; i++) {
        // Spread over both replicas; after the kill only B answers.
        const url = killed || (i + k) % 2 === 0 ? b.url : a.url;
        try {
          acknowledged.push((await renew({ ca: url, dir: dirs[k] as string })).serial);
        } catch {
          failures++;
        }
        if (killed && acknowledged.length > 120) return;
      }
    };
    const running = dirs.map((_, k) => worker(k));
    while (acknowledged.length < 60) await new Promise((r) => setTimeout(r, 10));
    a.proc.kill('SIGKILL');
    killed = true;
    await Promise.all(running);
    expect(acknowledged.length).toBeGreaterThan(60);
    const stored = await storedSerials();
    expect(new Set(stored).size, 'a serial stored twice').toBe(stored.length);
    const set = new Set(stored);
    for (const s of acknowledged) expect(set.has(s), `acknowledged serial ${s} missing`).toBe(true);
    expect(failures).toBeLessThan(acknowledged.length);
    const av = edgeward(['ca', 'audit', 'verify', '--data', dataB, '--store', db.url]);
    expect(av.status, av.stdout + av.stderr).toBe(0);
    expect(av.stdout).toMatch(/audit chain OK: \d+ records/);
  }, 180_000);
});

describe('a replica while its database is away', () => {
  it('answers 503 with Retry-After and the coded error, never crashes, and resumes by itself', async () => {
    const { url } = await serve(dataB);
    const admin = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
    await admin.connect();
    try {
      expect((await rawRequest(`${url}/v1/crl`)).status).toBe(200);
      await admin.query(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS false`);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [
        db.name,
      ]);
      for (let i = 0; i < 3; i++) {
        const r = await rawRequest(`${url}/v1/crl`);
        expect(r.status).toBe(503);
        expect(r.headers['retry-after']).toBe('1');
        expect(r.json?.['code']).toBe('ERR_STORE_UNAVAILABLE');
      }
      await admin.query(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS true`);
      expect((await rawRequest(`${url}/v1/crl`)).status).toBe(200);
      expect((await rawRequest(`${url}/healthz`)).status).toBe(200);
    } finally {
      await admin.query(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS true`).catch(() => undefined);
      await admin.end();
    }
  });
});

describe('ca commands and an unusable --store', () => {
  it('an unreachable PostgreSQL is a coded error, without a stack trace or the password', () => {
    const r = edgeward([
      'ca',
      'audit',
      'verify',
      '--data',
      dataA,
      '--store',
      'postgres://edgeward@127.0.0.1:1/ca',
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('ERR_STORE_UNAVAILABLE');
    expect(r.stderr).toContain('postgres://edgeward@127.0.0.1:1/ca');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a malformed URL, or one with a password, is refused before connecting', () => {
    const bad = edgeward([
      'ca',
      'token',
      '--data',
      dataA,
      '--store',
      'postgres://nouser/db',
      '--id',
      `spiffe://${TD}/node/x`,
    ]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('ERR_STORE_URL');
    const secret = edgeward(['ca', 'serve', '--data', dataA, '--listen', '127.0.0.1:0',
      '--store', 'postgres://u:hunter2@127.0.0.1/db']); // prettier-ignore
    expect(secret.status).toBe(1);
    expect(secret.stderr).toContain('ERR_SECRET_ARGV');
    expect(secret.stderr).not.toContain('hunter2');
  });

  it('a replica refuses a database whose schema is newer, naming both versions', async () => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query(
      "INSERT INTO schema_migrations (component, version, name) VALUES ('ca', 99, 'from the future')",
    );
    await c.end();
    const r = edgeward(['ca', 'audit', 'verify', '--data', dataA, '--store', db.url]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('ERR_STORE_SCHEMA_NEWER');
    expect(r.stderr).toMatch(/version 99, this build knows versions up to 2/);
  });
});
