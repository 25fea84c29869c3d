// A reporter's own budgets and standing, against a real mesh (CA, SIEM, an agent) whose SIEM runs
// a small test reporter policy: one reporter over its event rate, one inventing correlation keys,
// the refusal counter on /metrics, and revoked or quarantined certificates on the decision
// stream. Each asserts the status and code (or the decision that follows, or not), and that the
// other reporters are still heard.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadIdentity, type LoadedIdentity } from '../../../common/identity-dir.js';
import { edgeward } from '../../helpers/cli.js';
import { startMesh, waitUntil, type Mesh, type MeshAgent } from '../../helpers/mesh.js';
import { reporterPolicyFile } from '../../helpers/reporter-policy.js';

/** The test policy's budgets: small enough to reach in a few requests. */
const RATE = 2000;
const BURST = 10_000;
const KEYS = 50;
/** Each test enrolls identities with real processes: generous on a loaded machine, never a goal. */
const SLOW = 180_000;

let mesh: Mesh;
let n1: MeshAgent;
let n1Own: LoadedIdentity;

const now = (): number => Date.now();
const codeOf = (r: { json: Record<string, unknown> | undefined }): unknown => r.json?.['code'];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** n events a node may report about itself (cheap: no rule counts them). */
const rotations = (n: number): Record<string, unknown>[] =>
  Array.from({ length: n }, (_, i) => ({ '@timestamp': now() - n + i, 'event.action': 'rotation' }));

/** n handshake failures from `ip`, as the node that refused them reports them. */
const failures = (ip: string, n: number): Record<string, unknown>[] =>
  Array.from({ length: n }, (_, i) => ({
    '@timestamp': now() - n + i,
    'event.action': 'handshake.failure',
    'event.reason': 'unknown_ca',
    'source.ip': ip,
  }));

const activeScopes = async (): Promise<{ type: string; value: string }[]> =>
  (await mesh.decisions()).active.map((d) => d.scope);

const ack = (who: LoadedIdentity) =>
  mesh.call(`${mesh.siemUrl}/v1/decisions/ack`, who, { body: { revision: 0 } });

async function scrapeSiem(): Promise<string> {
  const r = await mesh.call(`${mesh.siemUrl}/metrics`, undefined);
  expect(r.status).toBe(200);
  return r.body.toString();
}

/** The value of one series of the refusal counter (0 when absent), from a scrape. */
function refusals(text: string, labels: { kind: string; reporter: string; code: string }): number {
  const series = `edgeward_siem_reporter_refusals_total{code="${labels.code}",kind="${labels.kind}",reporter="${labels.reporter}"}`;
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

beforeAll(async () => {
  if (spawnSync('promtool', ['--version']).error)
    throw new Error('promtool is required for this test (apt-get install -y prometheus)');
  const policy = reporterPolicyFile({
    'events-per-second': RATE,
    'events-burst': BURST,
    'correlation-keys': KEYS,
  });
  mesh = await startMesh({
    agents: [{ name: 'n1' }],
    siemArgs: ['--reporter-policy', policy, '--crl-interval', '1s'],
  });
  n1 = mesh.agents[0] as MeshAgent;
  n1Own = loadIdentity(n1.dir);
  await waitUntil(
    'n1 following the decision stream',
    async () => {
      const r = await mesh.call(`${mesh.siemUrl}/v1/agents`, mesh.admin);
      return (r.json?.['agents'] as { identity: string; connected: number }[]).some(
        (a) => a.identity === n1.identity && a.connected > 0,
      );
    },
    SLOW,
  );
}, 240_000);
afterAll(async () => mesh?.stop());

describe('a reporter’s event rate (reporter-policy budgets)', () => {
  it(
    'a reporter over its event rate is refused with Retry-After while another reporter is accepted',
    async () => {
      const hog = await mesh.enroll('node/hog');
      const steady = await mesh.enroll('node/steady');
      const before = refusals(await scrapeSiem(), {
        kind: 'node',
        reporter: hog.identity,
        code: 'ERR_SIEM_REPORTER_RATE',
      });
      // Its whole burst, in two batches.
      for (let i = 0; i < BURST; i += 5000) {
        const r = await mesh.report(hog, rotations(5000));
        expect(r.status).toBe(200);
        expect(r.json).toEqual({ accepted: 5000 });
      }
      // A whole burst more: nothing refills that much (5 s at 2,000 a second) between two requests.
      const refused = await mesh.report(hog, rotations(BURST));
      expect(refused.status).toBe(429);
      expect(codeOf(refused)).toBe('ERR_SIEM_REPORTER_RATE');
      // Long enough for the batch at 2,000 a second from what was left, never longer.
      const retryAfter = Number(refused.headers['retry-after']);
      expect(Number.isInteger(retryAfter)).toBe(true);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(Math.ceil(BURST / RATE));
      // Another reporter at the same moment is heard, its budget untouched.
      const other = await mesh.report(steady, rotations(5000));
      expect(other.status).toBe(200);
      expect(other.json).toEqual({ accepted: 5000 });
      expect((await mesh.report(n1Own, rotations(10))).status).toBe(200);
      // After Retry-After, the same batch is accepted.
      await sleep(retryAfter * 1000);
      const again = await mesh.report(hog, rotations(BURST));
      expect(again.status).toBe(200);
      expect(again.json).toEqual({ accepted: BURST });
      const after = refusals(await scrapeSiem(), {
        kind: 'node',
        reporter: hog.identity,
        code: 'ERR_SIEM_REPORTER_RATE',
      });
      expect(after - before).toBe(1);
    },
    SLOW,
  );
});

describe('a reporter’s correlation keys (reporter-policy correlation-keys)', () => {
  it(
    'a reporter inventing correlation keys forgets its own, never another reporter’s',
    async () => {
      const witness = await mesh.enroll('node/witness');
      const flooder = await mesh.enroll('node/flooder');
      const watched = '198.51.100.77';
      const own = '198.51.100.88';
      // Half of a detection each (ew-handshake-failures-burst: 20 from one address in a minute).
      expect((await mesh.report(witness, failures(watched, 10))).status).toBe(200);
      expect((await mesh.report(flooder, failures(own, 10))).status).toBe(200);
      // The flood: one failure from each of four times its cap of addresses.
      const flood = Array.from({ length: KEYS * 4 }, (_, i) => ({
        ...failures(`203.0.113.${i % 250}`, 1)[0],
        'source.ip': i < 250 ? `203.0.113.${i}` : `2001:db8::${i.toString(16)}`,
      }));
      const r = await mesh.report(flooder, flood);
      expect(r.status).toBe(200);
      expect(r.json).toEqual({ accepted: KEYS * 4 });
      // The witness's half survived the flood: its second half completes the detection.
      expect((await mesh.report(witness, failures(watched, 10))).status).toBe(200);
      await waitUntil(
        `the decision on ${watched}`,
        async () => (await activeScopes()).some((s) => s.type === 'ip' && s.value === watched),
        15_000,
      );
      // The flooder's own first half was forgotten: its second half starts again from zero.
      expect((await mesh.report(flooder, failures(own, 10))).status).toBe(200);
      await sleep(1500);
      const scopes = await activeScopes();
      expect(scopes).not.toContainEqual({ type: 'ip', value: own });
      // Nor did one failure from each flooded address decide anything.
      expect(scopes.filter((s) => s.type === 'ip' && s.value.startsWith('203.0.113.'))).toEqual([]);
    },
    SLOW,
  );
});

describe('reporters that lost their standing', () => {
  it(
    'a revoked reporter cannot report, follow the decision stream or ack, and its open stream is closed',
    async () => {
      const gone = await mesh.enroll('node/gone');
      const stream = await mesh.openStream(gone);
      expect(stream.status).toBe(200);
      expect((await ack(gone)).status).toBe(200);
      expect((await mesh.report(gone, rotations(1))).status).toBe(200);
      // Revoked by the operator's command: the SIEM learns it from the CA's CRL only.
      const r = edgeward([
        'ca',
        'revoke',
        '--data',
        mesh.caDir,
        '--serial',
        gone.serial,
        '--reason',
        'keyCompromise',
      ]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      const carried = await stream.ended;
      expect(carried).toContain(': closed: ERR_SIEM_REPORTER_REVOKED');
      const report = await mesh.report(gone, rotations(1));
      expect(report.status).toBe(403);
      expect(codeOf(report)).toBe('ERR_SIEM_REPORTER_REVOKED');
      const reopened = await mesh.openStream(gone);
      expect(reopened.status).toBe(403);
      expect(codeOf(reopened)).toBe('ERR_SIEM_REPORTER_REVOKED');
      const acked = await ack(gone);
      expect(acked.status).toBe(403);
      expect(codeOf(acked)).toBe('ERR_SIEM_REPORTER_REVOKED');
      const poll = await mesh.call(`${mesh.siemUrl}/v1/decisions?from=0`, gone);
      expect(codeOf(poll)).toBe('ERR_SIEM_REPORTER_REVOKED');
      // The agent is still heard and still follows.
      expect((await mesh.report(n1Own, rotations(1))).status).toBe(200);
      expect((await ack(n1Own)).status).toBe(200);
    },
    SLOW,
  );

  it(
    'a quarantined reporter cannot report, follow the decision stream or ack until released',
    async () => {
      const suspect = await mesh.enroll('node/suspect');
      const stream = await mesh.openStream(suspect);
      expect(stream.status).toBe(200);
      const q = await mesh.call(`${mesh.siemUrl}/v1/decisions`, mesh.admin, {
        body: {
          scope: { type: 'serial', value: suspect.serial },
          action: 'quarantine',
          ttl: '1h',
          reason: 'test',
        },
      });
      expect(q.status).toBe(201);
      expect(await stream.ended).toContain(': closed: ERR_SIEM_REPORTER_QUARANTINED');
      for (const refused of [
        await mesh.report(suspect, rotations(1)),
        await mesh.openStream(suspect),
        await ack(suspect),
      ]) {
        expect(refused.status).toBe(403);
        expect(codeOf(refused)).toBe('ERR_SIEM_REPORTER_QUARANTINED');
      }
      // Lifted by an analyst: heard and following again.
      const id = (q.json?.['decision'] as { id: string } | undefined)?.id ?? String(q.json?.['id']);
      const lift = await mesh.call(`${mesh.siemUrl}/v1/decisions/${id}/lift`, mesh.admin, { body: {} });
      expect(lift.status).toBe(200);
      expect((await mesh.report(suspect, rotations(1))).status).toBe(200);
      const back = await mesh.openStream(suspect);
      expect(back.status).toBe(200);
      back.close();
      expect((await ack(n1Own)).status).toBe(200);
    },
    SLOW,
  );
});

describe('the refusal counter on /metrics', () => {
  it(
    'every refusal a reporter earns is counted once, under its kind, identity and code',
    async () => {
      const device = await mesh.enroll('device/counted');
      const node = await mesh.enroll('node/counted');
      // Three events a device may not report, one batch.
      const forged = Array.from({ length: 3 }, (_, i) => ({
        '@timestamp': now() + i,
        'event.action': 'connection.accepted',
        'source.ip': '192.0.2.30',
        'destination.identity': n1.identity,
      }));
      const a = await mesh.report(device, forged);
      expect(a.status).toBe(403);
      expect(codeOf(a)).toBe('ERR_SIEM_REPORTER_ACTION');
      // Two connections a node says another node terminated, beside one it may report.
      const b = await mesh.report(node, [
        { '@timestamp': now(), 'event.action': 'connection.closed', 'destination.identity': n1.identity },
        { '@timestamp': now(), 'event.action': 'connection.closed', 'destination.identity': n1.identity },
        { '@timestamp': now(), 'event.action': 'rotation' },
      ]);
      expect(b.status).toBe(200);
      expect(b.json).toEqual({
        accepted: 1,
        refused: [
          { index: 0, code: 'ERR_SIEM_REPORTER_SUBJECT' },
          { index: 1, code: 'ERR_SIEM_REPORTER_SUBJECT' },
        ],
      });
      const text = await scrapeSiem();
      const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(`${check.stdout}${check.stderr}`).toBe('');
      expect(check.status).toBe(0);
      expect(text).toContain('# TYPE edgeward_siem_reporter_refusals_total counter');
      // The CRL it enforces is the CA's, current: /metrics and /healthz say so.
      expect(text).toMatch(/^edgeward_siem_crl_stale 0$/m);
      expect(text).toMatch(/^edgeward_siem_crl_next_update_seconds \d+(\.\d+)?$/m);
      const health = await mesh.call(`${mesh.siemUrl}/healthz`, undefined);
      expect(health.json?.['status']).toBe('ok');
      expect(health.json?.['crl']).toMatchObject({ state: 'current', ok: true, error: null });
      const mine = text
        .split('\n')
        .filter((l) => l.startsWith('edgeward_siem_reporter_refusals_total{') && l.includes('/counted"'));
      expect(mine.sort()).toEqual(
        [
          `edgeward_siem_reporter_refusals_total{code="ERR_SIEM_REPORTER_ACTION",kind="device",reporter="${device.identity}"} 3`,
          `edgeward_siem_reporter_refusals_total{code="ERR_SIEM_REPORTER_SUBJECT",kind="node",reporter="${node.identity}"} 2`,
        ].sort(),
      );
      // The earlier tests' refusals, once each: the revoked and the quarantined reporters.
      const id = (path: string): string => `spiffe://${mesh.trustDomain}/${path}`;
      expect(
        refusals(text, { kind: 'node', reporter: id('node/gone'), code: 'ERR_SIEM_REPORTER_REVOKED' }),
      ).toBe(
        // its open stream closed, then its report, stream, ack and poll refused
        5,
      );
      expect(
        refusals(text, { kind: 'node', reporter: id('node/suspect'), code: 'ERR_SIEM_REPORTER_QUARANTINED' }),
      ).toBe(4);
    },
    SLOW,
  );
});
