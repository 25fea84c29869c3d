// Every /metrics of a real mesh (the CA, the SIEM, an agent: spawned processes) passes
// `promtool check metrics`, carries the process, Node.js and build metrics, gives expiry as an
// absolute timestamp, and counts revocations made by `edgeward ca revoke` in another process.
import { spawnSync } from 'node:child_process';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMesh, waitUntil, type Mesh, type MeshAgent } from '../helpers/mesh.js';

let mesh: Mesh;
let agent: MeshAgent;

beforeAll(async () => {
  if (spawnSync('promtool', ['--version']).error)
    throw new Error('promtool is required for this test (apt-get install -y prometheus)');
  mesh = await startMesh({ agents: [{ name: 'n1' }] });
  agent = mesh.agents[0] as MeshAgent;
}, 120_000);
afterAll(async () => mesh?.stop());

/** promtool's verdict on a /metrics body: its exit status and what it printed. */
function promtool(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

async function scrape(part: 'ca' | 'siem' | 'agent'): Promise<string> {
  if (part === 'agent') return (await agent.admin('/metrics')).text;
  const url = part === 'ca' ? mesh.caUrl : mesh.siemUrl;
  const r = await mesh.call(`${url}/metrics`, part === 'siem' ? mesh.admin : undefined);
  expect(r.status).toBe(200);
  return r.body.toString();
}

function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (line === undefined) throw new Error(`no ${series} in:\n${text}`);
  return Number(line.slice(series.length + 1));
}

describe('every /metrics passes promtool', () => {
  for (const part of ['ca', 'siem', 'agent'] as const) {
    it(`${part}: promtool check metrics, process_*, nodejs_*, edgeward_build_info`, async () => {
      // One connection through the agent first, so its labelled series exist too.
      if (part === 'agent') await mesh.echo(agent, await mesh.enroll('device/d-metrics'));
      const text = await scrape(part);
      const verdict = promtool(text);
      expect(verdict.output, text).toBe('');
      expect(verdict.status).toBe(0);
      for (const name of [
        'process_cpu_seconds_total',
        'process_resident_memory_bytes',
        'process_start_time_seconds',
        'process_open_fds',
        'nodejs_heap_size_used_bytes',
        'nodejs_eventloop_lag_p99_seconds',
      ])
        expect(sample(text, name)).toBeGreaterThanOrEqual(0);
      const start = sample(text, 'process_start_time_seconds');
      expect(Math.abs(start - Date.now() / 1000)).toBeLessThan(600);
      expect(text).toMatch(/^edgeward_build_info\{nodejs="\d+\.\d+\.\d+",version="\d+\.\d+\.\d+[^"]*"\} 1$/m);
      expect(text).toMatch(/^# TYPE edgeward_\w+_total counter$/m);
    });
  }

  it('siem: /metrics answers without a client certificate, as docs/monitoring.md says', async () => {
    const r = await mesh.call(`${mesh.siemUrl}/metrics`, undefined);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toContain('edgeward_siem_events_ingested_total');
  });

  it('siem: its certificate expiry is an absolute timestamp, the notAfter of the certificate it serves', async () => {
    const u = new URL(mesh.siemUrl);
    const served = await new Promise<number>((resolve, reject) => {
      const s = tlsConnect({
        host: u.hostname,
        port: Number(u.port),
        ca: mesh.rootPem,
        checkServerIdentity: () => undefined,
      });
      s.once('error', reject);
      s.once('secureConnect', () => {
        resolve(Math.floor(Date.parse(s.getPeerCertificate().valid_to) / 1000));
        s.destroy();
      });
    });
    const text = await scrape('siem');
    expect(sample(text, 'edgeward_siem_certificate_expiry_timestamp_seconds')).toBe(served);
    expect(served).toBeGreaterThan(Date.now() / 1000);
    expect(text).toContain('# TYPE edgeward_siem_certificate_expiry_timestamp_seconds gauge');
  });

  it('agent: the certificate expiry is an absolute timestamp, the spool drop count a counter', async () => {
    const text = await scrape('agent');
    const expiry = sample(
      text,
      `edgeward_agent_certificate_expiry_timestamp_seconds{identity="${agent.identity}"}`,
    );
    expect(expiry).toBeGreaterThan(Date.now() / 1000);
    expect(expiry).toBeLessThan(Date.now() / 1000 + 400 * 86_400);
    expect(text).toContain('# TYPE edgeward_agent_spool_dropped_total counter');
    expect(text).toContain('# TYPE edgeward_agent_siem_throttled_total counter');
    expect(text).toContain('# TYPE edgeward_agent_events_refused_total counter');
  });

  it('ca: a revocation by `edgeward ca revoke` (another process) is counted by the serving CA', async () => {
    const before = sample(await scrape('ca'), 'edgeward_ca_revocations_total');
    const victim = await mesh.enroll('device/d-revoked');
    const r = mesh.cli([
      'ca',
      'revoke',
      '--data',
      mesh.caDir,
      '--id',
      victim.identity,
      '--reason',
      'keyCompromise',
    ]);
    expect(r.status, r.stderr).toBe(0);
    await waitUntil('the revocation counted', async () => {
      return sample(await scrape('ca'), 'edgeward_ca_revocations_total') === before + 1;
    });
    const text = await scrape('ca');
    expect(promtool(text).status).toBe(0);
    expect(sample(text, 'edgeward_ca_intermediate_expiry_timestamp_seconds')).toBeGreaterThan(
      Date.now() / 1000,
    );
  });
});
