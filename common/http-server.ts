// The one hardened fastify server of every HTTPS service (the CA, the SIEM, the dashboard): TLS 1.3
// only, bounded bodies, bounded time for the handshake, the headers, the whole request, an idle
// socket and an idle keep-alive, prototype poisoning refused, and one coded error answer.
import Fastify, {
  LogController,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyTypeProviderDefault,
  type FastifyError,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { EdgewardError, toClientError } from './errors.js';
import { toEdgewardError } from './http-errors.js';
import type { Logger } from './log.js';

/** The fastify instance every service builds its routes on. */
export type HttpsApp = FastifyInstance<HttpsServer, IncomingMessage, ServerResponse, Logger>;

/** A route plugin of such an instance. */
export type HttpsPlugin = FastifyPluginAsync<
  Record<never, never>,
  HttpsServer,
  FastifyTypeProviderDefault,
  Logger
>;

export interface HttpsServerTls {
  readonly key: string;
  readonly cert: string;
  /** Roots a client certificate is checked against (with requestCert). */
  readonly ca?: string | readonly string[];
  /**
   * Ask for a client certificate, and let a connection without one or with a bad one through:
   * each route decides from `req.socket.authorized` and the peer certificate what it admits.
   */
  readonly requestCert?: boolean;
}

export interface HttpsServerTimeouts {
  /** TLS handshake (default 10 s). */
  readonly handshakeMs?: number;
  /** Receiving the request headers (default 10 s, at most requestMs). */
  readonly headersMs?: number;
  /** Receiving the whole request, headers and body (default 30 s). */
  readonly requestMs?: number;
  /** A socket with no traffic either way (default 120 s; long-lived streams opt out, see holdOpen). */
  readonly idleMs?: number;
  /** An idle keep-alive connection between requests (default 10 s). */
  readonly keepAliveMs?: number;
  /** How often request and header deadlines are checked (default 1 s). */
  readonly checkEveryMs?: number;
}

export interface HttpsServerOptions {
  readonly log: Logger;
  readonly tls: HttpsServerTls;
  /** Largest request body in bytes. */
  readonly bodyLimit: number;
  readonly timeouts?: HttpsServerTimeouts;
  /**
   * Called for every refusal before it is answered, with the coded error it becomes: metrics,
   * audit, headers such as retry-after. It must not send the reply.
   */
  readonly onRefusal?: (
    e: EdgewardError,
    err: Error,
    req: FastifyRequest,
    reply: FastifyReply,
  ) => void | Promise<void>;
}

/**
 * A fastify instance over HTTPS with the hardening above and one error shape: every refusal is
 * `{statusCode, code, error, message}` (common/errors.ts `toClientError`), an unknown route is
 * `ERR_NOT_FOUND` (404), an unexpected failure `ERR_INTERNAL` (500, logged, no detail out).
 */
export function createHttpsServer(o: HttpsServerOptions): HttpsApp {
  const t = o.timeouts ?? {};
  const requestMs = t.requestMs ?? 30_000;
  const app = Fastify({
    loggerInstance: o.log,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: o.bodyLimit,
    requestTimeout: requestMs,
    keepAliveTimeout: t.keepAliveMs ?? 10_000,
    connectionTimeout: t.idleMs ?? 120_000,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    https: {
      key: o.tls.key,
      cert: o.tls.cert,
      ...(o.tls.ca !== undefined ? { ca: o.tls.ca as string | string[] } : {}),
      ...(o.tls.requestCert === true ? { requestCert: true, rejectUnauthorized: false } : {}),
      minVersion: 'TLSv1.3',
      handshakeTimeout: t.handshakeMs ?? 10_000,
      // node:https reads these two from the server options (fastify sets the request timeout).
      headersTimeout: Math.min(t.headersMs ?? 10_000, requestMs),
      connectionsCheckingInterval: t.checkEveryMs ?? 1000,
    },
  });

  app.setErrorHandler(async (err: FastifyError | EdgewardError, req: FastifyRequest, reply: FastifyReply) => {
    const e = toEdgewardError(err);
    if (e.code === 'ERR_INTERNAL') o.log.error({ err }, 'internal error');
    else o.log.debug({ code: e.code, url: req.url, detail: e.detail, reason: e.message }, 'refused');
    await o.onRefusal?.(e, err, req, reply);
    // A service that cannot answer now (its store or bus is down) says when to come back.
    if (e.statusCode === 503 && !reply.hasHeader('retry-after')) void reply.header('retry-after', '1');
    return reply.status(e.statusCode).send(toClientError(e));
  });
  app.setNotFoundHandler((_req, reply) => {
    void reply.status(404).send(toClientError(new EdgewardError('ERR_NOT_FOUND')));
  });
  return app;
}

/** Puts a renewed server certificate in use for new connections, still TLS 1.3 only. */
export function setServerTls(app: HttpsApp, tls: Pick<HttpsServerTls, 'key' | 'cert' | 'ca'>): void {
  app.server.setSecureContext({
    key: tls.key,
    cert: tls.cert,
    ...(tls.ca !== undefined ? { ca: tls.ca as string | string[] } : {}),
    minVersion: 'TLSv1.3',
  });
}

/** A long-lived response (a server-sent-event stream) is kept alive by its own heartbeat. */
export function holdOpen(req: FastifyRequest): void {
  req.raw.socket.setTimeout(0);
}

/** The URL a listening server is reached at (a wildcard address is reached on loopback). */
export function listeningUrl(
  app: HttpsApp,
  host: string,
  fallbackPort: number,
): { url: string; port: number } {
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : fallbackPort;
  const hostForUrl =
    host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return { url: `https://${hostForUrl}:${port}`, port };
}
