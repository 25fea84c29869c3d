// The demo's lock on its --data folder: held by a live process it refuses, left by a dead one it
// is taken over, and released only by its holder.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOCK_FILE, lockDemoFolder } from '../../cli/demo/lock.js';
import { tempDir } from '../helpers/tmp.js';

/** The pid of a process that has ended. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  return Number(r.stdout);
}

describe('demo folder lock', () => {
  it('refuses while a live process holds it', () => {
    const dir = tempDir();
    // The parent of this test runner lives as long as the test does.
    writeFileSync(join(dir, LOCK_FILE), `${process.ppid}\n`);
    let refused: unknown;
    try {
      lockDemoFolder(dir);
    } catch (err) {
      refused = err;
    }
    expect(refused).toMatchObject({ code: 'ERR_DEMO_DATA_IN_USE' });
    expect(String(refused)).toContain(`is in use by another edgeward demo (pid ${process.ppid})`);
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8').trim()).toBe(String(process.ppid));
  });

  it('takes over a lock whose process is gone, and releases only its own', () => {
    const dir = tempDir();
    writeFileSync(join(dir, LOCK_FILE), `${deadPid()}\n`);
    const lock = lockDemoFolder(dir);
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8').trim()).toBe(String(process.pid));
    lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    const again = lockDemoFolder(dir);
    writeFileSync(join(dir, LOCK_FILE), '1\n');
    again.release();
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8').trim()).toBe('1');
  });
});
