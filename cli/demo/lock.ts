// The demo's hold on its --data folder: a lock file holding the pid of the demo that uses it.
// A second demo with the same folder refuses while that process lives (the folder is removed and
// remade at every run, so it would wipe a running demo's CA); a lock whose process is gone is
// taken over.
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EdgewardError } from '../../common/errors.js';

export const LOCK_FILE = '.edgeward-demo.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists, it is someone else's.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function holder(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export interface FolderLock {
  release(): void;
}

/** Takes the folder (which exists) for this process, or refuses naming the demo that holds it. */
export function lockDemoFolder(dir: string): FolderLock {
  const file = join(dir, LOCK_FILE);
  const mine = String(process.pid);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, `${mine}\n`, { flag: 'wx', mode: 0o600 });
      return { release: () => releaseIfMine(file, mine) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = holder(file);
    if (pid !== undefined && pid !== process.pid && alive(pid))
      throw new EdgewardError(
        'ERR_DEMO_DATA_IN_USE',
        `${dir} is in use by another edgeward demo (pid ${pid}); stop it (Ctrl-C in its terminal, or kill ${pid}) or give another --data`,
      );
    // A stale lock (its demo died without removing it): replaced in one rename, then read back,
    // so that of two demos taking it over at once only one goes on.
    const tmp = `${file}.${mine}`;
    writeFileSync(tmp, `${mine}\n`, { mode: 0o600 });
    renameSync(tmp, file);
    if (holder(file) === process.pid) return { release: () => releaseIfMine(file, mine) };
  }
  throw new EdgewardError(
    'ERR_DEMO_DATA_IN_USE',
    `${dir}: another edgeward demo is taking it at the same time`,
  );
}

function releaseIfMine(file: string, mine: string): void {
  try {
    if (readFileSync(file, 'utf8').trim() === mine) unlinkSync(file);
  } catch {
    // Gone already.
  }
}
