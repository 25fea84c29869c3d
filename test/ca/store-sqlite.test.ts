// The CA store's write lock across processes (`ca serve --workers N`, `ca revoke` beside a
// running CA): a writer waits for another process's lock in short pauses instead of SQLite's
// millisecond busy sleeps, succeeds once the lock is released, and gives up with a coded error.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openCaStore } from '../../ca/store-sqlite.js';
import type { CaStore } from '../../ca/store.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('edgeward-store-');
const opened: CaStore[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
});

/** Another process takes the write lock, says so, and holds it for `ms`. */
async function holdWriteLock(file: string, ms: number): Promise<{ exited: Promise<number | null> }> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const D = require('better-sqlite3'); const db = new D(process.argv[1]);
       db.exec('BEGIN IMMEDIATE'); process.stdout.write('locked\\n');
       setTimeout(() => { db.exec('COMMIT'); db.close(); }, Number(process.argv[2]));`,
      file,
      String(ms),
    ],
    { cwd: join(import.meta.dirname, '..', '..'), stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => b.toString().includes('locked') && resolve());
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`lock holder exited early (${String(code)})`)));
  });
  // Wrapped: an async function would flatten a returned promise and wait for the exit.
  return { exited: new Promise((resolve) => child.on('exit', resolve)) };
}

function store(name: string, lockWaitMs?: number): { file: string; s: CaStore } {
  const file = join(dir, `${name}.db`);
  const s = openCaStore(file, lockWaitMs === undefined ? {} : { lockWaitMs });
  opened.push(s);
  return { file, s };
}

const token = (n: number) => ({
  hash: `h${n}`,
  identity: `spiffe://factory.example/node/n${n}`,
  createdAt: 1,
  expiresAt: Date.now() + 60_000,
});

describe('CA store write lock', () => {
  it('waits for another process to release the lock, then writes', async () => {
    const { file, s } = store('wait');
    const { exited } = await holdWriteLock(file, 300);
    const t0 = performance.now();
    await s.createToken(token(1), Date.now());
    expect(performance.now() - t0).toBeGreaterThan(100);
    expect((await s.getToken('h1'))?.identity).toBe(token(1).identity);
    expect(await exited).toBe(0);
  });

  it('gives up with ERR_CA_UNAVAILABLE and writes nothing when the lock is held too long', async () => {
    const { file, s } = store('busy', 150);
    const { exited } = await holdWriteLock(file, 1500);
    await expect(s.createToken(token(2), Date.now())).rejects.toMatchObject({ code: 'ERR_CA_UNAVAILABLE' });
    await expect(s.purgeExpired(Date.now())).rejects.toMatchObject({ code: 'ERR_CA_UNAVAILABLE' });
    // Reads go on meanwhile (WAL), and the store works again after the release.
    expect(await s.getToken('h2')).toBeUndefined();
    expect(await exited).toBe(0);
    await s.createToken(token(2), Date.now());
    expect((await s.getToken('h2'))?.identity).toBe(token(2).identity);
  });
});

describe('CA store group commit', () => {
  it('commits the calls of one turn together; one throwing rolls back only its own writes', async () => {
    const { s } = store('grouped');
    const calls = [1, 2, 3, 4].map((n) =>
      s.transaction(async (tx) => {
        await tx.audit({ kind: 'test', data: { n } }, 1);
        if (n === 3) throw new Error('refused');
        return tx.useOnce('grouped', `k${n}`, Date.now() + 60_000);
      }),
    );
    const results = await Promise.allSettled(calls);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ message: 'refused' });
    expect(await Promise.all(['k1', 'k2', 'k3', 'k4'].map((k) => s.wasUsed('grouped', k)))).toEqual([
      true,
      true,
      false,
      true,
    ]);
    const kinds: number[] = [];
    for await (const r of s.auditRecords())
      if (r.kind === 'test') kinds.push((JSON.parse(r.data) as { n: number }).n);
    expect(kinds).toEqual([1, 2, 4]);
  });

  it('waits for another process’s lock without blocking the event loop, then commits', async () => {
    const { file, s } = store('grouped-wait');
    const { exited } = await holdWriteLock(file, 400);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    try {
      await s.transaction((tx) => tx.useOnce('w', 'k', Date.now() + 60_000));
    } finally {
      clearInterval(timer);
    }
    // The loop kept turning while the group waited (a blocking wait would leave ticks near 0).
    expect(ticks).toBeGreaterThan(10);
    expect(await s.wasUsed('w', 'k')).toBe(true);
    expect(await exited).toBe(0);
  });

  it('rejects every call of the group when the write lock cannot be had', async () => {
    const { file, s } = store('grouped-busy', 150);
    const { exited } = await holdWriteLock(file, 1500);
    const calls = [1, 2].map((n) => s.transaction((tx) => tx.useOnce('g', `k${n}`, Date.now() + 60_000)));
    for (const c of calls) await expect(c).rejects.toMatchObject({ code: 'ERR_CA_UNAVAILABLE' });
    expect(await exited).toBe(0);
    expect(await s.wasUsed('g', 'k1')).toBe(false);
  });
});
