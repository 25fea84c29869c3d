// Decisions reach an agent over NATS JetStream: this test's own nats-server (free port, temp dir)
// with TLS from the mesh CA (a `spiffe://TD/svc/nats` certificate from `ca token` + `enroll`),
// client certificates required and mapped by their SPIFFE URI SAN to users (`verify_and_map`), the
// agent read-only. The SIEM's signed deltas are put on the subject by NatsDecisionPublisher (fed
// from the real SIEM's SSE stream, with the SIEM's own certificate); a real agent process with the
// SSE stream turned off enforces them on a real TLS connection through its sidecar, and one with
// both sources skips the copy the other brought first. A forged delta on the subject is refused
// and counted, a gap on the stream is filled from the SIEM over HTTPS, an identity without a mesh
// certificate or without a mapping cannot connect, the agent's credentials cannot publish, and
// after a nats-server restart (and an agent restart) the agent resumes at its revision without a
// catch-up.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { decodeProtectedHeader } from 'jose';
import { AckPolicy, DeliverPolicy, type NatsConnection, type TlsOptions, connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peekDecision, SseParser } from '../../client/index.js';
import { signDecisionDelta } from '../../common/decision-jws.js';
import { loadIdentity, type LoadedIdentity } from '../../common/identity-dir.js';
import { silentLogger } from '../../common/log.js';
import { busLayout, NatsDecisionPublisher, type Bus } from '../../siem/bus/index.js';
import { edgeward, edgewardServe, stop } from '../helpers/cli.js';
import { startMesh, waitUntil, type Mesh, type MeshAgent, type MeshIdentity } from '../helpers/mesh.js';
import { freePortRange } from '../helpers/ports.js';
import { requireNatsServer, runNatsServer } from '../helpers/private-nats.js';
import { tempDir } from '../helpers/tmp.js';

const TD = 'factory.example';
const SUBJECT = 'edgeward.decisions';
const STREAM = 'EDGEWARD_DECISIONS';

let natsPort = 0;
let natsDir = '';
let nats: ChildProcess | undefined;
let mesh: Mesh;
let agent: MeshAgent;
/** An agent with both the SSE stream and NATS. */
let both: MeshAgent;
/** The relay leaves out the next N deltas (a gap on the stream). */
let dropNext = 0;
let natsId: MeshIdentity;
let cam: MeshIdentity;
let plc: MeshIdentity;
let siemId: LoadedIdentity;
let siemNc: NatsConnection;
let publisher: NatsDecisionPublisher;
let relay: { close(): void } | undefined;

/** The nats-server configuration of docs/quarantine-stream.md, "Subscribing on NATS". */
function natsConfig(): string {
  const q = (s: string): string => JSON.stringify(s);
  const id = (p: string): string => `spiffe://${TD}/${p}`;
  return `listen: 127.0.0.1:${natsPort}
jetstream { store_dir: ${q(join(natsDir, 'js'))} }
tls {
  cert_file: ${q(join(natsId.dir, 'cert.pem'))}
  key_file: ${q(join(natsId.dir, 'key.pem'))}
  ca_file: ${q(join(natsId.dir, 'bundle.pem'))}
  verify_and_map: true
  timeout: 5
}
AGENT = {
  publish: { allow: [
    "$JS.API.INFO"
    "$JS.API.STREAM.INFO.${STREAM}"
    "$JS.API.CONSUMER.CREATE.${STREAM}"
    "$JS.API.CONSUMER.CREATE.${STREAM}.>"
    "$JS.API.CONSUMER.MSG.NEXT.${STREAM}.>"
    "$JS.API.CONSUMER.INFO.${STREAM}.>"
    "$JS.API.CONSUMER.DELETE.${STREAM}.>"
  ] }
  subscribe: { allow: ["_INBOX.>"] }
}
authorization {
  users = [
    { user: ${q(id('svc/siem'))} }
    { user: ${q(id('node/gw'))}, permissions: $AGENT }
    { user: ${q(id('node/both'))}, permissions: $AGENT }
  ]
}
`;
}

async function startNats(): Promise<void> {
  const conf = join(natsDir, 'nats.conf');
  writeFileSync(conf, natsConfig(), { mode: 0o600 });
  nats = await runNatsServer(['-c', conf]);
}

async function stopNats(): Promise<void> {
  const p = nats;
  nats = undefined;
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((r) => {
    p.once('exit', () => r());
    p.kill('SIGKILL');
  });
}

/** A NATS connection over TLS as `who` (null: no client certificate), the server checked as svc/nats. */
function natsAs(
  who: Pick<LoadedIdentity, 'keyPem' | 'certPem'> | null,
  reconnect = false,
): Promise<NatsConnection> {
  // The server certificate names spiffe://TD/svc/nats and no host: the chain to the mesh root is checked, the name is not.
  const tls = {
    ca: mesh.rootPem,
    ...(who !== null ? { cert: who.certPem, key: who.keyPem } : {}),
    checkServerIdentity: () => undefined,
  } as TlsOptions;
  return connect({
    servers: [`tls://127.0.0.1:${natsPort}`],
    timeout: 5_000,
    reconnect,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    tls,
  });
}

/** Follows the SIEM's SSE stream as a node and hands every delta to the NATS publisher, as `siem serve` would. */
function startRelay(who: LoadedIdentity, onKid: (kid: string) => void): Promise<{ close(): void }> {
  return new Promise((resolve, reject) => {
    const req = request(`${mesh.siemUrl}/v1/decisions/stream`, {
      ca: mesh.rootPem,
      key: who.keyPem,
      cert: who.certPem,
      checkServerIdentity: () => undefined,
    });
    req.on('response', (res) => {
      if (res.statusCode !== 200) return reject(new Error(`relay stream: ${res.statusCode}`));
      res.setEncoding('utf8');
      const parser = new SseParser((e) => {
        if (e.event !== 'delta') return;
        const p = peekDecision(e.data);
        onKid(decodeProtectedHeader(e.data).kid as string);
        if (dropNext > 0) {
          dropNext--;
          return;
        }
        publisher.publish({
          kind: 'delta',
          from: p?.from as number,
          revision: p?.revision as number,
          jws: e.data,
        });
      });
      res.on('data', (c: string) => parser.push(c));
      resolve({ close: () => void req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

interface BusHealth {
  connected: boolean;
  sequence: number;
  messages: { applied: number; skipped: number; refused: number; gap: number };
}

async function health(
  a: MeshAgent = agent,
): Promise<{ revision: number; bus: BusHealth; source: string | null; sse: boolean | null }> {
  // One retry: a keep-alive socket the admin server has just closed fails the first fetch.
  const r = await a.admin('/healthz').catch(() => a.admin('/healthz'));
  const j = JSON.parse(r.text) as {
    decisionRevision: number;
    decisionBus: BusHealth;
    decisions: { source: string | null };
    decisionStream: boolean | null;
  };
  return {
    revision: j.decisionRevision,
    bus: j.decisionBus,
    source: j.decisions.source,
    sse: j.decisionStream,
  };
}

async function quarantine(who: MeshIdentity): Promise<{ id: string; revision: number }> {
  const r = await mesh.call(`${mesh.siemUrl}/v1/decisions`, mesh.admin, {
    body: {
      scope: { type: 'identity', value: who.identity },
      action: 'quarantine',
      ttl: '1h',
      reason: 'nats test',
    },
  });
  expect(r.status, r.body.toString()).toBe(201);
  return r.json?.['decision'] as { id: string; revision: number };
}

/** True once `who` cannot get an echo through the agent. */
async function refused(who: MeshIdentity, a: MeshAgent = agent): Promise<boolean> {
  return mesh.echo(a, who, 'x').then(
    () => false,
    () => true,
  );
}

/** Resolves when the socket closes (the agent cut it). */
const closed = (s: TLSSocket): Promise<void> =>
  new Promise((r) => (s.destroyed ? r() : s.once('close', () => r())));

beforeAll(async () => {
  requireNatsServer();
  natsPort = await freePortRange(1);
  natsDir = tempDir('edgeward-agent-nats-');
  mkdirSync(join(natsDir, 'js'), { mode: 0o700 });
  mesh = await startMesh({
    agents: [
      {
        name: 'gw',
        siemYaml: `nats: { urls: ["tls://127.0.0.1:${natsPort}"] }`,
        extraYaml: ['decisions: { stream: false }'],
      },
      { name: 'both', siemYaml: `nats: { urls: ["tls://127.0.0.1:${natsPort}"] }` },
    ],
  });
  agent = mesh.agents[0] as MeshAgent;
  both = mesh.agents[1] as MeshAgent;
  natsId = await mesh.enroll('svc/nats');
  cam = await mesh.enroll('device/cam');
  plc = await mesh.enroll('device/plc');
  siemId = loadIdentity(join(mesh.dir, 'siem', 'identity'));
  await startNats();
  siemNc = await natsAs(siemId, true);
  const bus = {
    nc: siemNc,
    js: siemNc.jetstream(),
    jsm: await siemNc.jetstreamManager(),
    layout: busLayout('edgeward', 1),
  };
  let kid = '';
  publisher = await NatsDecisionPublisher.create(bus as unknown as Bus, silentLogger, () => kid);
  relay = await startRelay(await mesh.enroll('node/relay'), (k) => (kid = k));
  // The agents started before the NATS server: restart them rather than wait out their backoff.
  await mesh.restartAgent(agent);
  await mesh.restartAgent(both);
}, 240_000);

afterAll(async () => {
  relay?.close();
  await siemNc?.close().catch(() => undefined);
  await stopNats();
});

describe('decisions over NATS (TLS with mesh certificates, verify_and_map)', () => {
  it('policy check shows the NATS source of an agent configuration', () => {
    const r = edgeward(['policy', 'check', agent.config]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      `decisions NATS tls://127.0.0.1:${natsPort} stream EDGEWARD_DECISIONS subject edgeward.decisions (server spiffe://${TD}/svc/nats)`,
    );
  });

  it('a quarantine published on NATS reaches the agent and cuts the device’s live connection', async () => {
    await waitUntil('the agent on NATS', async () => (await health()).bus.connected);
    const live = await mesh.connect(agent, cam);
    const cut = closed(live);
    const d = await quarantine(cam);
    await cut;
    // Enforced first, counted once on disk.
    await waitUntil('the delta applied from NATS', async () => (await health()).bus.messages.applied >= 1);
    const h = await health();
    expect(h.revision).toBe(d.revision);
    expect(h.source).toBe('nats');
    expect(h.bus.messages.applied).toBeGreaterThanOrEqual(1);
    expect(await refused(cam)).toBe(true);
    expect(await mesh.echo(agent, plc, 'still')).toBe('still');
    // With SSE and NATS both on, whichever came first applied the revision; the other copy was skipped,
    // and the SSE stream did not reconnect over it.
    await waitUntil('the agent with both at the revision', async () => {
      const b = await health(both);
      return b.revision === d.revision && b.bus.messages.applied + b.bus.messages.skipped >= 1;
    });
    const b = await health(both);
    expect(b.sse).toBe(true);
    expect(b.bus.messages.refused).toBe(0);
    expect(await refused(cam, both)).toBe(true);
    // The acknowledgement went to the SIEM over HTTPS: its ledger has the agent at this revision.
    await waitUntil('the SIEM ledger', async () => {
      const r = await mesh.call(`${mesh.siemUrl}/v1/agents`, mesh.admin);
      const a = (r.json?.['agents'] as { identity: string; acked: number | null }[]).find(
        (x) => x.identity === agent.identity,
      );
      return (a?.acked ?? -1) >= d.revision;
    });
  });

  it('a forged delta on the subject is refused and counted; a replayed one is skipped; enforcement unchanged', async () => {
    const before = await health();
    const decisions = await mesh.decisions();
    const camDecision = decisions.active.find((x) => x.scope.value === cam.identity);
    expect(camDecision).toBeDefined();
    const jsm = await siemNc.jetstreamManager();
    const first = await jsm.streams.getMessage(STREAM, { seq: 1 });
    const lastKid = (JSON.parse(first.string()) as { kid: string }).kid;
    // A lift of the cam's quarantine from the applied revision, signed by a key that is not the SIEM's.
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const forged = await signDecisionDelta(
      {
        trustDomain: TD,
        from: before.revision,
        revision: before.revision + 1,
        issuedAt: Date.now(),
        upserts: [],
        removals: [camDecision?.id as string],
      },
      privateKey,
      lastKid,
    );
    const js = siemNc.jetstream();
    await js.publish(
      SUBJECT,
      JSON.stringify({ from: before.revision, revision: before.revision + 1, kid: lastKid, jws: forged }),
      { msgID: 'forged.1' },
    );
    await waitUntil(
      'the forged delta refused',
      async () => (await health()).bus.messages.refused > before.bus.messages.refused,
    );
    // A copy of a genuine delta the agent already applied, published again under a new id.
    await js.publish(SUBJECT, first.data, { msgID: 'replayed.1' });
    await waitUntil(
      'the replay skipped',
      async () => (await health()).bus.messages.skipped > before.bus.messages.skipped,
    );
    const after = await health();
    expect(after.revision).toBe(before.revision);
    expect(await refused(cam)).toBe(true);
  });

  it('a gap on the stream (a delta never published) is filled from the SIEM over HTTPS, in order', async () => {
    const lamp = await mesh.enroll('device/lamp');
    const fan = await mesh.enroll('device/fan');
    const before = await health();
    dropNext = 1;
    const first = await quarantine(lamp);
    const second = await quarantine(fan);
    await waitUntil('the gap filled', async () => (await health()).revision >= second.revision);
    expect(second.revision).toBeGreaterThan(first.revision);
    await waitUntil(
      'the gap counted',
      async () => (await health()).bus.messages.gap > before.bus.messages.gap,
    );
    const after = await health();
    expect(after.bus.messages.gap).toBe(before.bus.messages.gap + 1);
    expect(after.bus.messages.refused).toBe(before.bus.messages.refused);
    expect(await refused(lamp)).toBe(true);
    expect(await refused(fan)).toBe(true);
  });

  it('without a mesh certificate, with another CA’s, or unmapped, NATS refuses the connection; the agent cannot publish', async () => {
    await expect(natsAs(null)).rejects.toThrow();
    const other = tempDir('edgeward-agent-nats-foreign-');
    const ossl = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(other, 'k.pem'),
        '-out',
        join(other, 'c.pem'),
        '-subj',
        '/CN=gw',
        '-days',
        '1',
        '-addext',
        `subjectAltName=URI:spiffe://${TD}/node/gw`,
      ],
      { encoding: 'utf8' },
    );
    expect(ossl.status, ossl.stderr).toBe(0);
    await expect(
      natsAs({
        certPem: readFileSync(join(other, 'c.pem'), 'utf8'),
        keyPem: readFileSync(join(other, 'k.pem'), 'utf8'),
      }),
    ).rejects.toThrow();
    // A mesh identity that is not mapped to a user (a device) is refused by authorization.
    await expect(natsAs(cam)).rejects.toThrow(/Authorization Violation/i);
    // The agent's own credentials read the stream but cannot publish on the subject.
    const gw = loadIdentity(agent.dir);
    const nc = await natsAs(gw);
    try {
      const count = (await (await siemNc.jetstreamManager()).streams.info(STREAM)).state.messages;
      await expect(nc.jetstream().publish(SUBJECT, '{}', { timeout: 2_000 })).rejects.toMatchObject({
        code: 'PERMISSIONS_VIOLATION',
      });
      expect((await (await siemNc.jetstreamManager()).streams.info(STREAM)).state.messages).toBe(count);
      // The limit docs/quarantine-stream.md states: the consumer API a reader needs also makes a push
      // consumer delivering to another subject (never to the stream's own: a cycle).
      const ajsm = await nc.jetstreamManager();
      const push = { ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.New };
      const info = await ajsm.consumers.add(STREAM, { ...push, deliver_subject: 'edgeward.batch' });
      expect(info.config.deliver_subject).toBe('edgeward.batch');
      await ajsm.consumers.delete(STREAM, info.name);
      await expect(ajsm.consumers.add(STREAM, { ...push, deliver_subject: SUBJECT })).rejects.toThrow(
        /cycle/,
      );
    } finally {
      await nc.close().catch(() => undefined);
    }
  });

  it('siem serve --bus tls:// presents the SIEM’s mesh certificate (mapped to its user) and publishes accepted events', async () => {
    const data = tempDir('edgeward-agent-nats-siem-');
    const { proc, match } = await edgewardServe(
      [
        'siem',
        'serve',
        '--data',
        data,
        '--listen',
        '127.0.0.1:0',
        '--ca',
        mesh.caUrl,
        '--fingerprint',
        mesh.fingerprint,
        '--token-file',
        mesh.tokenFile(`spiffe://${TD}/svc/siem`),
        '--bus',
        `tls://127.0.0.1:${natsPort}`,
        '--bus-prefix',
        'tlsingest',
        '--bus-shards',
        '1',
      ],
      /listening on (https:\/\/\S+)/,
    );
    try {
      const url = match[1] ?? '';
      const r = await mesh.call(`${url}/v1/events`, loadIdentity(agent.dir), {
        body: [
          {
            '@timestamp': Date.now(),
            'event.action': 'handshake.failure',
            'observer.type': 'agent',
            'source.ip': '192.0.2.7',
          },
        ],
      });
      expect(r.status, r.body.toString()).toBeLessThan(300);
      const jsm = await siemNc.jetstreamManager();
      expect((await jsm.streams.info('TLSINGEST_EVENTS')).state.messages).toBeGreaterThanOrEqual(1);
    } finally {
      await stop(proc);
    }
  }, 120_000);

  it('after a nats-server restart and an agent restart, the agent resumes at its revision (no catch-up)', async () => {
    await stopNats();
    await startNats();
    await waitUntil('the publisher reconnected', () =>
      siemNc.flush().then(
        () => true,
        () => false,
      ),
    );
    const before = await health();
    const live = await mesh.connect(agent, plc);
    const cut = closed(live);
    const d = await quarantine(plc);
    await cut;
    await waitUntil(
      'the delta after the restart applied',
      async () => (await health()).bus.messages.applied > before.bus.messages.applied,
    );
    const after = await health();
    expect(after.revision).toBe(d.revision);
    expect(after.bus.messages.gap).toBe(before.bus.messages.gap);
    expect(after.bus.messages.applied).toBe(before.bus.messages.applied + 1);

    // The stream position is written after the apply: wait for it before the kill -9.
    await waitUntil('the stream position on disk', async () => {
      const h = await health();
      try {
        const pos = JSON.parse(
          readFileSync(join(agent.dir, 'agent-state', 'decisions-nats.json'), 'utf8'),
        ) as {
          seq: number;
        };
        return pos.seq === h.bus.sequence;
      } catch {
        return false;
      }
    });
    await mesh.restartAgent(agent);
    await waitUntil('the restarted agent on NATS', async () => (await health()).bus.connected);
    const lift = await mesh.call(
      `${mesh.siemUrl}/v1/decisions/${(d as { id: string }).id}/lift`,
      mesh.admin,
      {
        body: {},
      },
    );
    expect(lift.status, lift.body.toString()).toBeLessThan(300);
    await waitUntil('the plc admitted again', async () => !(await refused(plc)));
    await waitUntil('the lift counted', async () => (await health()).bus.messages.applied >= 1);
    const resumed = await health();
    // From its saved stream position: the lift applied, nothing older read again, no gap.
    expect(resumed.bus.messages).toEqual({ applied: 1, skipped: 0, gap: 0, refused: 0 });
    expect(resumed.source).toBe('nats');
    expect(await refused(cam)).toBe(true);
  });
});
