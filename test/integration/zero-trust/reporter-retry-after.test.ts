// An agent's reporter against a real `siem serve` whose reporter policy gives each reporter a
// small event budget (the smallest burst, refilled at one event a second): a batch refused with 429
// ERR_SIEM_REPORTER_RATE stays in the spool, is not sent again before the Retry-After the SIEM
// gave, and once the budget refills every event is stored exactly once (read back as an analyst).
// Once with the agent's reporter code (Reporter, Spool, the HTTPS sender) in this process, every
// attempt timed; once with a real agent process, its refusals counted by the SIEM.
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsBatchSender, Reporter, Spool, type BatchSender } from '../../../client/index.js';
import { EdgewardError } from '../../../common/errors.js';
import { loadIdentity, type LoadedIdentity } from '../../../common/identity-dir.js';
import { silentLogger } from '../../../common/log.js';
import { startMesh, type Mesh, type MeshAgent } from '../../helpers/mesh.js';
import { reporterPolicyFile } from '../../helpers/reporter-policy.js';
import { waitFor } from './shared.js';

const RATE = 1;
const BURST = 10_000;
/** The events the reporter sends once its budget is spent: a few seconds of refill. */
const EVENTS = 6;
const SLOW = 180_000;

let mesh: Mesh;
let n1: MeshAgent;

beforeAll(async () => {
  const policy = reporterPolicyFile({ 'events-per-second': RATE, 'events-burst': BURST });
  mesh = await startMesh({ agents: [{ name: 'n1' }], siemArgs: ['--reporter-policy', policy] });
  n1 = mesh.agents[0] as MeshAgent;
}, 240_000);
afterAll(async () => mesh?.stop());

/** Spends `who`'s whole event budget: batches halving in size until even one event is refused. */
async function drain(who: LoadedIdentity): Promise<void> {
  const rotations = (n: number): Record<string, unknown>[] =>
    Array.from({ length: n }, (_, i) => ({ '@timestamp': Date.now() - i, 'event.action': 'rotation' }));
  for (let n = BURST / 2; n >= 1; n = Math.floor(n / 2)) {
    for (;;) {
      const r = await mesh.report(who, rotations(n));
      if (r.status === 429) break;
      expect(r.status).toBe(200);
    }
  }
}

/** The SIEM's count of ERR_SIEM_REPORTER_RATE refusals of one reporter. */
async function rateRefusals(identity: string): Promise<number> {
  const r = await mesh.call(`${mesh.siemUrl}/metrics`, undefined);
  const series = `edgeward_siem_reporter_refusals_total{code="ERR_SIEM_REPORTER_RATE",kind="node",reporter="${identity}"} `;
  const line = r.body
    .toString()
    .split('\n')
    .find((l) => l.startsWith(series));
  return line === undefined ? 0 : Number(line.slice(series.length));
}

interface Attempt {
  readonly at: number;
  readonly events: number;
  readonly status: number;
  readonly retryAfter: number | undefined;
}

/** The production sender, each call's time and answer written down as the reporter makes it. */
function recorded(send: BatchSender, attempts: Attempt[]): BatchSender {
  return async (batch, id) => {
    const at = Date.now();
    try {
      await send(batch, id);
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

async function timeline(kind: string, value: string): Promise<Record<string, unknown>[]> {
  const r = await mesh.call(
    `${mesh.siemUrl}/v1/entities/${kind}/${encodeURIComponent(value)}/timeline?limit=10000`,
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
      await drain(me);

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
      const stored = (await timeline('source.identity', me.identity))
        .filter((e) => e['event.action'] === 'rotation')
        .map((e) => String(e['event.reason']));
      expect(stored.length).toBe(EVENTS);
      expect(new Set(stored).size).toBe(EVENTS);
      expect([...stored].sort()).toEqual(Array.from({ length: EVENTS }, (_, i) => `r${i}`).sort());
    },
    SLOW,
  );
});

describe('a real agent over its event budget', () => {
  it(
    'is refused with 429, sends nothing again before Retry-After, then every connection event is stored once',
    async () => {
      const own = loadIdentity(n1.dir);
      const device = await mesh.enroll('device/throttled-peer');
      const from = '127.0.0.57';
      await drain(own);
      const refusedBefore = await rateRefusals(n1.identity);
      const logFrom = n1.process.stderr().length;
      // Three connections through the agent: an accepted and a closed event each.
      for (let i = 0; i < 3; i++) {
        const s = await mesh.connect(n1, device, from);
        await new Promise<void>((r) => {
          s.once('close', () => r());
          s.end();
        });
      }
      const events = await waitFor(
        'the six connection events stored',
        async () => {
          const got = (await timeline('source.ip', from)).filter((e) =>
            ['connection.accepted', 'connection.closed'].includes(String(e['event.action'])),
          );
          return got.length >= 6 ? got : undefined;
        },
        60_000,
      );
      // Stored once each: six events, six ids, three of each action.
      expect(events.length).toBe(6);
      expect(new Set(events.map((e) => e['event.id'])).size).toBe(6);
      expect(events.filter((e) => e['event.action'] === 'connection.accepted').length).toBe(3);

      // The agent was refused at least once, and each refusal the SIEM counted is one the agent
      // waited out: its log line says how long it was asked to wait, and the next came after it.
      const waits = n1.process
        .stderr()
        .slice(logFrom)
        .split('\n')
        .filter((l) => l.includes('the SIEM asked the reporter to wait'))
        .map((l) => JSON.parse(l) as { time: number; retryAfter: number; code: string });
      const refused = (await rateRefusals(n1.identity)) - refusedBefore;
      expect(refused).toBeGreaterThanOrEqual(1);
      expect(waits.length).toBe(refused);
      expect(waits.every((w) => w.code === 'ERR_SIEM_REPORTER_RATE' && w.retryAfter >= 1)).toBe(true);
      for (let i = 1; i < waits.length; i++) {
        const prev = waits[i - 1] as (typeof waits)[number];
        expect((waits[i] as (typeof waits)[number]).time - prev.time).toBeGreaterThanOrEqual(
          prev.retryAfter * 1000,
        );
      }
      // The agent's own counter says the same.
      const metrics = await n1.admin('/metrics');
      expect(metrics.text).toMatch(
        /^edgeward_agent_siem_throttled_total\{code="ERR_SIEM_REPORTER_RATE"\} [1-9]\d*$/m,
      );
    },
    SLOW,
  );
});
