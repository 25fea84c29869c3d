// The real-process mesh of test/helpers/mesh.ts comes up as documented: CA, SIEM and an agent
// spawned from dist/, a device enrolled over HTTPS and connecting through the agent's sidecar.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMesh, type Mesh } from '../helpers/mesh.js';

let mesh: Mesh;
beforeAll(async () => {
  mesh = await startMesh({ agents: [{ name: 'n1' }] });
});
afterAll(async () => mesh?.stop());

describe('test mesh', () => {
  it('runs a CA, a SIEM and an agent whose sidecar admits an enrolled device', async () => {
    const device = await mesh.enroll('device/d1');
    const agent = mesh.agents[0];
    if (agent === undefined) throw new Error('no agent');
    const echoed = await mesh.echo(agent, device);
    expect(echoed).toBe('ping');
    const d = await mesh.decisions();
    expect(d.revision).toBeGreaterThanOrEqual(0);
    expect((await agent.admin('/healthz')).status).toBe(200);
  });
});
