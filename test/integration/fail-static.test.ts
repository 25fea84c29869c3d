// The attack: an agent restarted while the SIEM and the CA are unreachable enforces nothing (when
// stored decisions verify only with a key fetched from the SIEM, and the CRL is not persisted). Real processes: CA, SIEM and an agent from dist/, then kill -9 of CA and SIEM.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as netConnect } from 'node:net';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedIdentity } from '../../common/identity-dir.js';
import { edgeward } from '../helpers/cli.js';
import { startMesh, waitUntil, type Mesh, type MeshAgent } from '../helpers/mesh.js';

let mesh: Mesh;
let agent: MeshAgent;
let legit: LoadedIdentity;
let quarantined: LoadedIdentity;
let revoked: LoadedIdentity;
/** Quarantined by identity: the CA's follower must refuse its renewal. */
let held: LoadedIdentity;
const QUARANTINED_IP = '127.0.0.3';

beforeAll(async () => {
  mesh = await startMesh({ agents: [{ name: 'n1' }] });
  agent = mesh.agents[0] as MeshAgent;
  [legit, quarantined, revoked, held] = await Promise.all([
    mesh.enroll('device/legit'),
    mesh.enroll('device/quarantined'),
    mesh.enroll('node/revoked'),
    mesh.enroll('device/held'),
  ]);
});
afterAll(async () => mesh?.stop());

/** Connects through the agent's sidecar: 'echo' when the app answered, 'refused' when cut first. */
function through(who: LoadedIdentity, from = '127.0.0.1'): Promise<'echo' | 'refused'> {
  return new Promise((resolve) => {
    const s = connect({
      socket: netConnect({ host: '127.0.0.1', port: agent.inboundPort, localAddress: from }),
      key: who.keyPem,
      cert: who.certPem,
      ca: who.bundlePem,
      minVersion: 'TLSv1.3',
      checkServerIdentity: () => undefined,
    });
    const timer = setTimeout(() => s.destroy(), 10_000);
    s.once('secureConnect', () => s.write('ping'));
    s.once('data', () => {
      clearTimeout(timer);
      s.destroy();
      resolve('echo');
    });
    s.once('close', () => {
      clearTimeout(timer);
      resolve('refused');
    });
    s.on('error', () => undefined);
  });
}

/** The agent's denials of one reason so far (from /metrics). */
async function denials(code: string): Promise<number> {
  const text = (await agent.admin('/metrics')).text;
  let n = 0;
  for (const m of text.matchAll(/^edgeward_agent_denials_total\{([^}]*)\} (\d+)$/gm))
    if ((m[1] ?? '').includes(`reason="${code}"`)) n += Number(m[2]);
  return n;
}

/** Connects and checks both that it was refused and that the agent counted it under `code`. */
async function refusedWith(who: LoadedIdentity, code: string, from?: string): Promise<void> {
  const before = await denials(code);
  expect(await through(who, from)).toBe('refused');
  expect(await denials(code), (await agent.admin('/metrics')).text).toBe(before + 1);
}

async function health(): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await agent.admin('/healthz');
  return { status: r.status, json: JSON.parse(r.text) as Record<string, unknown> };
}

describe('cold start cut off from SIEM and CA enforces nothing', () => {
  let revision = 0;

  it('enforces a serial quarantine, a revoked node and an address quarantine while connected', async () => {
    for (const scope of [
      { type: 'serial', value: quarantined.serial },
      { type: 'ip', value: QUARANTINED_IP },
      { type: 'identity', value: held.identity },
    ]) {
      const r = await mesh.call(`${mesh.siemUrl}/v1/decisions`, mesh.admin, {
        body: { scope, action: 'quarantine', ttl: '1h', reason: 'fail-static test' },
      });
      expect(r.status, r.body.toString()).toBe(201);
    }
    const rv = await mesh.call(`${mesh.caUrl}/v1/revoke`, mesh.admin, {
      body: { serial: revoked.serial, reason: 'keyCompromise' },
    });
    expect(rv.status, rv.body.toString()).toBe(200);
    revision = (await mesh.decisions()).revision;
    await waitUntil('the agent holds the decisions and the CRL', async () => {
      const h = (await health()).json;
      const crl = (await agent.admin('/metrics')).text;
      return h['decisionRevision'] === revision && /^edgeward_agent_crl_revoked [1-9]/m.test(crl);
    });
    await refusedWith(quarantined, 'ERR_AGENT_QUARANTINED');
    await refusedWith(revoked, 'ERR_AGENT_REVOKED');
    await refusedWith(legit, 'ERR_AGENT_QUARANTINED', QUARANTINED_IP);
    expect(await through(legit)).toBe('echo');
  });

  it('after kill -9 of CA and SIEM and an agent restart, refuses all three and admits the legitimate device', async () => {
    await Promise.all([mesh.ca.kill(), mesh.siem.kill()]);
    await mesh.restartAgent(agent);
    // Enforced before the first connection is accepted: no waiting for anything here.
    await refusedWith(quarantined, 'ERR_AGENT_QUARANTINED');
    await refusedWith(revoked, 'ERR_AGENT_REVOKED');
    await refusedWith(legit, 'ERR_AGENT_QUARANTINED', QUARANTINED_IP);
    expect(await through(legit)).toBe('echo');
    const h = await health();
    expect(h.status).toBe(200);
    expect(h.json).toMatchObject({
      status: 'ok',
      decisionRevision: revision,
      decisions: { state: 'verified', source: 'stored', revision },
      crl: { state: 'current', source: 'stored', revoked: 1 },
      failClosed: [],
    });
  });

  it('refuses a tampered decision store and then refuses every connection (never fails open)', async () => {
    const file = join(agent.dir, 'agent-state', 'decisions.json');
    const good = readFileSync(file, 'utf8');
    await agent.process.kill();
    // Move the address quarantine elsewhere in the signed payload that holds it: the signature
    // no longer holds (the stream sent a snapshot, then deltas; any of them may carry it).
    const form = JSON.parse(good) as { snapshot: string; deltas: string[] };
    const tamper = (jws: string): string => {
      const [h, p, sig] = jws.split('.') as [string, string, string];
      const payload = Buffer.from(p, 'base64url').toString();
      if (!payload.includes(`"${QUARANTINED_IP}"`)) return jws;
      const moved = payload.replace(`"${QUARANTINED_IP}"`, '"127.0.0.4"');
      return `${h}.${Buffer.from(moved).toString('base64url')}.${sig}`;
    };
    form.snapshot = tamper(form.snapshot);
    form.deltas = form.deltas.map(tamper);
    expect(JSON.stringify(form)).not.toBe(good);
    writeFileSync(file, JSON.stringify(form));
    await mesh.restartAgent(agent, { healthy: false });
    await refusedWith(legit, 'ERR_AGENT_FAIL_CLOSED', QUARANTINED_IP);
    await refusedWith(quarantined, 'ERR_AGENT_FAIL_CLOSED');
    await refusedWith(legit, 'ERR_AGENT_FAIL_CLOSED');
    const hz = await health();
    expect(hz.status).toBe(503);
    expect(hz.json).toMatchObject({
      status: 'unhealthy',
      decisions: { state: 'refused', error: 'ERR_AGENT_DECISION_STORE' },
      failClosed: ['decisions'],
    });
    await agent.process.kill();
    writeFileSync(file, good, { mode: 0o600 });
  });

  it('refuses a tampered CRL and then refuses every connection (never fails open)', async () => {
    const file = join(agent.dir, 'agent-state', 'crl.der');
    const good = readFileSync(file);
    const bad = Buffer.from(good);
    bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 0xff; // a byte of the signature
    writeFileSync(file, bad);
    await mesh.restartAgent(agent, { healthy: false });
    await refusedWith(revoked, 'ERR_AGENT_FAIL_CLOSED');
    await refusedWith(legit, 'ERR_AGENT_FAIL_CLOSED');
    const hz = await health();
    expect(hz.status).toBe(503);
    expect(hz.json).toMatchObject({
      status: 'unhealthy',
      decisions: { state: 'verified', source: 'stored', revision },
      crl: { state: 'refused', storeError: 'ERR_AGENT_CRL_SIGNATURE', error: 'ERR_AGENT_CRL_FETCH' },
      failClosed: ['crl'],
    });
  });

  it('a CA restarted while the SIEM is down still refuses to renew an identity the SIEM quarantined', async () => {
    await mesh.restartCa();
    const dirOf = (path: string): string => join(mesh.dir, 'ids', path.replace(/\//g, '_'));
    const refused = edgeward(['renew', '--ca', mesh.caUrl, '--dir', dirOf('device/held')]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('ERR_CA_IDENTITY_QUARANTINED');
    const ok = edgeward(['renew', '--ca', mesh.caUrl, '--dir', dirOf('device/legit')]);
    expect(ok.status, ok.stderr).toBe(0);
  });
});
