// Failover across CA replicas, with real processes on the real PostgreSQL: two `ca serve` on one
// store, the first killed with SIGKILL; a client given both URLs renews through the second (the
// dead one costs one refused connection), and keeps going to the one that answered.
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { edgeward, edgewardServe, stop, serveCaReplica } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

const TD = 'failover.example';
const dir = tempDir('edgeward-failover-');
const dataA = join(dir, 'ca-a');
const dataB = join(dir, 'ca-b');
const procs: ChildProcess[] = [];
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  for (const p of procs) await stop(p, 'SIGKILL');
  await db?.drop();
});

async function serve(data: string): Promise<{ url: string; proc: ChildProcess }> {
  const r = await serveCaReplica(data, db.url);
  procs.push(r.proc);
  return r;
}

describe('CA replica failover (real processes, PostgreSQL)', () => {
  it('with the first replica killed, renew given both URLs renews through the second, again and again', async () => {
    const init = edgeward(['ca', 'init', '--data', dataA, '--trust-domain', TD, '--store', db.url]);
    expect(init.status, init.stderr).toBe(0);
    const fingerprint = /fingerprint \(SHA-256\): ([0-9a-f]{64})/.exec(init.stdout)?.[1] ?? '';
    cpSync(dataA, dataB, { recursive: true });
    const a = await serve(dataA);
    const b = await serve(dataB);

    const id = `spiffe://${TD}/node/n1`;
    const tok = edgeward(['ca', 'token', '--data', dataA, '--store', db.url, '--id', id, '--ttl', '10m']);
    expect(tok.status, tok.stderr).toBe(0);
    const node = join(dir, 'n1');
    const en = edgeward(
      ['enroll', '--ca', a.url, '--fingerprint', fingerprint, '--id', id, '--attest', 'token', '--out', node],
      {
        EDGEWARD_JOIN_TOKEN: tok.stdout.trim(),
      },
    );
    expect(en.status, en.stderr).toBe(0);

    // Both up: the first answers.
    const both = edgeward(['renew', '--ca', a.url, '--ca', b.url, '--dir', node]);
    expect(both.status, both.stderr).toBe(0);
    expect(both.stdout).toMatch(/renewed: serial [0-9a-f]+/);

    await stop(a.proc, 'SIGKILL');
    // Only the dead replica: the client says it cannot reach the CA, with a code.
    const dead = edgeward(['renew', '--ca', a.url, '--dir', node]);
    expect(dead.status).toBe(1);
    expect(dead.stderr).toContain('ERR_ENROLL_TRANSPORT');
    // Both: through the second, each time.
    const serials = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const r = edgeward(['renew', '--ca', a.url, '--ca', b.url, '--dir', node]);
      expect(r.status, r.stderr).toBe(0);
      serials.add(/renewed: serial ([0-9a-f]+)/.exec(r.stdout)?.[1] ?? '');
    }
    expect(serials.size).toBe(3);

    // A SIEM's first start given both CA URLs reads the CA's trust domain and enrolls through the
    // second: the dead first replica costs one refused connection.
    const siemTok = edgeward([
      'ca',
      'token',
      '--data',
      dataB,
      '--store',
      db.url,
      '--id',
      `spiffe://${TD}/svc/siem`,
    ]);
    expect(siemTok.status, siemTok.stderr).toBe(0);
    const tokenFile = join(dir, 'siem.token');
    writeFileSync(tokenFile, siemTok.stdout.trim(), { mode: 0o600 });
    const { proc, match } = await edgewardServe(
      ['siem', 'serve', '--data', join(dir, 'siem'), '--listen', '127.0.0.1:0', '--ca', a.url, '--ca', b.url,
        '--fingerprint', fingerprint, '--token-file', tokenFile], // prettier-ignore
      /SIEM (\S+) listening on (https:\/\/\S+)/,
    );
    procs.push(proc);
    expect(match[1]).toBe(`spiffe://${TD}/svc/siem`);
  }, 180_000);
});
