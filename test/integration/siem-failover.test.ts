// An agent given two SIEM URLs, the first of which is down (nothing listens there): it still
// reports (nothing left in its spool) and receives and enforces decisions, through the second.
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedIdentity } from '../../common/identity-dir.js';
import { startMesh, waitUntil, type Mesh, type MeshAgent } from '../helpers/mesh.js';

let mesh: Mesh;
let agent: MeshAgent;
let device: LoadedIdentity;
let deadUrl = '';

/** A port that refuses connections: bound, then closed. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

beforeAll(async () => {
  deadUrl = `https://127.0.0.1:${await closedPort()}`;
  mesh = await startMesh({ agents: [{ name: 'n1', siemUrlsBefore: [deadUrl] }] });
  agent = mesh.agents[0] as MeshAgent;
  device = await mesh.enroll('device/d1');
}, 240_000);
afterAll(async () => mesh?.stop());

describe('SIEM replica failover (real processes)', () => {
  it('with the first SIEM URL down, the agent follows decisions and reports through the second', async () => {
    // It follows the stream: the agents ledger shows it connected.
    await waitUntil('n1 connected to the decision stream', async () => {
      const r = await mesh.call(`${mesh.siemUrl}/v1/agents`, mesh.admin);
      return (r.json?.['agents'] as { identity: string; connected: number }[]).some(
        (a) => a.identity === agent.identity && a.connected > 0,
      );
    });
    // It reports: the device's connection through it reaches the SIEM's timeline.
    expect(await mesh.echo(agent, device, 'hello')).toBe('hello');
    await waitUntil('the connection event at the SIEM', async () => {
      const r = await mesh.call(
        `${mesh.siemUrl}/v1/entities/serial/${device.serial}/timeline?limit=50`,
        mesh.admin,
      );
      return ((r.json?.['events'] ?? []) as unknown[]).length > 0;
    });
    // A decision made now reaches it and is enforced; lifting it admits the device again.
    const r = await mesh.call(`${mesh.siemUrl}/v1/decisions`, mesh.admin, {
      body: {
        scope: { type: 'serial', value: device.serial },
        action: 'quarantine',
        reason: 'failover',
        ttl: '1h',
      },
    });
    expect(r.status, r.body.toString()).toBe(201);
    const decision = r.json?.['decision'] as { id: string; revision: number };
    await waitUntil('the agent to apply the decision', async () => {
      const h = await agent.admin('/healthz');
      const m = /"decisionRevision":(\d+)/.exec(h.text);
      return m !== null && Number(m[1]) >= decision.revision;
    });
    await expect(mesh.echo(agent, device, 'x')).rejects.toThrow();
    const lift = await mesh.call(`${mesh.siemUrl}/v1/decisions/${decision.id}/lift`, mesh.admin, {
      body: {},
    });
    expect(lift.status, lift.body.toString()).toBeLessThan(300);
    await waitUntil('the device admitted again', async () => {
      try {
        return (await mesh.echo(agent, device, 'back')) === 'back';
      } catch {
        return false;
      }
    });
  });
});
