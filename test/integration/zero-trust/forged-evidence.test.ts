// Forged evidence and its neighbours, against a real mesh (CA, SIEM with its dashboard, an
// agent): enrolled identities that post evidence they may not give, revoked and quarantined
// reporters, devices that subscribe to the decision stream. Each refusal is asserted by its code,
// with no decision following, while the legitimate identities still connect and report.
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadIdentity, type LoadedIdentity } from '../../../common/identity-dir.js';
import { edgeward } from '../../helpers/cli.js';
import { rawRequest } from '../../helpers/https.js';
import { startMesh, type Mesh, type MeshAgent } from '../../helpers/mesh.js';
import { waitFor } from './shared.js';

const PASSWORD = 'correct horse battery staple';

let mesh: Mesh;
let n1: MeshAgent;
/** n1's own identity (the agent's folder), to report as the node itself. */
let n1Own: LoadedIdentity;
let d1: LoadedIdentity;
let attacker: LoadedIdentity;
let cookie: string;

const now = (): number => Date.now();
const id = (path: string): string => `spiffe://${mesh.trustDomain}/${path}`;
const codeOf = (r: { json: Record<string, unknown> | undefined }): unknown => r.json?.['code'];

/** Waits ms, then the SIEM's active decisions (time for a forged alert to have turned into one). */
async function decisionsAfter(ms: number): Promise<{ type: string; value: string }[]> {
  await new Promise((r) => setTimeout(r, ms));
  return (await mesh.decisions()).active.map((d) => d.scope);
}

/** A device's TLS connection through n1's sidecar: the echoed bytes, or the error. */
function echoThrough(agent: MeshAgent, who: LoadedIdentity): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({
      host: '127.0.0.1',
      port: agent.inboundPort,
      key: who.keyPem,
      cert: who.certPem,
      ca: who.bundlePem,
      minVersion: 'TLSv1.3',
      checkServerIdentity: () => undefined,
    });
    s.once('secureConnect', () => s.write('ping'));
    s.once('data', (d: Buffer) => {
      s.destroy();
      resolve(d.toString());
    });
    s.once('error', reject);
    s.once('close', () => reject(new Error('closed before the echo')));
  });
}

async function inventory(q: string): Promise<{ total: number; items: Record<string, unknown>[] }> {
  const r = await rawRequest(`${mesh.dashboard?.url}/api/inventory?q=${encodeURIComponent(q)}`, {
    headers: { cookie },
  });
  expect(r.status).toBe(200);
  return r.json as unknown as { total: number; items: Record<string, unknown>[] };
}

beforeAll(async () => {
  mesh = await startMesh({ agents: [{ name: 'n1' }], dashboard: true, siemArgs: ['--crl-interval', '1s'] });
  n1 = mesh.agents[0] as MeshAgent;
  n1Own = loadIdentity(n1.dir);
  d1 = await mesh.enroll('device/d1');
  attacker = await mesh.enroll('device/mallory');
  mesh.addUser('ana', 'analyst', PASSWORD);
  const login = await rawRequest(`${mesh.dashboard?.url}/api/login`, {
    method: 'POST',
    body: JSON.stringify({ name: 'ana', password: PASSWORD }),
  });
  expect(login.status).toBe(200);
  cookie = String(login.headers['set-cookie']).split(';')[0] as string;
  // The agent is subscribed and reporting before any attack.
  await waitFor('n1 in the agents ledger', async () => {
    const r = await mesh.call(`${mesh.siemUrl}/v1/agents`, mesh.admin);
    return (r.json?.['agents'] as { identity: string; connected: number }[]).some(
      (a) => a.identity === n1.identity && a.connected > 0,
    );
  });
}, 120_000);
afterAll(async () => mesh?.stop());

describe('forged evidence from enrolled identities (issue 19, attack 2)', () => {
  it("a device forges connection.accepted about another device's serial", async () => {
    const forged = ['192.0.2.10', '192.0.2.11'].map((ip, i) => ({
      '@timestamp': now() - 1000 + i,
      'event.action': 'connection.accepted',
      'network.direction': 'inbound',
      'source.ip': ip,
      'source.identity': d1.identity,
      'destination.identity': n1.identity,
      'tls.client.x509.serial_number': d1.serial,
    }));
    const r = await mesh.report(attacker, forged);
    expect(r.status).toBe(403);
    expect(codeOf(r)).toBe('ERR_SIEM_REPORTER_ACTION');
    expect(await decisionsAfter(1500)).not.toContainEqual({ type: 'serial', value: d1.serial });
    // The device whose serial was named still connects.
    expect(await echoThrough(n1, d1)).toBe('ping');
  });

  it('a node forges connection.accepted for a connection another node terminated', async () => {
    const rogue = await mesh.enroll('node/rogue');
    const forged = ['192.0.2.12', '192.0.2.13'].map((ip, i) => ({
      '@timestamp': now() - 1000 + i,
      'event.action': 'connection.accepted',
      'network.direction': 'inbound',
      'source.ip': ip,
      'destination.identity': n1.identity,
      'tls.client.x509.serial_number': d1.serial,
    }));
    const r = await mesh.report(rogue, forged);
    expect(r.status).toBe(403);
    expect(codeOf(r)).toBe('ERR_SIEM_REPORTER_SUBJECT');
    expect(await decisionsAfter(1500)).not.toContainEqual({ type: 'serial', value: d1.serial });
  });

  it('a device forges attestation.failure as the CA', async () => {
    const target = await mesh.enroll('node/target');
    const failures = (extra: Record<string, unknown>) =>
      [0, 1, 2].map((i) => ({
        '@timestamp': now() - 3000 + i,
        'event.action': 'attestation.failure',
        'attestation.method': 'tpm',
        'attestation.reason': 'pcr_mismatch',
        'source.identity': target.identity,
        ...extra,
      }));
    const claimed = await mesh.report(attacker, failures({ 'observer.type': 'ca' }));
    expect(claimed.status).toBe(403);
    expect(codeOf(claimed)).toBe('ERR_SIEM_OBSERVER_MISMATCH');
    const asCa = await mesh.report(attacker, failures({ 'observer.identity': id('svc/ca') }));
    expect(asCa.status).toBe(403);
    expect(codeOf(asCa)).toBe('ERR_SIEM_OBSERVER_MISMATCH');
    const plain = await mesh.report(attacker, failures({}));
    expect(plain.status).toBe(403);
    expect(codeOf(plain)).toBe('ERR_SIEM_REPORTER_ACTION');
    expect(await decisionsAfter(1500)).not.toContainEqual({ type: 'identity', value: target.identity });
    // Its renewal is not refused.
    const renewed = edgeward(['renew', '--ca', mesh.caUrl, '--dir', target.dir]);
    expect(renewed.status, renewed.stdout + renewed.stderr).toBe(0);
  });

  it('a device forges a revocation', async () => {
    const node = (await inventory(n1.identity)).items.find((x) => x['identity'] === n1.identity);
    expect(node?.['status']).toBe('healthy');
    const r = await mesh.report(attacker, [
      {
        '@timestamp': now(),
        'event.action': 'revocation',
        'source.identity': n1.identity,
        'tls.client.x509.serial_number': node?.['serial'] ?? 'ab',
      },
    ]);
    expect(r.status).toBe(403);
    expect(codeOf(r)).toBe('ERR_SIEM_REPORTER_ACTION');
    await new Promise((res) => setTimeout(res, 1000));
    const after = (await inventory(n1.identity)).items.find((x) => x['identity'] === n1.identity);
    expect(after?.['status']).toBe('healthy');
    // The node still reports (it is not revoked either).
    const ok = await mesh.report(n1Own, [
      { '@timestamp': now(), 'event.action': 'handshake.failure', 'source.ip': '198.51.100.7' },
    ]);
    expect(ok.status).toBe(200);
  });

  it('a device forges enroll.success (ghost node)', async () => {
    const r = await mesh.report(attacker, [
      {
        '@timestamp': now(),
        'event.action': 'enroll.success',
        'event.outcome': 'success',
        'attestation.method': 'tpm',
        'source.identity': id('node/ghost'),
        'tls.client.x509.serial_number': 'abcdef',
      },
    ]);
    expect(r.status).toBe(403);
    expect(codeOf(r)).toBe('ERR_SIEM_REPORTER_ACTION');
    await new Promise((res) => setTimeout(res, 1000));
    expect((await inventory('ghost')).total).toBe(0);
    // Real enrollments (reported by the CA) still appear.
    await mesh.enroll('device/real');
    await waitFor(
      'the real device in the inventory',
      async () => (await inventory('device/real')).total === 1,
    );
  });

  it('a node reporting connections from invented identities adds no inventory rows', async () => {
    const flood = await mesh.enroll('node/flood');
    const before = (await inventory('')).total;
    const events = Array.from({ length: 5000 }, (_, i) => ({
      '@timestamp': now() - 5000 + i,
      'event.action': 'connection.closed',
      'network.direction': 'inbound',
      'source.ip': '198.51.100.9',
      'source.identity': id(`device/invented-${i}`),
      'destination.identity': flood.identity,
    }));
    for (let i = 0; i < events.length; i += 1000) {
      const r = await mesh.report(flood, events.slice(i, i + 1000));
      expect(r.status).toBe(200);
      expect(r.json).toEqual({ accepted: 1000 });
    }
    await new Promise((res) => setTimeout(res, 1000));
    // The reporter itself is a row (its certificate proved it); its invented peers are not.
    expect((await inventory('')).total).toBeLessThanOrEqual(before + 1);
    expect((await inventory('invented-')).total).toBe(0);
  });
});

describe('who may follow the decision stream', () => {
  it('a device acks on the decision stream', async () => {
    const ack = await mesh.call(`${mesh.siemUrl}/v1/decisions/ack`, attacker, { body: { revision: 0 } });
    expect(ack.status).toBe(403);
    expect(codeOf(ack)).toBe('ERR_SIEM_SUBSCRIBER_FORBIDDEN');
    const poll = await mesh.call(`${mesh.siemUrl}/v1/decisions?from=0`, attacker);
    expect(codeOf(poll)).toBe('ERR_SIEM_SUBSCRIBER_FORBIDDEN');
    const agents = await mesh.call(`${mesh.siemUrl}/v1/agents`, mesh.admin);
    const listed = (agents.json?.['agents'] as { identity: string }[]).map((a) => a.identity);
    expect(listed).not.toContain(attacker.identity);
    expect(listed).toContain(n1.identity);
  });

  it('one device opens 500 decision streams', async () => {
    const codes = new Map<unknown, number>();
    for (let i = 0; i < 500; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, () => mesh.openStream(attacker)));
      for (const s of batch) {
        codes.set(codeOf(s) ?? s.status, (codes.get(codeOf(s) ?? s.status) ?? 0) + 1);
        s.close();
      }
    }
    expect(codes).toEqual(new Map([['ERR_SIEM_SUBSCRIBER_FORBIDDEN', 500]]));
  });

  it('one node opens 500 decision streams', async () => {
    const greedy = await mesh.enroll('node/greedy');
    const open: Awaited<ReturnType<Mesh['openStream']>>[] = [];
    try {
      for (let i = 0; i < 500; i += 50)
        open.push(...(await Promise.all(Array.from({ length: 50 }, () => mesh.openStream(greedy)))));
      const ok = open.filter((s) => s.status === 200);
      expect(ok).toHaveLength(8);
      const refused = open.filter((s) => s.status !== 200);
      expect(refused).toHaveLength(492);
      expect(refused.every((s) => s.status === 429 && codeOf(s) === 'ERR_SIEM_STREAM_IDENTITY_LIMIT')).toBe(
        true,
      );
      // The agent's own stream is unaffected.
      const agents = await mesh.call(`${mesh.siemUrl}/v1/agents`, mesh.admin);
      const mine = (agents.json?.['agents'] as { identity: string; connected: number }[]).find(
        (a) => a.identity === n1.identity,
      );
      expect(mine?.connected).toBeGreaterThan(0);
    } finally {
      for (const s of open) s.close();
    }
  });
});

describe('reporters that may not be heard', () => {
  it('a revoked certificate reports', async () => {
    const revoked = await mesh.enroll('node/revoked');
    const event = () => [
      { '@timestamp': now(), 'event.action': 'handshake.failure', 'source.ip': '198.51.100.1' },
    ];
    expect((await mesh.report(revoked, event())).status).toBe(200);
    // Revoked by the operator's command: the SIEM learns it from the CA's CRL.
    const r = edgeward([
      'ca',
      'revoke',
      '--data',
      mesh.caDir,
      '--serial',
      revoked.serial,
      '--reason',
      'keyCompromise',
    ]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const refused = await waitFor('the revoked reporter refused', async () => {
      const x = await mesh.report(revoked, event());
      return x.status === 403 ? x : undefined;
    });
    expect(codeOf(refused)).toBe('ERR_SIEM_REPORTER_REVOKED');
    // Revoked through the CA's API: its revocation event reaches the SIEM before the next CRL.
    const other = await mesh.enroll('node/revoked-too');
    expect((await mesh.report(other, event())).status).toBe(200);
    const api = await mesh.call(`${mesh.caUrl}/v1/revoke`, mesh.admin, {
      body: { serial: other.serial, reason: 'keyCompromise' },
    });
    expect(api.status).toBe(200);
    const refusedToo = await waitFor('the second revoked reporter refused', async () => {
      const x = await mesh.report(other, event());
      return x.status === 403 ? x : undefined;
    });
    expect(codeOf(refusedToo)).toBe('ERR_SIEM_REPORTER_REVOKED');
    // Others still report.
    expect((await mesh.report(n1Own, event())).status).toBe(200);
  });

  it('a quarantined certificate reports', async () => {
    const suspect = await mesh.enroll('node/suspect');
    const event = () => [
      { '@timestamp': now(), 'event.action': 'handshake.failure', 'source.ip': '198.51.100.2' },
    ];
    expect((await mesh.report(suspect, event())).status).toBe(200);
    const q = await mesh.call(`${mesh.siemUrl}/v1/decisions`, mesh.admin, {
      body: {
        scope: { type: 'serial', value: suspect.serial },
        action: 'quarantine',
        ttl: '1h',
        reason: 'test',
      },
    });
    expect(q.status).toBe(201);
    const r = await mesh.report(suspect, event());
    expect(r.status).toBe(403);
    expect(codeOf(r)).toBe('ERR_SIEM_REPORTER_QUARANTINED');
    expect((await mesh.report(n1Own, event())).status).toBe(200);
  });
});
