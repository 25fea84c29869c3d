// The signed decision stream and its polling fallback, for every subscriber the reporter policy
// admits: GET /v1/decisions/key (public), GET /v1/decisions/stream (server-sent events),
// GET /v1/decisions?from=REV, POST /v1/decisions/ack. Without `from`, GET /v1/decisions is the
// analysts' view of the decisions.
import type { FastifyRequest } from 'fastify';
import { EdgewardError } from '../../common/errors.js';
import { holdOpen, type HttpsPlugin } from '../../common/http-server.js';
import { reporterOf, type ReporterPeer } from '../service/peer.js';
import { resumeRevision, sseComment, type Subscriber } from '../service/sse.js';
import { str, DIGITS, type SiemRouteContext } from './context.js';

/** A subscriber further behind than this many buffered bytes is dropped (it resyncs). */
const STREAM_BUFFER_LIMIT = 4 * 1024 * 1024;

const SCHEMAS = {
  ack: {
    type: 'object',
    required: ['revision'],
    additionalProperties: false,
    properties: { revision: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } },
  },
  fromQuery: {
    type: 'object',
    additionalProperties: false,
    properties: { from: str(15, DIGITS) },
  },
} as const;

export function decisionRoutes(c: SiemRouteContext): HttpsPlugin {
  const { hub, streams, gate, trustDomain, log, budgets, metrics } = c;

  /**
   * Who may follow, poll and acknowledge the decision stream: the policy's subscribers whose
   * certificate is neither revoked nor under one of the SIEM's decisions.
   */
  const subscriber = (req: FastifyRequest): ReporterPeer => {
    const peer = reporterOf(req, trustDomain);
    const why = gate.standing(peer);
    if (why !== null) {
      metrics.reporterRefusals.inc({ kind: peer.kind, reporter: peer.identity, code: why });
      throw new EdgewardError(why);
    }
    if (!gate.policy.maySubscribe(peer.kind)) throw new EdgewardError('ERR_SIEM_SUBSCRIBER_FORBIDDEN');
    return peer;
  };
  /** Open decision streams per identity (bounded by the reporter policy's budget). */
  const streamsOf = new Map<string, number>();
  /** Every open stream and the certificate that opened it. */
  const following = new Map<Subscriber, ReporterPeer>();
  /**
   * Closes the open streams whose certificate lost its standing (revoked, or quarantined by a
   * decision), after a comment naming the code: their reconnection is refused with it.
   */
  const sweep = (): void => {
    for (const [sub, peer] of following) {
      const why = gate.standing(peer);
      if (why === null) continue;
      following.delete(sub);
      metrics.reporterRefusals.inc({ kind: peer.kind, reporter: peer.identity, code: why });
      log.warn({ identity: peer.identity, serial: peer.serial, code: why }, 'decision stream closed');
      sub.send(sseComment(`closed: ${why}`));
      sub.close();
    }
  };
  hub.addPublisher({ publish: sweep, resync: () => undefined, close: () => undefined });
  const offRevoked = c.subscribeRevoked(sweep);

  return async (app) => {
    app.addHook('onClose', async () => offRevoked());
    // Public: the certificate chain whose key signs decisions (verifiers check it against the bundle).
    app.get('/v1/decisions/key', async (_req, reply) =>
      reply.header('x-edgeward-kid', hub.kid).type('application/x-pem-file').send(c.identity().certPem),
    );

    app.get<{ Querystring: { from?: string } }>(
      '/v1/decisions/stream',
      { schema: { querystring: SCHEMAS.fromQuery } },
      async (req, reply) => {
        const peer = subscriber(req);
        const lastId = req.headers['last-event-id'];
        const from = resumeRevision(req.query.from, typeof lastId === 'string' ? lastId : undefined);
        if (from !== null && Number.isNaN(from))
          throw new EdgewardError('ERR_INPUT_MALFORMED', 'Last-Event-ID must be a revision');
        if (streams.subscribers >= c.maxSubscribers) throw new EdgewardError('ERR_SIEM_STREAM_LIMIT');
        const open = streamsOf.get(peer.identity) ?? 0;
        if (open >= budgets.decisionStreams)
          throw new EdgewardError('ERR_SIEM_STREAM_IDENTITY_LIMIT', undefined, {
            detail: { open, max: budgets.decisionStreams },
          });
        streamsOf.set(peer.identity, open + 1);
        let counted = true;
        const release = (): void => {
          if (!counted) return;
          counted = false;
          const n = (streamsOf.get(peer.identity) ?? 1) - 1;
          if (n <= 0) streamsOf.delete(peer.identity);
          else streamsOf.set(peer.identity, n);
        };
        reply.hijack();
        holdOpen(req);
        const res = reply.raw;
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          'x-accel-buffering': 'no',
        });
        res.write(': edgeward decision stream\nretry: 1000\n\n');
        const sub: Subscriber = {
          identity: peer.identity,
          sent: -1,
          send(frame) {
            if (res.destroyed || res.writableEnded || res.writableLength > STREAM_BUFFER_LIMIT) return false;
            res.write(frame);
            return true;
          },
          close() {
            if (!res.writableEnded) res.end();
          },
        };
        following.set(sub, peer);
        res.on('close', () => {
          following.delete(sub);
          release();
          streams.unsubscribe(sub);
        });
        streams.subscribe(sub, from).catch((err: unknown) => {
          log.warn({ err, identity: peer.identity }, 'decision stream could not start');
          sub.close();
        });
      },
    );

    /** Polling fallback for agents, and the analysts' view when no `from` is given. */
    app.get<{ Querystring: { from?: string } }>(
      '/v1/decisions',
      { schema: { querystring: SCHEMAS.fromQuery } },
      async (req) => {
        if (req.query.from !== undefined) {
          subscriber(req);
          const s = await hub.signedSince(Number(req.query.from));
          return { kind: s.kind, revision: s.revision, ...(s.jws !== undefined ? { jws: s.jws } : {}) };
        }
        return c.analyst(req, 'siem.read.decisions', 'listed decisions', () => ({
          revision: hub.revision,
          active: c.engine.active(),
          pending: c.engine.pending(),
          simulated: c.engine.simulated(),
        }));
      },
    );

    app.post<{ Body: { revision: number } }>(
      '/v1/decisions/ack',
      { schema: { body: SCHEMAS.ack } },
      async (req) => {
        const peer = subscriber(req);
        const current = hub.revision;
        if (req.body.revision > current)
          throw new EdgewardError('ERR_SIEM_ACK_REVISION', undefined, {
            detail: { revision: req.body.revision, current },
          });
        await hub.ledger.ack(peer.identity, req.body.revision, c.now());
        return { revision: req.body.revision, current };
      },
    );
  };
}
