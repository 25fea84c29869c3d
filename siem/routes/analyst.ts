// The analyst API (the admin certificate, or what the analyst extension admits such as the
// dashboard's sessions), every call authorized and audited: manual decisions, approving,
// rejecting and lifting, alerts, entity timelines and the agents' view of the stream.
import { parseDuration } from '../../common/clock.js';
import {
  DECISION_ACTIONS,
  DECISION_SCOPE_SCHEMA,
  type DecisionAction,
  type DecisionScope,
} from '../../common/decisions.js';
import { EdgewardError } from '../../common/errors.js';
import type { HttpsPlugin } from '../../common/http-server.js';
import type { TimelineEntity } from '../store/index.js';
import { DIGITS, num, str, type SiemRouteContext } from './context.js';

const TIMELINE_KINDS: readonly TimelineEntity[] = [
  'identity',
  'source.identity',
  'destination.identity',
  'source.ip',
  'serial',
];

const SCHEMAS = {
  manual: {
    type: 'object',
    required: ['scope', 'action', 'ttl', 'reason'],
    additionalProperties: false,
    properties: {
      scope: DECISION_SCOPE_SCHEMA,
      action: { enum: DECISION_ACTIONS },
      ttl: str(16, '^[0-9]{1,9}(ms|s|m|h|d)$'),
      reason: { type: 'string', maxLength: 512 },
      revoke: { type: 'boolean' },
    },
  },
  idParam: {
    type: 'object',
    required: ['id'],
    properties: { id: str(64, '^[A-Za-z0-9._:-]+$') },
  },
  alertsQuery: {
    type: 'object',
    additionalProperties: false,
    properties: { since: str(15, DIGITS), rule: str(128, '^[A-Za-z0-9._-]+$'), limit: str(5, DIGITS) },
  },
  timelineParams: {
    type: 'object',
    required: ['kind', 'value'],
    properties: { kind: { enum: TIMELINE_KINDS }, value: str(2048) },
  },
  timelineQuery: {
    type: 'object',
    additionalProperties: false,
    properties: { since: str(15, DIGITS), until: str(15, DIGITS), limit: str(5, DIGITS) },
  },
} as const;

export function analystRoutes(c: SiemRouteContext): HttpsPlugin {
  const { hub, store, analyst, log } = c;
  return async (app) => {
    app.post<{
      Body: { scope: DecisionScope; action: DecisionAction; ttl: string; reason: string; revoke?: boolean };
    }>('/v1/decisions', { schema: { body: SCHEMAS.manual } }, async (req, reply) => {
      const b = req.body;
      const r = await analyst(
        req,
        'siem.decision.create',
        `quarantine ${b.scope.type} ${b.scope.value.slice(0, 200)} (${b.action}, ${b.ttl}): ${b.reason.slice(0, 200)}`,
        async () => {
          const ttlMs = parseDuration(b.ttl);
          if (!(ttlMs >= 1000 && ttlMs <= 365 * 86_400_000))
            throw new EdgewardError('ERR_INPUT_MALFORMED', 'ttl must be between 1s and 365d');
          const decision = await hub.change((e, t) =>
            e.createManual(
              {
                scope: { type: b.scope.type, value: b.scope.value },
                action: b.action,
                ttlMs,
                reason: b.reason,
              },
              t,
            ),
          );
          if (b.revoke !== true) return { decision };
          try {
            return { decision, revoked: await c.revokeAtCa(decision.scope, decision.reason) };
          } catch (err) {
            const code = err instanceof EdgewardError ? err.code : 'ERR_INTERNAL';
            log.error({ err, decision: decision.id }, 'revocation at the CA failed');
            return { decision, revokeError: code };
          }
        },
        (x) => ({ decisionId: x.decision.id, revision: x.decision.revision }),
      );
      return reply.status(201).send(r);
    });

    app.post<{ Params: { id: string } }>(
      '/v1/decisions/:id/approve',
      { schema: { params: SCHEMAS.idParam } },
      async (req) =>
        analyst(
          req,
          'siem.decision.approve',
          `approve pending ${req.params.id}`,
          async () => ({ decision: await hub.change((e, t) => e.approve(req.params.id, t)) }),
          (x) => ({ decisionId: x.decision.id, revision: x.decision.revision }),
        ),
    );
    app.post<{ Params: { id: string } }>(
      '/v1/decisions/:id/reject',
      { schema: { params: SCHEMAS.idParam } },
      async (req) =>
        analyst(req, 'siem.decision.reject', `reject pending ${req.params.id}`, async () => ({
          rejected: await hub.change((e) => e.reject(req.params.id)),
        })),
    );
    app.post<{ Params: { id: string } }>(
      '/v1/decisions/:id/lift',
      { schema: { params: SCHEMAS.idParam } },
      async (req) =>
        analyst(
          req,
          'siem.decision.lift',
          `lift ${req.params.id}`,
          async () => ({ lifted: await hub.change((e) => e.lift(req.params.id)), revision: hub.revision }),
          (x) => ({ decisionId: x.lifted.id, revision: x.revision }),
        ),
    );
    app.get<{ Querystring: { since?: string; rule?: string; limit?: string } }>(
      '/v1/alerts',
      { schema: { querystring: SCHEMAS.alertsQuery } },
      async (req) =>
        analyst(req, 'siem.read.alerts', 'listed alerts', async () => {
          const since = num(req.query.since);
          const limit = num(req.query.limit);
          return {
            alerts: await store.alerts({
              ...(since !== undefined ? { since } : {}),
              ...(limit !== undefined ? { limit } : {}),
              ...(req.query.rule !== undefined ? { ruleId: req.query.rule } : {}),
            }),
          };
        }),
    );
    app.get<{
      Params: { kind: TimelineEntity; value: string };
      Querystring: { since?: string; until?: string; limit?: string };
    }>(
      '/v1/entities/:kind/:value/timeline',
      { schema: { params: SCHEMAS.timelineParams, querystring: SCHEMAS.timelineQuery } },
      async (req) =>
        analyst(
          req,
          'siem.read.timeline',
          `timeline of ${req.params.kind} ${req.params.value.slice(0, 200)}`,
          async () => {
            const since = num(req.query.since);
            const until = num(req.query.until);
            const limit = num(req.query.limit);
            return {
              kind: req.params.kind,
              value: req.params.value,
              events: await store.timeline({
                entity: req.params.kind,
                value: req.params.value,
                ...(since !== undefined ? { since } : {}),
                ...(until !== undefined ? { until } : {}),
                ...(limit !== undefined ? { limit } : {}),
              }),
            };
          },
        ),
    );
    app.get('/v1/agents', async (req) =>
      analyst(req, 'siem.read.agents', 'listed agents', async () => {
        await hub.ledger.refresh();
        return { revision: hub.revision, agents: hub.ledger.list(c.now()) };
      }),
    );
  };
}
