// `edgeward siem decisions list|quarantine|lift`, `siem agents`, `siem alerts`: the analyst API
// (docs/analyst-api.md) from the command line, over mTLS with the admin identity
// (spiffe://TD/svc/admin, made by `ca init` in DATA/admin), the SIEM's own identity pinned.
import { createSecureContext } from 'node:tls';
import { optional, parseCommand, UsageError, usageLine } from '../common/args.js';
import { command } from '../common/commands.js';
import { DECISION_ACTIONS, DECISION_SCOPE_TYPES, type Decision } from '../common/decisions.js';
import { EdgewardError } from '../common/errors.js';
import { parseIdentity, serviceId } from '../common/identity.js';
import { loadIdentity } from '../common/identity-dir.js';
import { httpsCall } from '../client/index.js';

const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

interface Analyst {
  call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown>;
}

function analystClient(siem: string, identityDir: string): Analyst {
  let base: URL;
  try {
    base = new URL(siem);
  } catch {
    throw new UsageError(`--siem must be a URL such as https://127.0.0.1:8444, got ${siem.slice(0, 200)}`);
  }
  if (base.protocol !== 'https:') throw new UsageError('--siem must be an https:// URL');
  const id = loadIdentity(identityDir);
  const context = createSecureContext({ key: id.keyPem, cert: id.certPem, ca: id.bundlePem });
  const expect = serviceId(parseIdentity(id.identity).trustDomain, 'siem');
  return {
    async call(method, path, body) {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const r = await httpsCall({
        url: new URL(path, base).toString(),
        method,
        ...(payload ? { body: payload, headers: { 'content-type': 'application/json' } } : {}),
        context,
        expect,
        maxBytes: MAX_ANSWER_BYTES,
        timeout: 30_000,
        code: 'ERR_SIEM_UNREACHABLE',
      }).catch((err: unknown) => {
        // No answer at all (refused, reset, timed out): say where and why, not "refused".
        if (err instanceof EdgewardError && err.code === 'ERR_SIEM_UNREACHABLE') {
          const cause = err.cause as NodeJS.ErrnoException | undefined;
          throw new EdgewardError(
            'ERR_SIEM_UNREACHABLE',
            `cannot reach the SIEM at ${base.origin}: ${cause?.code ?? cause?.message ?? err.message}`,
            { cause: err },
          );
        }
        throw err;
      });
      let json: unknown;
      try {
        json = JSON.parse(r.body.toString('utf8'));
      } catch {
        json = undefined;
      }
      if (r.status >= 200 && r.status < 300) return json;
      const e = (json ?? {}) as { code?: unknown; message?: unknown };
      const code = typeof e.code === 'string' ? e.code.slice(0, 64) : `HTTP ${r.status}`;
      const message = typeof e.message === 'string' ? e.message.slice(0, 500) : '';
      throw new EdgewardError(
        'ERR_SIEM_ANALYST_REFUSED',
        `the SIEM refused: ${code}${message ? ` (${message})` : ''}`,
        {
          detail: { status: r.status, remoteCode: code },
        },
      );
    },
  };
}

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `identity=spiffe://TD/device/d1`, `ip=10.0.0.9`, `cidr=10.0.0.0/24`, ... */
function parseScope(text: string): { type: string; value: string } {
  const at = text.indexOf('=');
  const type = at > 0 ? text.slice(0, at) : '';
  const value = at > 0 ? text.slice(at + 1) : '';
  if (!(DECISION_SCOPE_TYPES as readonly string[]).includes(type) || value === '')
    throw new UsageError(`--scope is TYPE=VALUE with TYPE one of ${DECISION_SCOPE_TYPES.join(', ')}`);
  return { type, value };
}

/** A time for --since: an ISO date (2026-12-07T06:00:00Z), epoch milliseconds, or an age (15m, 2h). */
function parseSince(text: string, now: number): number {
  const age = /^(\d{1,6})(s|m|h|d)$/.exec(text);
  if (age) return now - Number(age[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as 's'];
  if (/^\d{1,15}$/.test(text)) return Number(text);
  const t = Date.parse(text);
  if (Number.isNaN(t))
    throw new UsageError('--since is an ISO time, epoch milliseconds, or an age such as 15m');
  return t;
}

interface DecisionsAnswer {
  revision: number;
  active: Decision[];
  pending: { id: string; scope: Decision['scope']; action: string; reason: string; createdAt: number }[];
  simulated: unknown[];
}

function printDecisions(d: DecisionsAnswer, out: (s: string) => void): void {
  out(`revision ${d.revision}: ${d.active.length} active, ${d.pending.length} pending approval`);
  if (d.active.length > 0) {
    const rows = [['ID', 'ACTION', 'SCOPE', 'UNTIL', 'REASON']];
    for (const x of d.active)
      rows.push([x.id, x.action, `${x.scope.type}=${x.scope.value}`, iso(x.expiresAt), x.reason]);
    out(table(rows));
  }
  if (d.pending.length > 0) {
    out('pending (approve or reject on the dashboard or POST /v1/decisions/ID/approve|reject):');
    const rows = [['ID', 'ACTION', 'SCOPE', 'SINCE', 'REASON']];
    for (const x of d.pending)
      rows.push([x.id, x.action, `${x.scope.type}=${x.scope.value}`, iso(x.createdAt), x.reason]);
    out(table(rows));
  }
}

export async function runAnalystCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const [what, verb] = argv;
  const path = what === 'decisions' ? `siem decisions ${verb ?? ''}` : `siem ${what ?? ''}`;
  const spec = command(path);
  const a = parseCommand(argv.slice(what === 'decisions' ? 2 : 1), spec);
  const api = analystClient(String(a['siem']), String(a['identity']));
  const json = a['json'] === true;
  switch (path) {
    case 'siem decisions list': {
      const d = (await api.call('GET', '/v1/decisions')) as DecisionsAnswer;
      if (json) out(JSON.stringify(d, null, 2));
      else printDecisions(d, out);
      return 0;
    }
    case 'siem decisions quarantine': {
      const action = optional(a['action']) ?? 'quarantine';
      if (!(DECISION_ACTIONS as readonly string[]).includes(action))
        throw new UsageError(`--action is ${DECISION_ACTIONS.join(' or ')}`);
      const body = {
        scope: parseScope(String(a['scope'])),
        action,
        ttl: String(a['ttl']),
        reason: String(a['reason']),
        ...(a['revoke'] === true ? { revoke: true } : {}),
      };
      const r = (await api.call('POST', '/v1/decisions', body)) as {
        decision: Decision;
        revoked?: string[];
        revokeError?: string;
      };
      if (json) out(JSON.stringify(r, null, 2));
      else {
        const d = r.decision;
        out(
          `decision ${d.id}: ${d.action} ${d.scope.type}=${d.scope.value} until ${iso(d.expiresAt)} (revision ${d.revision})`,
        );
        if (r.revoked) out(`revoked at the CA: ${r.revoked.join(', ') || 'nothing live'}`);
        if (r.revokeError) out(`revocation at the CA failed: ${r.revokeError}`);
      }
      return 0;
    }
    case 'siem decisions lift': {
      const id = a._[0] as string;
      if (a._.length !== 1) throw new UsageError(`name one decision ID\nusage: ${usageLine(spec)}`);
      const r = (await api.call('POST', `/v1/decisions/${encodeURIComponent(id)}/lift`)) as {
        lifted: Decision;
        revision: number;
      };
      if (json) out(JSON.stringify(r, null, 2));
      else
        out(`lifted ${r.lifted.id} (${r.lifted.scope.type}=${r.lifted.scope.value}); revision ${r.revision}`);
      return 0;
    }
    case 'siem agents': {
      const r = (await api.call('GET', '/v1/agents')) as {
        revision: number;
        agents: {
          identity: string;
          connected: number;
          acked: number | null;
          behind: number;
          lagMs: number;
          lastSeen: number;
        }[];
      };
      if (json) {
        out(JSON.stringify(r, null, 2));
        return 0;
      }
      out(`decision revision ${r.revision}; ${r.agents.length} subscriber(s)`);
      if (r.agents.length > 0) {
        const rows = [['IDENTITY', 'STREAMS', 'ACKED', 'BEHIND', 'LAST SEEN']];
        for (const x of r.agents)
          rows.push([
            x.identity,
            x.connected > 0 ? `${x.connected} connected` : 'disconnected',
            x.acked === null ? 'never' : String(x.acked),
            x.behind === 0 ? 'current' : `${x.behind} (${Math.round(x.lagMs / 1000)}s)`,
            iso(x.lastSeen),
          ]);
        out(table(rows));
      }
      return 0;
    }
    case 'siem alerts': {
      const q = new URLSearchParams();
      const since = optional(a['since']);
      if (since !== undefined) q.set('since', String(parseSince(since, Date.now())));
      const rule = optional(a['rule']);
      if (rule !== undefined) q.set('rule', rule);
      const limit = optional(a['limit']);
      if (limit !== undefined) {
        if (!/^\d{1,5}$/.test(limit)) throw new UsageError('--limit is a whole number');
        q.set('limit', limit);
      }
      const qs = q.toString();
      const r = (await api.call('GET', `/v1/alerts${qs ? `?${qs}` : ''}`)) as {
        alerts: {
          id: string;
          ruleId: string;
          title: string;
          level: string;
          time: number;
          groupBy: Record<string, string>;
        }[];
      };
      if (json) {
        out(JSON.stringify(r, null, 2));
        return 0;
      }
      out(`${r.alerts.length} alert(s)`);
      if (r.alerts.length > 0) {
        const rows = [['TIME', 'LEVEL', 'RULE', 'GROUP', 'TITLE']];
        for (const x of r.alerts)
          rows.push([
            iso(x.time),
            x.level,
            x.ruleId,
            Object.entries(x.groupBy)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ') || '-',
            x.title,
          ]);
        out(table(rows));
      }
      return 0;
    }
    default:
      throw new TypeError(`no analyst command ${path}`);
  }
}
