// POST /v1/events: event ingest from reporters (JSON array or NDJSON). Who is it, may it be
// heard, is its batch id well formed and is there room are answered before the body is read;
// then the batch is decoded, stamped with the reporter's identity, filtered by the reporter
// policy and committed, once per (reporter, batch id).
import { createHash } from 'node:crypto';
import type { EdgeEvent } from '../../common/events.js';
import { EdgewardError } from '../../common/errors.js';
import type { HttpsPlugin } from '../../common/http-server.js';
import { decodeBatch, stampBatch } from '../service/parse-batch.js';
import { reporterOf, type ReporterPeer } from '../service/peer.js';
import type { SiemRouteContext } from './context.js';

/** The reporter's name for a batch: 128 bits as 32 lowercase hex digits (docs/events.md). */
export const BATCH_ID_HEADER = 'edgeward-batch-id';
const BATCH_ID = /^[0-9a-f]{32}$/;

/** The batch id a request names, undefined when it names none; ERR_SIEM_BATCH_ID_MALFORMED otherwise. */
function batchIdOf(headers: Record<string, string | string[] | undefined>): string | undefined {
  const v = headers[BATCH_ID_HEADER];
  if (v === undefined) return undefined;
  // Given twice, Node joins the values with ", ": that is malformed too.
  if (typeof v !== 'string' || !BATCH_ID.test(v)) throw new EdgewardError('ERR_SIEM_BATCH_ID_MALFORMED');
  return v;
}

export function eventRoutes(c: SiemRouteContext): HttpsPlugin {
  const { gate, metrics, ingest, trustDomain, bodyLimit, maxBatchEvents } = c;

  /** Refuses a reporter whose certificate is revoked or under one of our own decisions. */
  const standing = (peer: ReporterPeer): void => {
    const why = gate.standing(peer);
    if (why !== null) {
      metrics.reporterRefusals.inc({ kind: peer.kind, reporter: peer.identity, code: why }, 1, peer.identity);
      throw new EdgewardError(why);
    }
  };
  const overBudget = (peer: ReporterPeer, n: number): EdgewardError => {
    metrics.reporterRefusals.inc(
      {
        kind: peer.kind,
        reporter: peer.identity,
        code: 'ERR_SIEM_REPORTER_RATE',
      },
      1,
      peer.identity,
    );
    return new EdgewardError('ERR_SIEM_REPORTER_RATE', undefined, {
      detail: { retryAfter: gate.retryAfter(peer.identity, n) },
    });
  };

  return async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      ['application/json', 'application/x-ndjson'],
      { parseAs: 'buffer', bodyLimit },
      (_req, body, done) => done(null, body),
    );
    scope.post(
      '/v1/events',
      {
        bodyLimit,
        onRequest: async (req) => {
          const peer = reporterOf(req, trustDomain);
          standing(peer);
          batchIdOf(req.headers);
          if (!gate.hasBudget(peer.identity)) throw overBudget(peer, 1);
          if (!ingest.hasRoom(1)) throw new EdgewardError('ERR_SIEM_OVERLOADED');
        },
      },
      async (req, reply) => {
        const peer = reporterOf(req, trustDomain);
        if (!Buffer.isBuffer(req.body)) throw new EdgewardError('ERR_SIEM_BATCH_MALFORMED', 'no body');
        const ndjson = String(req.headers['content-type'] ?? '').startsWith('application/x-ndjson');
        const raw = decodeBatch(req.body, ndjson ? 'ndjson' : 'json', maxBatchEvents);
        // Refused events cost the reporter too: the budget is what it sends, not what is kept.
        if (!gate.spend(peer.identity, raw.length)) throw overBudget(peer, raw.length);
        const now = c.now();
        const stamped: EdgeEvent[] = stampBatch(raw, {
          observer: peer.identity,
          observerType: peer.kind,
          now,
          newId: c.newId,
          maxEvents: maxBatchEvents,
        });
        const { accepted: events, refused } = gate.filter(peer, stamped);
        for (const r of refused)
          metrics.reporterRefusals.inc(
            { kind: peer.kind, reporter: peer.identity, code: r.code },
            1,
            peer.identity,
          );
        if (events.length === 0 && refused.length > 0) {
          const first = refused[0] as (typeof refused)[number];
          throw new EdgewardError(first.code, undefined, { detail: { refused: refused.slice(0, 100) } });
        }
        const t0 = performance.now();
        // The batch's name on the bus: from the reporter's batch id, else from its body (the same
        // reporter sending the same bytes again). Either way scoped to the verified identity.
        const id = batchIdOf(req.headers);
        const h = createHash('sha256').update(peer.identity).update('\0');
        const name = (id !== undefined ? h.update('batch-id\0').update(id) : h.update(req.body)).digest(
          'hex',
        );
        const outcome = await ingest.submit(
          events,
          name.slice(0, 40),
          id !== undefined ? { reporter: peer.identity, id, at: now } : undefined,
        );
        metrics.commitSeconds.observe((performance.now() - t0) / 1000);
        metrics.batches.inc();
        if (outcome.duplicate) metrics.duplicateBatches.inc();
        else metrics.ingested.inc(undefined, events.length);
        return reply.status(200).send({
          accepted: outcome.duplicate ? outcome.accepted : events.length,
          ...(refused.length > 0 ? { refused } : {}),
          ...(outcome.duplicate ? { duplicate: true } : {}),
        });
      },
    );
  };
}
