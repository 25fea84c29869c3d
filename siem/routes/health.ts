// GET /healthz and GET /metrics (Prometheus), both unauthenticated.
import { PROMETHEUS_CONTENT_TYPE } from '../../common/metrics.js';
import type { HttpsPlugin } from '../../common/http-server.js';
import type { SiemRouteContext } from './context.js';

export function healthRoutes(c: SiemRouteContext): HttpsPlugin {
  return async (app) => {
    app.get('/healthz', async () => {
      const crl = c.crlWatch()?.status();
      const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());
      return {
        // A CRL past its nextUpdate: the serials it lists are still refused, newer ones unknown.
        status: crl?.state === 'stale' ? 'degraded' : 'ok',
        trustDomain: c.trustDomain,
        revision: c.hub.revision,
        revokedSerials: c.revoked.size,
        ...(crl
          ? {
              crl: {
                ...crl,
                ok: crl.error === null,
                thisUpdate: iso(crl.thisUpdate),
                nextUpdate: iso(crl.nextUpdate),
              },
            }
          : {}),
      };
    });
    app.get('/metrics', async (_req, reply) => {
      const { metrics, hub } = c;
      const t = c.now();
      const lag = hub.ledger.maxLag(t);
      metrics.revision.set(undefined, hub.revision);
      metrics.active.set(undefined, c.engine.active().length);
      metrics.subscribers.set(undefined, c.streams.subscribers);
      metrics.agents.set(undefined, hub.ledger.list(t).filter((a) => a.connected > 0).length);
      metrics.lagRevisions.set(undefined, lag.behind);
      metrics.lagSeconds.set(undefined, lag.lagMs / 1000);
      metrics.queued.set(undefined, c.ingest.queued);
      return reply.type(PROMETHEUS_CONTENT_TYPE).send(metrics.registry.render());
    });
  };
}
