// `edgeward siem user add` on a real terminal (a pty driven by Debian's python3): it prompts for
// the password without echoing it, asks twice, and the password never goes on a command line.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DashboardUsers, openDashboardDb, sqliteUserStore } from '../../siem/index.js';
import { EDGEWARD } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const PYTHON = '/usr/bin/python3';
const PTY = join(import.meta.dirname, '..', 'helpers', 'terminal.py');

function onTerminal(args: string[], answers: string[]): { status: number; transcript: string } {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is needed to drive a pty (apt-get install python3)`);
  const env: Record<string, string | undefined> = { ...process.env, PTY_ANSWERS: answers.join('\n') };
  delete env['EDGEWARD_PASSWORD'];
  const r = spawnSync(PYTHON, [PTY, process.execPath, EDGEWARD, ...args], {
    encoding: 'utf8',
    env,
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`pty driver failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { status: number; transcript: string };
}

describe('siem user add on a terminal', () => {
  const data = join(tempDir('edgeward-tty-'), 'siem');
  const secret = 'correct-horse-battery-9';

  it('prompts without echo, twice, and stores the password typed', async () => {
    const r = onTerminal(
      ['siem', 'user', 'add', '--data', data, '--name', 'alice', '--role', 'analyst'],
      [secret, secret],
    );
    expect(r.status, r.transcript).toBe(0);
    expect(r.transcript).toContain('password for alice (not shown): ');
    expect(r.transcript).toContain('the same password again: ');
    expect(r.transcript).toContain('added dashboard user alice (analyst)');
    expect(r.transcript).not.toContain(secret);
    const db = openDashboardDb(data);
    try {
      expect((await new DashboardUsers(sqliteUserStore(db)).verify('alice', secret))?.role).toBe('analyst');
    } finally {
      db.close();
    }
  });

  it('refuses two different passwords and adds nobody', async () => {
    const r = onTerminal(
      ['siem', 'user', 'add', '--data', data, '--name', 'bob', '--role', 'viewer'],
      [secret, `${secret}x`],
    );
    expect(r.status).toBe(2);
    expect(r.transcript).toContain('edgeward siem user add: the two passwords differ; nothing was added');
    expect(r.transcript).not.toContain(secret);
    const db = openDashboardDb(data);
    try {
      expect(await new DashboardUsers(sqliteUserStore(db)).verify('bob', secret)).toBeUndefined();
    } finally {
      db.close();
    }
  });
});
