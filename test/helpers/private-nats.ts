// A nats-server of one test's own (JetStream in a temp dir, a free port), so the test may stop and
// restart it without touching the shared one on 4222. A missing nats-server fails loudly.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { tempDir } from './tmp.js';

export const NATS_SERVER = '/usr/sbin/nats-server';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

export interface PrivateNats {
  readonly url: string;
  readonly port: number;
  proc: ChildProcess;
  /** Starts it again after stop(), on the same port and store. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** A nats-server needed by a test: fails loudly when it is not installed. */
export function requireNatsServer(): void {
  if (spawnSync(NATS_SERVER, ['--version']).status !== 0)
    throw new Error(`${NATS_SERVER} is needed (apt-get install nats-server)`);
}

/** Starts nats-server with `args` and waits until it says it is ready. */
export async function runNatsServer(args: readonly string[]): Promise<ChildProcess> {
  const p = spawn(NATS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server not ready:\n${log}`)), 30_000);
    const on = (c: Buffer): void => {
      log += c.toString();
      if (log.includes('Server is ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    p.stdout?.on('data', on);
    p.stderr?.on('data', on);
    p.once('exit', (code) => reject(new Error(`nats-server exited with ${code}:\n${log}`)));
  });
  return p;
}

export async function startPrivateNats(): Promise<PrivateNats> {
  requireNatsServer();
  const port = await freePort();
  const dir = tempDir('edgeward-nats-');
  const run = (): Promise<ChildProcess> =>
    runNatsServer(['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir]);
  const n: PrivateNats = {
    url: `nats://127.0.0.1:${port}`,
    port,
    proc: await run(),
    async start() {
      n.proc = await run();
    },
    async stop() {
      const p = n.proc;
      if (p.exitCode !== null || p.signalCode !== null) return;
      p.kill('SIGKILL');
      await new Promise((r) => p.once('exit', r));
    },
  };
  return n;
}
