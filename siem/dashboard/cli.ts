// `edgeward siem user add --data DIR --name N --role viewer|analyst|admin`: a dashboard user.
// The password comes from EDGEWARD_PASSWORD or, when unset, the first line of standard input,
// never from the command line (it would show in the process list and shell history).
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { privateDatabase, privateDir } from '../../common/private-files.js';
import { parseCommand, required, UsageError, usageLine } from '../../common/args.js';
import { command } from '../../common/commands.js';
import { UserStore } from './users.js';

const USAGE = usageLine(command('siem user add'));

export const DASHBOARD_DB = 'dashboard.db';

export function openDashboardDb(dataDir: string): Database.Database {
  privateDir(dataDir);
  const db = new Database(privateDatabase(join(dataDir, DASHBOARD_DB)));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return db;
}

async function readPassword(): Promise<string> {
  const env = process.env['EDGEWARD_PASSWORD'];
  if (env !== undefined && env !== '') return env;
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
  const db = openDashboardDb(required(a.data, 'data', USAGE));
  try {
    const user = await new UserStore(db).add(
      required(a.name, 'name', USAGE),
      required(a.role, 'role', USAGE),
      await readPassword(),
      Date.now(),
    );
    out(`added dashboard user ${user.name} (${user.role})`);
    return 0;
  } finally {
    db.close();
  }
}
