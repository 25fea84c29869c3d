// The analysts' dashboard on its own HTTPS listener: static page (no CDN, no inline script),
// login with scrypt-hashed local users, HttpOnly/Secure/SameSite=Strict session cookies, a CSRF
// token on every change, a strict Content-Security-Policy, roles enforced on every API call.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyRequest } from 'fastify';
import {
  STORED_CHART_RANGES,
  type AlertTriage,
  type ChartRange,
  type DashboardApi,
  type InventoryQuery,
} from './api.js';
import type { SessionStore } from '../store/index.js';
import { DashboardSessions, SESSION_COOKIE, type Session } from './sessions.js';
import { roleAtLeast, type DashboardUsers, type Role } from './users.js';
import { EdgewardError } from '../../common/errors.js';
import { DECISION_ACTIONS, DECISION_SCOPE_SCHEMA } from '../../common/decisions.js';
import { createHttpsServer } from '../../common/http-server.js';
import { canonicalScope } from '../../common/decision-scope.js';
import { LEVELS, type Level } from '../../policies/rules/index.js';
import type { Logger } from '../../common/log.js';
import { RateLimiter } from '../../common/rate-limit.js';
import { LoginThrottle, type LoginThrottleOptions } from './login-throttle.js';

export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

// dist/siem/dashboard/server.js and siem/dashboard/server.ts both find the sources' static folder.
const STATIC_DIR = [
  join(import.meta.dirname, 'static'),
  join(import.meta.dirname, '..', '..', '..', 'siem', 'dashboard', 'static'),
];
const ASSETS: Record<string, string> = {
  '/': 'index.html',
  '/app.js': 'app.js',
  '/app.css': 'app.css',
  '/favicon.svg': 'favicon.svg',
};
const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};

function loadAsset(name: string): Buffer {
  for (const dir of STATIC_DIR) {
    try {
      return readFileSync(join(dir, name));
    } catch {
      // next candidate
    }
  }
  throw new Error(`dashboard asset ${name} not found`);
}

export interface DashboardOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: { readonly key: string; readonly cert: string };
  readonly api: DashboardApi;
  readonly users: DashboardUsers;
  /** Where sessions are kept (SiemStores.sessions: shared by every replica on the same stores). */
  readonly sessions: SessionStore;
  readonly log: Logger;
  readonly now?: () => number;
  /** Login attempts per minute per source address (whatever the user name). */
  readonly loginPerMinute?: number;
  /** Back-off after wrong passwords, per user name and source address. */
  readonly loginBackoff?: LoginThrottleOptions;
}

export interface RunningDashboard {
  readonly url: string;
  readonly sessions: DashboardSessions;
  close(): Promise<void>;
}

function cookie(req: FastifyRequest): string | undefined {
  const header = req.headers.cookie;
  if (!header || header.length > 4096) return undefined;
  for (const part of header.split(';')) {
    const [k, v] = part.trim().split('=');
    if (k === SESSION_COOKIE) return v;
  }
  return undefined;
}

const str = (max: number): Record<string, unknown> => ({ type: 'string', minLength: 1, maxLength: max });

interface AlertsQueryString {
  limit?: string;
  before?: string;
  since?: string;
  rule?: string;
  entity?: string;
  severity?: string;
  status?: string;
}
const TRIAGE = ['new', 'acknowledged', 'closed'];
const DIGITS = { type: 'string', pattern: '^[0-9]{1,15}$' };
const ALERTS_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'string', pattern: '^[0-9]{1,4}$' },
    before: DIGITS,
    since: DIGITS,
    rule: { type: 'string', maxLength: 128 },
    entity: { type: 'string', maxLength: 2048 },
    severity: { type: 'string', pattern: `^(${LEVELS.join('|')})(,(${LEVELS.join('|')})){0,4}$` },
    status: { type: 'string', pattern: `^(${TRIAGE.join('|')})(,(${TRIAGE.join('|')})){0,2}$` },
  },
};

export async function startDashboard(o: DashboardOptions): Promise<RunningDashboard> {
  const now = o.now ?? Date.now;
  const sessions = new DashboardSessions(o.sessions, now);
  const perMinute = o.loginPerMinute ?? 10;
  const loginByIp = new RateLimiter({ rate: perMinute / 60, burst: perMinute }, now);
  // Per user *and* source: guessing from one place never locks the user out from another.
  const backoff = new LoginThrottle(now, o.loginBackoff);
  const assets = new Map(
    Object.entries(ASSETS).map(([path, file]) => [
      path,
      { body: loadAsset(file), type: TYPES[file.split('.').pop() ?? ''] ?? 'application/octet-stream' },
    ]),
  );

  const app = createHttpsServer({
    log: o.log,
    bodyLimit: 16 * 1024,
    tls: { key: o.tls.key, cert: o.tls.cert },
  });

  app.addHook('onSend', async (_req, reply, payload) => {
    void reply.header('content-security-policy', CSP);
    void reply.header('x-content-type-options', 'nosniff');
    void reply.header('referrer-policy', 'no-referrer');
    void reply.header('x-frame-options', 'DENY');
    void reply.header('cross-origin-opener-policy', 'same-origin');
    void reply.header('strict-transport-security', 'max-age=31536000');
    if (!reply.hasHeader('cache-control')) void reply.header('cache-control', 'no-store');
    return payload;
  });

  /** A viewer's read, authorized and recorded in the read audit log (who looked at what). */
  async function reading(req: FastifyRequest, page: string, what: string): Promise<Session> {
    const s = await authorize(req, 'viewer', false);
    o.api.read({ user: s.user, ip: req.ip, page, what: what.slice(0, 300) });
    return s;
  }

  /** The session of a request with at least `role`; for changes, also the CSRF token and origin. */
  async function authorize(req: FastifyRequest, role: Role, change: boolean): Promise<Session> {
    const s = await sessions.get(cookie(req));
    if (!s) throw new EdgewardError('ERR_DASH_UNAUTHENTICATED');
    if (!roleAtLeast(s.role, role)) throw new EdgewardError('ERR_DASH_FORBIDDEN', `needs role ${role}`);
    if (change) {
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `https://${req.headers.host ?? ''}`)
        throw new EdgewardError('ERR_DASH_CSRF', 'cross-origin request');
      const token = req.headers['x-csrf-token'];
      if (!DashboardSessions.csrfMatches(s, typeof token === 'string' ? token : undefined))
        throw new EdgewardError('ERR_DASH_CSRF');
    }
    return s;
  }

  for (const [path, asset] of assets) {
    app.get(path, async (_req, reply) =>
      reply.type(asset.type).header('cache-control', 'no-cache').send(asset.body),
    );
  }

  app.post<{ Body: { name: string; password: string } }>(
    '/api/login',
    {
      schema: {
        body: {
          type: 'object',
          required: ['name', 'password'],
          additionalProperties: false,
          properties: { name: str(64), password: str(1024) },
        },
      },
    },
    async (req, reply) => {
      const name = req.body.name;
      const wait = loginByIp.take(req.ip) ? backoff.wait(name, req.ip) : loginByIp.retryAfter(req.ip);
      if (wait > 0) {
        void reply.header('retry-after', String(Math.max(wait, 1)));
        throw new EdgewardError('ERR_RATE_LIMITED', 'too many login attempts');
      }
      const user = await o.users.verify(name, req.body.password);
      if (!user) {
        backoff.failed(name, req.ip);
        o.log.warn({ user: name.slice(0, 64), ip: req.ip }, 'dashboard login failed');
        throw new EdgewardError('ERR_DASH_LOGIN');
      }
      backoff.succeeded(name, req.ip);
      const s = await sessions.create(user.name, user.role);
      o.log.info({ user: user.name, ip: req.ip }, 'dashboard login');
      void reply.header(
        'set-cookie',
        `${SESSION_COOKIE}=${s.id}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=43200`,
      );
      return { user: s.user, role: s.role, csrf: s.csrf };
    },
  );
  app.post('/api/logout', async (req, reply) => {
    const s = await authorize(req, 'viewer', true);
    await sessions.destroy(s.id);
    void reply.header(
      'set-cookie',
      `${SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0`,
    );
    return { ok: true };
  });
  app.get('/api/me', async (req) => {
    const s = await authorize(req, 'viewer', false);
    return { user: s.user, role: s.role, csrf: s.csrf };
  });

  app.get<{ Querystring: AlertsQueryString }>(
    '/api/alerts',
    { schema: { querystring: ALERTS_QUERY } },
    async (req) => {
      const q = req.query;
      await reading(req, 'alerts', `alerts ${new URLSearchParams(q as Record<string, string>).toString()}`);
      return {
        items: await o.api.alerts({
          limit: limitOf(q.limit, 100, 500),
          ...(q.before ? { before: Number(q.before) } : {}),
          ...(q.since ? { since: Number(q.since) } : {}),
          ...(q.rule ? { rule: q.rule } : {}),
          ...(q.entity ? { entity: q.entity } : {}),
          ...(q.severity ? { severity: q.severity.split(',') as Level[] } : {}),
          ...(q.status ? { status: q.status.split(',') as AlertTriage[] } : {}),
        }),
      };
    },
  );
  app.get<{ Querystring: { id: string; time: string } }>(
    '/api/alert',
    {
      schema: {
        querystring: {
          type: 'object',
          required: ['id', 'time'],
          additionalProperties: false,
          properties: { id: str(128), time: { type: 'string', pattern: '^[0-9]{1,15}$' } },
        },
      },
    },
    async (req) => {
      await reading(req, 'alert', `alert ${req.query.id}`);
      return o.api.alert(req.query.id, Number(req.query.time));
    },
  );
  app.post<{ Body: { id: string; time: number; status: 'acknowledged' | 'closed' } }>(
    '/api/alert/status',
    {
      schema: {
        body: {
          type: 'object',
          required: ['id', 'time', 'status'],
          additionalProperties: false,
          properties: {
            id: str(128),
            time: { type: 'integer', minimum: 0, maximum: 1e15 },
            status: { enum: ['acknowledged', 'closed'] },
          },
        },
      },
    },
    async (req) => {
      const s = await authorize(req, 'analyst', true);
      return o.api.setAlertStatus(s.user, req.body.id, req.body.time, req.body.status);
    },
  );
  app.get('/api/alerts/stream', async (req, reply) => {
    await authorize(req, 'viewer', false);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
    });
    res.write(': connected\n\n');
    // At 100 alerts/s a slow browser must not grow our memory: past 1 MiB buffered, drop it.
    const send = (event: string, data: unknown): void => {
      if (res.writableLength > 1024 * 1024) return void res.destroy();
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const unsubscribe = o.api.subscribeAlerts((a) => send('alert', a));
    // The decision revision and the agents' acknowledgements, as they change.
    const unsubscribeState = o.api.subscribeState((st) => send('state', st));
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    req.raw.on('close', () => {
      clearInterval(ping);
      unsubscribe();
      unsubscribeState();
    });
  });
  app.get<{ Querystring: { q?: string; status?: string; kind?: string; limit?: string; offset?: string } }>(
    '/api/inventory',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            q: { type: 'string', maxLength: 256 },
            status: { enum: ['healthy', 'quarantined', 'revoked', ''] },
            kind: { enum: ['node', 'device', 'svc', ''] },
            limit: { type: 'string', pattern: '^[0-9]{1,4}$' },
            offset: { type: 'string', pattern: '^[0-9]{1,7}$' },
          },
        },
      },
    },
    async (req) => {
      await reading(
        req,
        'inventory',
        `inventory ${new URLSearchParams(req.query as Record<string, string>).toString()}`,
      );
      const q: InventoryQuery = {
        limit: limitOf(req.query.limit, 50, 500),
        offset: Number(req.query.offset ?? 0),
        ...(req.query.q ? { q: req.query.q } : {}),
        ...(req.query.status ? { status: req.query.status as InventoryQuery['status'] & string } : {}),
        ...(req.query.kind ? { kind: req.query.kind as InventoryQuery['kind'] & string } : {}),
      };
      return o.api.inventory(q);
    },
  );
  app.get<{ Querystring: { id: string; limit?: string } }>(
    '/api/entity',
    {
      schema: {
        querystring: {
          type: 'object',
          required: ['id'],
          properties: { id: str(2048), limit: { type: 'string', pattern: '^[0-9]{1,4}$' } },
        },
      },
    },
    async (req) => {
      await reading(req, 'entity', `entity ${req.query.id}`);
      return o.api.entity(req.query.id, limitOf(req.query.limit, 200, 2000));
    },
  );
  app.post<{ Body: { scope: { type: string; value: string } } }>(
    '/api/decisions/preview',
    {
      schema: {
        body: {
          type: 'object',
          required: ['scope'],
          additionalProperties: false,
          properties: { scope: DECISION_SCOPE_SCHEMA },
        },
      },
    },
    async (req) => {
      // A read that only analysts need (it comes before their change), with their CSRF token.
      const s = await authorize(req, 'analyst', true);
      o.api.read({
        user: s.user,
        ip: req.ip,
        page: 'preview',
        what: `preview ${req.body.scope.type} ${req.body.scope.value.slice(0, 200)}`,
      });
      return o.api.preview(canonicalScope(req.body.scope));
    },
  );
  app.get('/api/fleet', async (req) => {
    await reading(req, 'fleet', 'fleet');
    return o.api.fleet();
  });
  app.get('/api/decisions', async (req) => {
    await reading(req, 'decisions', 'decisions');
    return o.api.decisions();
  });
  app.post<{
    Body: {
      scope: { type: string; value: string };
      action: 'quarantine' | 'isolate';
      ttlSeconds: number;
      reason: string;
    };
  }>(
    '/api/decisions',
    {
      schema: {
        body: {
          type: 'object',
          required: ['scope', 'action', 'ttlSeconds', 'reason'],
          additionalProperties: false,
          properties: {
            scope: DECISION_SCOPE_SCHEMA,
            action: { enum: DECISION_ACTIONS },
            ttlSeconds: { type: 'integer', minimum: 60, maximum: 30 * 86_400 },
            reason: str(500),
          },
        },
      },
    },
    async (req) => {
      const s = await authorize(req, 'analyst', true);
      const b = req.body;
      return o.api.quarantine(s.user, {
        scope: b.scope,
        action: b.action,
        ttlMs: b.ttlSeconds * 1000,
        reason: b.reason,
      });
    },
  );
  for (const verb of ['approve', 'lift'] as const) {
    app.post<{ Params: { id: string }; Body: { reason?: string } | undefined }>(
      `/api/decisions/:id/${verb}`,
      {
        schema: {
          params: {
            type: 'object',
            properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } },
          },
          body: { type: 'object', additionalProperties: false, properties: { reason: str(500) } },
        },
      },
      async (req) => {
        const s = await authorize(req, 'analyst', true);
        const reason = req.body?.reason;
        return verb === 'approve'
          ? o.api.approve(s.user, req.params.id)
          : o.api.lift(s.user, req.params.id, reason !== undefined ? { reason } : {});
      },
    );
  }
  app.get('/api/graph', async (req) => {
    await reading(req, 'graph', 'mesh graph');
    return o.api.graph();
  });
  app.get<{ Querystring: { range?: ChartRange } }>(
    '/api/charts',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { range: { enum: Object.keys(STORED_CHART_RANGES) } },
        },
      },
    },
    async (req) => {
      await reading(req, 'charts', `charts ${req.query.range ?? '10m'}`);
      return o.api.charts(req.query.range);
    },
  );

  await app.listen({ host: o.host, port: o.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  return {
    url: `https://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`,
    sessions,
    close: () => app.close(),
  };
}

function limitOf(text: string | undefined, dflt: number, max: number): number {
  const n = Number(text ?? dflt);
  return Number.isInteger(n) && n > 0 ? Math.min(n, max) : dflt;
}
