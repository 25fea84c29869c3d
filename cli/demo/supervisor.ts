// The demo's supervisor: the ports it uses, the edgeward processes it starts (each with an IPC
// channel, so that a child stops itself when the demo ends, however it ends), the local apps and
// client connections it holds, and the timeline it prints.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { UsageError } from '../../common/args.js';
import type { LoadedIdentity } from '../../common/identity-dir.js';
import { listenError } from '../../common/ports.js';

/** The edgeward command the children run (dist/cli/edgeward.js beside this folder). */
export const EDGEWARD = join(import.meta.dirname, '..', 'edgeward.js');

export interface Ports {
  ca: number;
  siem: number;
  dashboard: number;
  inbound: [number, number, number];
  outbound: number;
  admin: [number, number, number];
  apps: [number, number, number];
}

export function portsFrom(base: number): Ports {
  return {
    ca: base,
    siem: base + 1,
    dashboard: base + 2,
    inbound: [base + 10, base + 11, base + 12],
    outbound: base + 20,
    admin: [base + 30, base + 31, base + 32],
    apps: [base + 40, base + 41, base + 42],
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Refuses, before anything starts, a port base whose ports another program listens on. */
export async function checkPortsFree(base: number, ports: Ports): Promise<void> {
  const all = Object.values(ports).flat() as number[];
  for (const port of all) {
    const err = await listenError(port);
    if (err !== undefined)
      throw new UsageError(
        `port ${port} on 127.0.0.1 is not free (${err.code ?? err.message}); the demo listens on ports ${base} to ${Math.max(...all)}: give another --port-base`,
      );
  }
}

export class Mesh {
  private readonly children: ChildProcess[] = [];
  private readonly servers: Server[] = [];
  private readonly sockets: TLSSocket[] = [];
  readonly t0 = Date.now();

  constructor(
    readonly dir: string,
    readonly out: (s: string) => void,
  ) {}

  /** What was seen but not printed yet: printed in the order it happened at the next step. */
  private readonly seen: { at: number; text: string }[] = [];

  private print(text: string, at: number): void {
    this.out(`[+${((at - this.t0) / 1000).toFixed(3).padStart(7)} s] ${text}`);
  }

  /** Something that happened at `at` (an alert, a decision, an acknowledgement, a cut). */
  note(text: string, at: number): void {
    this.seen.push({ at, text });
  }

  /** Prints what was noted, ordered by when it happened: a decision before the cut it caused. */
  flush(): void {
    for (const e of this.seen.splice(0).sort((x, y) => x.at - y.at)) this.print(e.text, e.at);
  }

  /** While held, steps are noted like everything else and nothing is printed until `release`. */
  private held = false;

  hold(): void {
    this.held = true;
  }

  release(): void {
    this.held = false;
    this.flush();
  }

  /** One line of the timeline, now, after everything noted before it. */
  step(text: string): void {
    if (this.held) return this.note(text, Date.now());
    this.flush();
    this.print(text, Date.now());
  }

  /** Runs `edgeward ARGS` to its end (a CA command on the data folder); its output, or why it failed. */
  run(args: string[]): Promise<string> {
    const p = spawn(process.execPath, [EDGEWARD, ...args], {
      env: { ...process.env, EDGEWARD_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (out += c.toString()));
    return new Promise((resolve, reject) => {
      p.on('error', reject);
      p.on('close', (code) =>
        code === 0
          ? resolve(out)
          : reject(new Error(`edgeward ${args.slice(0, 2).join(' ')} failed: ${out.trim()}`)),
      );
    });
  }

  /**
   * Starts `edgeward ARGS` and resolves with its output once it matches `ready`. Its stderr (the
   * JSON log lines) goes to `<name>.log`, its stdout (what it prints for a person) to `<name>.out`.
   */
  start(name: string, args: string[], readyOn: RegExp): Promise<string> {
    const log = join(this.dir, `${name}.log`);
    const p = spawn(process.execPath, [EDGEWARD, ...args], {
      env: { ...process.env, EDGEWARD_LOG_LEVEL: process.env['EDGEWARD_LOG_LEVEL'] ?? 'warn' },
      // The IPC channel ends when the demo does, however it ends; the child then stops itself.
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.children.push(p);
    // Appended to the files as it comes; only the start-up output and then a bounded tail are
    // kept in memory (readiness match, exit message).
    const logFile = createWriteStream(log, { flags: 'w' });
    const outFile = createWriteStream(join(this.dir, `${name}.out`), { flags: 'w' });
    let output = '';
    let ready = false;
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start in 60 s; see ${log}`)), 60_000);
      const onData = (file: WriteStream) => (c: Buffer) => {
        file.write(c);
        output += c.toString();
        if (ready) output = output.slice(-2000);
        else if (readyOn.test(output)) {
          ready = true;
          clearTimeout(timer);
          resolvePromise(output);
        }
      };
      p.stdout?.on('data', onData(outFile));
      p.stderr?.on('data', onData(logFile));
      p.on('exit', (code) => {
        clearTimeout(timer);
        logFile.end();
        outFile.end();
        reject(new Error(`${name} exited with ${code}:\n${output.slice(-2000)}`));
      });
    });
  }

  /** A local app behind an agent: echoes what it receives. */
  echoApp(port: number): Promise<void> {
    const srv = createServer((s) => s.on('data', (d) => s.write(d)).on('error', () => undefined));
    this.servers.push(srv);
    return new Promise((r, j) => srv.once('error', j).listen(port, '127.0.0.1', () => r()));
  }

  /** An mTLS client connection with a device's credential, from a chosen local address. */
  tlsConnect(id: LoadedIdentity, port: number, localAddress: string): Promise<TLSSocket> {
    return new Promise((r, j) => {
      const s = connect({
        socket: tcpFrom(port, localAddress),
        key: id.keyPem,
        cert: id.certPem,
        ca: id.bundlePem,
        minVersion: 'TLSv1.3',
        checkServerIdentity: () => undefined,
      });
      this.sockets.push(s);
      // A refusal may come as an error, a plain close, or silence: all of them are refusals.
      const timer = setTimeout(() => {
        s.destroy();
        j(new Error('no answer'));
      }, 10_000);
      const refuse = (err?: Error): void => {
        clearTimeout(timer);
        j(err ?? new Error('connection closed'));
      };
      s.once('error', refuse);
      s.once('close', () => refuse());
      // TLS 1.3: the server checks our certificate after our secureConnect; its first byte (the
      // echo) is the proof that it accepted us.
      s.once('secureConnect', () => s.write('hello\n'));
      s.once('data', () => {
        clearTimeout(timer);
        r(s);
      });
    });
  }

  private readonly cleanups: Array<() => Promise<void>> = [];

  /** Runs at stop, after the edgeward processes have ended (e.g. the swtpm behind them). */
  onStop(fn: () => Promise<void>): void {
    this.cleanups.push(fn);
  }

  async stop(): Promise<void> {
    // A demo that fails while its timeline is held still prints what it saw before it failed.
    this.release();
    for (const s of this.sockets) s.destroy();
    for (const srv of this.servers) srv.close();
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((r) => {
            if (c.exitCode !== null || c.signalCode !== null) return r();
            c.once('exit', () => r());
            c.kill('SIGTERM');
            setTimeout(() => c.kill('SIGKILL'), 5000).unref();
          }),
      ),
    );
    for (const fn of this.cleanups.splice(0)) await fn().catch(() => undefined);
  }
}

/** A TCP connection from a chosen loopback address (the demo's attackers use 127.0.0.2 and .3). */
export function tcpFrom(port: number, localAddress: string): Socket {
  return netConnect({ host: '127.0.0.1', port, localAddress });
}
