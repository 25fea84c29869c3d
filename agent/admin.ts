// The admin endpoint (plain HTTP on loopback): /healthz and Prometheus /metrics.
import * as http from 'node:http';
import type { ListenAddress } from './config.js';
import { listenOn } from './listener.js';

/** `ok` and `degraded` answer 200, `unhealthy` 503 (docs/agent.md lists what each means). */
export interface Health {
  readonly status: 'ok' | 'degraded' | 'unhealthy';
  readonly detail: Record<string, unknown>;
}

export interface AdminSources {
  health(): Health;
  metrics(): string;
}

export class AdminServer {
  private server: http.Server | null = null;

  constructor(
    private readonly listen: ListenAddress,
    private readonly src: AdminSources,
  ) {}

  get port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/healthz') {
        const h = this.src.health();
        res.writeHead(h.status === 'unhealthy' ? 503 : 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: h.status, ...h.detail }));
        return;
      }
      if (path === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(this.src.metrics());
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"status":"not found"}');
    });
    server.headersTimeout = 5000;
    server.requestTimeout = 10_000;
    await listenOn(server, this.listen);
    this.server = server;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }
}
