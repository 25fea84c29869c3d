// What the inbound and outbound listeners share: their configuration, their server, the live
// connections they relay, the bound port, a configuration reload that cuts the connections the
// new configuration no longer allows, and a close that cuts them all.
import * as net from 'node:net';
import type { ListenAddress } from './config.js';
import type { AgentContext } from './context.js';
import type { LiveConn, Refusal } from './enforcement.js';

export abstract class Listener<
  C extends { readonly name: string; readonly listen: ListenAddress },
  S extends net.Server,
> {
  protected server: S | null = null;
  protected readonly live = new Set<LiveConn>();

  constructor(
    protected cfg: C,
    /** @internal */
    readonly ctx: AgentContext,
  ) {}

  get name(): string {
    return this.cfg.name;
  }

  get config(): C {
    return this.cfg;
  }

  /** The bound port (tests listen on port 0). */
  get port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  /** Why the configuration `cfg` no longer allows a live connection, or null. */
  protected abstract refusalUnder(c: LiveConn, cfg: C): Refusal | null;

  /** A new configuration; live connections it no longer allows are cut. */
  update(cfg: C): void {
    this.cfg = cfg;
    for (const c of [...this.live]) {
      const r = this.refusalUnder(c, cfg);
      if (r) {
        this.ctx.enforcer.remove(c);
        c.kill(r);
      }
    }
  }

  /** Binds the server to the configured address; from then on it is this listener's. */
  protected async serve(server: S): Promise<void> {
    await listenOn(server, this.cfg.listen);
    this.server = server;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    for (const c of [...this.live]) {
      this.ctx.enforcer.remove(c);
      c.kill({ code: 'ERR_AGENT_UPSTREAM', reason: 'listener closed' });
    }
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}

/** True when nothing answers on that unix socket path (a leftover of a crashed process). */
function staleUnixSocket(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(false);
    });
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

export async function listenOn(server: net.Server, a: ListenAddress): Promise<void> {
  try {
    await listenOnce(server, a);
  } catch (err) {
    if (
      a.kind !== 'unix' ||
      (err as NodeJS.ErrnoException).code !== 'EADDRINUSE' ||
      !(await staleUnixSocket(a.path))
    )
      throw err;
    const { lstat, unlink } = await import('node:fs/promises');
    if (!(await lstat(a.path)).isSocket()) throw err; // never delete something that is not a socket
    await unlink(a.path);
    await listenOnce(server, a);
  }
}

function listenOnce(server: net.Server, a: ListenAddress): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (a.kind === 'unix') server.listen({ path: a.path }, done);
    else server.listen({ host: a.host, port: a.port }, done);
  });
}
