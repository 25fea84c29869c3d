// The logs of real processes (ca serve, siem serve, an agent): stderr holds JSON lines only, each
// with pid, hostname and one name; the agent logs refused peers and its stop at info; a start
// failure is a JSON line too when stderr is not a terminal.
import { hostname } from 'node:os';
import { connect } from 'node:tls';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { edgeward } from '../helpers/cli.js';
import { startMesh, waitUntil, type Mesh, type MeshAgent } from '../helpers/mesh.js';

let mesh: Mesh;
let agent: MeshAgent;

beforeAll(async () => {
  mesh = await startMesh({ agents: [{ name: 'n1' }], env: { EDGEWARD_LOG_LEVEL: 'info' } });
  agent = mesh.agents[0] as MeshAgent;
}, 120_000);
afterAll(async () => mesh?.stop());

type Line = Record<string, unknown>;

/** Every stderr line as JSON; throws naming the first line that is not. */
function jsonLines(stderr: string): Line[] {
  return stderr
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        const v = JSON.parse(l) as unknown;
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
        return v as Line;
      } catch {
        throw new Error(`a stderr line is not a JSON object: ${JSON.stringify(l.slice(0, 200))}`);
      }
    });
}

function expectFields(lines: Line[], name: string, pid: number | undefined): void {
  expect(lines.length).toBeGreaterThan(0);
  for (const l of lines) {
    expect(l).toMatchObject({ name, hostname: hostname() });
    expect(l['pid']).toBeTypeOf('number');
    if (pid !== undefined && name !== 'ca') expect(l['pid']).toBe(pid);
    expect(l['level']).toBeTypeOf('number');
    expect(l['time']).toBeTypeOf('number');
    expect(l['msg']).toBeTypeOf('string');
    expect(l).not.toHaveProperty('svc');
  }
}

describe('logs are JSON lines on stderr', () => {
  it('the agent logs a refused peer at info, then its stop, all as JSON with pid, hostname, name', async () => {
    // No client certificate: refused after the handshake.
    const s = connect({ host: '127.0.0.1', port: agent.inboundPort, rejectUnauthorized: false });
    s.on('error', () => undefined);
    s.on('secureConnect', () => s.write('x'));
    await waitUntil('the refusal logged', async () => agent.process.stderr().includes('peer refused'));
    s.destroy();
    const exited = new Promise((r) => agent.process.proc.once('exit', r));
    agent.process.proc.kill('SIGTERM');
    await exited;
    const lines = jsonLines(agent.process.stderr());
    expectFields(lines, 'agent', agent.process.proc.pid);
    const refused = lines.find((l) => l['msg'] === 'peer refused');
    expect(refused).toMatchObject({
      level: 30,
      code: 'ERR_AGENT_NO_CLIENT_CERT',
      action: 'handshake.failure',
    });
    expect(lines.find((l) => l['msg'] === 'agent stopping')).toMatchObject({ level: 30, signal: 'SIGTERM' });
    expect(lines.find((l) => l['msg'] === 'agent stopped')).toMatchObject({ level: 30 });
  });

  it('ca serve and siem serve: stderr is JSON lines, banners on stdout', async () => {
    await mesh.enroll('device/d-logs');
    for (const p of [mesh.ca, mesh.siem]) {
      const lines = jsonLines(p.stderr());
      expectFields(lines, p.name, p.proc.pid);
      expect(p.stderr()).not.toContain('listening on');
      expect(p.output()).toContain('listening on');
    }
  });

  it('a start failure off a terminal is one JSON line with its code; a bad EDGEWARD_LOG_LEVEL is said', () => {
    const file = join(mesh.dir, 'broken-agent.yaml');
    writeFileSync(file, 'identity: [');
    const r = edgeward(['agent', '--config', file], { EDGEWARD_LOG_LEVEL: 'loud' });
    expect(r.status).toBe(2);
    const lines = jsonLines(r.stderr);
    expectFields(lines, 'agent', undefined);
    expect(
      lines.find((l) => l['msg'] === 'EDGEWARD_LOG_LEVEL names no level; logging at info'),
    ).toMatchObject({
      level: 40,
      value: 'loud',
    });
    const fatal = lines.find((l) => l['level'] === 60);
    expect(fatal?.['code']).toMatch(/^ERR_AGENT_/);
  });
});
