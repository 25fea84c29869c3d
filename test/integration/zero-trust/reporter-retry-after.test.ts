// The agent's reporter (its Reporter, spool and HTTPS sender, over real mTLS) against a real `siem
// serve` whose reporter policy gives each reporter a small event budget: a batch refused with 429
// ERR_SIEM_REPORTER_RATE stays in the spool, is not sent again before the Retry-After the SIEM
// gave, and once the budget refills every event is stored exactly once (read back as an analyst).
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsBatchSender, Reporter, Spool, type BatchSender } from '../../../client/index.js';
import { EdgewardError } from '../../../common/errors.js';
import { silentLogger } from '../../../common/log.js';
import { startMesh, type Mesh, type MeshIdentity } from '../../helpers/mesh.js';
import { reporterPolicyFile } from '../../helpers/reporter-policy.js';
import { waitFor } from './shared.js';

/** The smallest burst a reporter policy allows, refilled slowly: a few seconds to refill a batch. */
const RATE = 1000;
const BURST = 10_000;
/** The events the reporter sends once its budget is spent: three seconds of refill. */
const EVENTS = 3000;
const SLOW = 180_000;

let mesh: Mesh;

beforeAll(async () => {
  const policy = reporterPolicyFile({ 'events-per-second': RATE, 'events-burst': BURST });
  mesh = await startMesh({ agents: [], siemArgs: ['--reporter-policy', policy] });
}, 240_000);
afterAll(async () => mesh?.stop());

interface Attempt {
  readonly at: number;
  readonly events: number;
  readonly status: number;
  readonly retryAfter: number | undefined;
}

/** The production sender, each call's time and answer written down as the reporter makes it. */
function recorded(send: BatchSender, attempts: Attempt[]): BatchSender {
  return async (batch) => {
    const at = Date.now();
    try {
      await send(batch);
      attempts.push({ at, events: batch.length, status: 200, retryAfter: undefined });
    } catch (err) {
      const d = err instanceof EdgewardError ? err.detail : undefined;
      const status = typeof d?.['status'] === 'number' ? d['status'] : 0;
      const retryAfter = typeof d?.['retryAfter'] === 'number' ? d['retryAfter'] : undefined;
      attempts.push({ at, events: batch.length, status, retryAfter });
      throw err;
    }
  };
}

async function timeline(who: MeshIdentity): Promise<Record<string, unknown>[]> {
  const r = await mesh.call(
    `${mesh.siemUrl}/v1/entities/source.identity/${encodeURIComponent(who.identity)}/timeline?limit=10000`,
    mesh.admin,
  );
  expect(r.status).toBe(200);
  return r.json?.['events'] as Record<string, unknown>[];
}

describe('an agent’s reporter over its event budget', () => {
  it(
    'keeps a batch refused with 429 in its spool, waits out Retry-After, then stores every event exactly once',
    async () => {
      const me = await mesh.enroll('node/throttled');
      // Its whole burst spent at once (events that name no subject: not on its timeline).
      const spend = Array.from({ length: BURST / 2 }, (_, i) => ({
        '@timestamp': Date.now() - i,
        'event.action': 'rotation',
      }));
      for (let i = 0; i < 2; i++) expect((await mesh.report(me, spend)).status).toBe(200);

      const attempts: Attempt[] = [];
      const spool = new Spool(join(me.dir, 'spool.sqlite'), { maxEvents: 100_000, maxBytes: 100_000_000 });
      const context = createSecureContext({ key: me.keyPem, cert: me.certPem, ca: me.bundlePem });
      const reporter = new Reporter({
        spool,
        send: recorded(
          httpsBatchSender({
            url: mesh.siemUrl,
            expect: `spiffe://${mesh.trustDomain}/svc/siem`,
            context: () => context,
          }),
          attempts,
        ),
        batchMax: EVENTS,
        flushInterval: 50,
        log: silentLogger,
      });
      const t0 = Date.now();
      for (let i = 0; i < EVENTS; i++)
        reporter.emit({
          '@timestamp': t0 + i,
          'event.action': 'rotation',
          'event.reason': `r${i}`,
          'source.identity': me.identity,
        });
      reporter.start();
      try {
        await waitFor('every event accepted', async () => reporter.sent >= EVENTS || undefined, 60_000);
      } finally {
        await reporter.stop();
      }

      // Refused first, with a Retry-After the SIEM computed from its budget.
      const first = attempts[0];
      expect(first?.status).toBe(429);
      expect(first?.retryAfter).toBeGreaterThanOrEqual(1);
      // No batch went again before the Retry-After of the 429 before it.
      for (let i = 1; i < attempts.length; i++) {
        const prev = attempts[i - 1] as Attempt;
        const cur = attempts[i] as Attempt;
        if (prev.status === 429)
          expect(cur.at - prev.at, JSON.stringify(attempts)).toBeGreaterThanOrEqual(
            (prev.retryAfter ?? 1) * 1000,
          );
      }
      expect(attempts.every((a) => a.status === 200 || a.status === 429)).toBe(true);
      expect(attempts.filter((a) => a.status === 200).reduce((n, a) => n + a.events, 0)).toBe(EVENTS);
      expect(spool.size).toBe(0);
      expect(reporter.refused).toBe(0);
      expect(reporter.throttled.get('ERR_SIEM_REPORTER_RATE')).toBe(
        attempts.filter((a) => a.status === 429).length,
      );
      spool.close();

      // What an analyst reads back: each event once (beside what the CA said of its enrollment).
      const stored = (await timeline(me))
        .filter((e) => e['event.action'] === 'rotation')
        .map((e) => String(e['event.reason']));
      expect(stored.length).toBe(EVENTS);
      expect(new Set(stored).size).toBe(EVENTS);
      expect([...stored].sort()).toEqual(Array.from({ length: EVENTS }, (_, i) => `r${i}`).sort());
    },
    SLOW,
  );
});
