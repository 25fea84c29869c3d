// Runs the built `edgeward` command (dist/, built by the global setup) as a real process.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const EDGEWARD = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'edgeward.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Options of a spawned `edgeward`. */
export interface SpawnOptions {
  /** Runs the command under this umask (through `sh -c 'umask N; exec ...'`). */
  readonly umask?: number;
}

/** The program and arguments that run `edgeward ARGS` (under a umask when asked). */
export function commandLine(args: readonly string[], o: SpawnOptions = {}): [string, string[]] {
  if (o.umask === undefined) return [process.execPath, [EDGEWARD, ...args]];
  const mask = o.umask.toString(8).padStart(3, '0');
  return ['/bin/sh', ['-c', `umask ${mask} && exec "$0" "$@"`, process.execPath, EDGEWARD, ...args]];
}

export function edgeward(args: string[], env: Record<string, string> = {}, o: SpawnOptions = {}): CliResult {
  const [cmd, argv] = commandLine(args, o);
  const r = spawnSync(cmd, argv, {
    encoding: 'utf8',
    env: { ...process.env, EDGEWARD_LOG_LEVEL: 'warn', ...env },
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The same as edgeward(), without blocking this process: use it when the server the command
 * talks to runs inside the test process (spawnSync would freeze that server).
 */
export function edgewardAsync(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<CliResult> {
  const proc = spawn(process.execPath, [EDGEWARD, ...args], {
    env: { ...process.env, EDGEWARD_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    proc.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** Starts a long-running command and resolves once a stdout line matches `ready`. */
export function edgewardServe(
  args: string[],
  ready: RegExp,
  env: Record<string, string> = {},
): Promise<{ proc: ChildProcess; match: RegExpMatchArray }> {
  const proc = spawn(process.execPath, [EDGEWARD, ...args], {
    env: { ...process.env, EDGEWARD_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`edgeward ${args.join(' ')} did not become ready:\n${out}\n${err}`));
    }, 30_000);
    proc.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, match: m });
      }
    });
    proc.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`edgeward ${args.join(' ')} exited with ${code}:\n${out}\n${err}`));
    });
  });
}

export function stop(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill(signal);
  });
}

/** `edgeward enroll` by join token read from a file, into `out`. */
export function tokenEnrollArgs(
  ca: { readonly url: string; readonly fingerprint: string },
  id: string,
  tokenFile: string,
  out: string,
): string[] {
  return [
    'enroll',
    '--ca',
    ca.url,
    '--fingerprint',
    ca.fingerprint,
    '--id',
    id,
    '--attest',
    'token',
    '--token-file',
    tokenFile,
    '--out',
    out,
  ];
}

/** `edgeward ca serve` on `data` and a shared `--store`, on a free loopback port: its URL and process. */
export async function serveCaReplica(
  data: string,
  store: string,
  extra: readonly string[] = [],
): Promise<{ url: string; proc: ChildProcess }> {
  const { proc, match } = await edgewardServe(
    ['ca', 'serve', '--data', data, '--store', store, '--listen', '127.0.0.1:0', ...extra],
    /listening on (https:\/\/\S+)/,
  );
  return { url: match[1] ?? '', proc };
}
