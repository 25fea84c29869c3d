// POST /v1/events: event ingest from reporters (JSON array or NDJSON). Who is it, may it be
// heard and is there room are answered before the body is read; then the batch is decoded,
// stamped with the reporter's identity, filtered by the reporter policy and committed.
import { createHash } from 'node:crypto';
import type { EdgeEvent } from '../../common/events.js';
import { EdgewardError } from '../../common/errors.js';
import type { HttpsPlugin } from '../../common/http-server.js';
import { decodeBatch, stampBatch } from '../service/parse-batch.js';
import { reporterOf, type ReporterPeer } from '../service/peer.js';
import type { SiemRouteContext } from './context.js';

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
        // The same reporter sending the same body again (a retry, here or on another replica)
        // names the same batch: a path that dedupes stores it once.
        const key = createHash('sha256').update(peer.identity).update('\0').update(req.body).digest('hex');
        await ingest.submit(events, key.slice(0, 40));
        metrics.commitSeconds.observe((performance.now() - t0) / 1000);
        metrics.ingested.inc(undefined, events.length);
        metrics.batches.inc();
        return reply
          .status(200)
          .send(refused.length === 0 ? { accepted: events.length } : { accepted: events.length, refused });
      },
    );
  };
}
