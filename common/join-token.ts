// Where a join token may come from: a file only its owner can read, or an environment variable;
// never the command line, where every local user reads it (ps, /proc/PID/cmdline).
import { EdgewardError } from './errors.js';
import { readSecretFile } from './private-files.js';

/** The environment variable a command reads the join token from when no token file is given. */
export const JOIN_TOKEN_ENV = 'EDGEWARD_JOIN_TOKEN';

/** Refuses a join token given on the command line, saying how to give it instead. */
export function refuseTokenInArgv(flag = '--token'): never {
  throw new EdgewardError(
    'ERR_SECRET_ARGV',
    `${flag} puts the join token on the command line, where every local user can read it ` +
      `(ps, /proc/PID/cmdline): treat that token as exposed and make a new one with edgeward ca token ` +
      `--out FILE, then give --token-file FILE (mode 0600) or set ${JOIN_TOKEN_ENV}`,
  );
}

/** EDGEWARD_JOIN_TOKEN as it was when taken out of process.env. */
let taken: string | undefined;

/**
 * Takes EDGEWARD_JOIN_TOKEN out of process.env (`edgeward` does so before any command runs) and
 * keeps it in memory: the processes this one spawns (tpm2-tools, the demo's servers and agents)
 * do not inherit it. /proc/PID/environ still shows the environment the process started with.
 */
export function takeJoinTokenFromEnv(): string | undefined {
  const v = process.env[JOIN_TOKEN_ENV];
  if (v !== undefined) {
    taken = v;
    delete process.env[JOIN_TOKEN_ENV];
  }
  return taken;
}

/** The join token from `file` (0600, see readSecretFile) or else from EDGEWARD_JOIN_TOKEN; undefined if neither. */
export function joinTokenFrom(o: {
  readonly file?: string | undefined;
  readonly env?: Readonly<Record<string, string | undefined>>;
}): string | undefined {
  if (o.file !== undefined) return readSecretFile(o.file, 'token file');
  const v = (o.env !== undefined ? o.env[JOIN_TOKEN_ENV] : takeJoinTokenFromEnv())?.trim();
  return v === undefined || v === '' ? undefined : v;
}
