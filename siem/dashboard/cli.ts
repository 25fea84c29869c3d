// `edgeward siem user add --data DIR --name N --role viewer|analyst|admin`: a dashboard user.
// The password comes from EDGEWARD_PASSWORD or, when unset, a prompt without echo on a terminal,
// else the first line of standard input; never from the command line (it would show in the process list and shell history).
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { privateDatabase, privateDir } from '../../common/private-files.js';
import { parseCommand, required, UsageError, usageLine } from '../../common/args.js';
import { command } from '../../common/commands.js';
import { sqliteUserStore } from '../store/sqlite-side.js';
import { DashboardUsers } from './users.js';

const USAGE = usageLine(command('siem user add'));

export const DASHBOARD_DB = 'dashboard.db';

export function openDashboardDb(dataDir: string): Database.Database {
  privateDir(dataDir);
  const db = new Database(privateDatabase(join(dataDir, DASHBOARD_DB)));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return db;
}

/**
 * On a terminal: a prompt on the terminal, the typed characters not echoed, asked twice. Raw mode
 * makes the terminal send keys as they come, so this reads them itself: Enter ends, Backspace
 * erases, Ctrl-C and Ctrl-D give up.
 */
async function promptPassword(name: string): Promise<string> {
  const stdin = process.stdin;
  const ask = (prompt: string): Promise<string> =>
    new Promise((resolve, reject) => {
      process.stderr.write(prompt);
      let typed = '';
      const done = (err?: Error): void => {
        stdin.off('data', onData);
        stdin.setRawMode(false);
        stdin.pause();
        process.stderr.write('\n');
        if (err) reject(err);
        else resolve(typed);
      };
      const onData = (chunk: Buffer): void => {
        for (const ch of chunk.toString('utf8')) {
          if (ch === '\r' || ch === '\n') return done();
          if (ch === '\u0003' || ch === '\u0004')
            return done(new UsageError('no password given (interrupted)'));
          if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
          else if (ch >= ' ' && typed.length < 1024) typed += ch;
        }
      };
      stdin.setRawMode(true);
      stdin.resume();
      stdin.on('data', onData);
    });
  const first = await ask(`password for ${name} (not shown): `);
  const again = await ask('the same password again: ');
  if (first !== again) throw new UsageError('the two passwords differ; nothing was added');
  return first;
}

async function readPassword(name: string): Promise<string> {
  const env = process.env['EDGEWARD_PASSWORD'];
  if (env !== undefined && env !== '') return env;
  if (process.stdin.isTTY) return promptPassword(name);
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) {
    chunks.push(c as Buffer);
    if (Buffer.concat(chunks).includes(0x0a) || Buffer.concat(chunks).length > 2048) break;
  }
  return (Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '').trim();
}

export async function runUserCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb !== 'add') throw new UsageError(`usage: ${USAGE}`);
  const a = parseCommand(rest, command('siem user add'));
  const name = required(a.name, 'name', USAGE);
  // Asked before the database opens, so an interrupted prompt leaves nothing behind.
  const password = await readPassword(name);
  const db = openDashboardDb(required(a.data, 'data', USAGE));
  try {
    const user = await new DashboardUsers(sqliteUserStore(db)).add(
      name,
      required(a.role, 'role', USAGE),
      password,
      Date.now(),
    );
    out(`added dashboard user ${user.name} (${user.role})`);
    return 0;
  } finally {
    db.close();
  }
}
