// `edgeward agent --config FILE`: starts from YAML, serves /healthz and /metrics, reloads on
// SIGHUP (a bad file keeps the old config running), stops on SIGTERM.
import { EventEmitter } from 'node:events';
import { writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import type { Agent } from '../../agent/agent.js';
import { jwsDecisionVerifier } from '../../client/index.js';
import { parseAgentArgs, runAgentCommand } from '../../agent/run.js';
import { echoServer, leafClient, node, TD, world, withTimeout, type World } from './fixtures/harness.js';

let w: World;
let app: Awaited<ReturnType<typeof echoServer>>;
beforeAll(async () => {
  w = await world('runner');
  app = await echoServer();
});
afterAll(async () => {
  await app.close();
  await w.cleanup();
});

function yaml(allow: string): string {
  return `
identity: { dir: ${w.self.dir}, id: ${w.self.id} }
ca: { url: https://127.0.0.1:1, fingerprint: ${'a'.repeat(64)} }
admin: { listen: 127.0.0.1:0 }
inbound:
  - { name: in, listen: 127.0.0.1:0, forward: 127.0.0.1:${app.port}, allow: ["${allow}"] }
`;
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('runAgentCommand', () => {
  it('parses its arguments strictly', () => {
    expect(parseAgentArgs(['agent', '--config', 'a.yaml'])).toEqual({ config: 'a.yaml' });
    expect(parseAgentArgs(['--config=b.yaml'])).toEqual({ config: 'b.yaml' });
    expect(() => parseAgentArgs([])).toThrow(expect.objectContaining({ code: 'ERR_AGENT_CLI_USAGE' }));
    expect(() => parseAgentArgs(['--config'])).toThrow(
      expect.objectContaining({ code: 'ERR_AGENT_CLI_USAGE' }),
    );
    expect(() => parseAgentArgs(['--config', 'a', '--bogus'])).toThrow(
      expect.objectContaining({ code: 'ERR_AGENT_CLI_USAGE' }),
    );
  });

  it('exits 2 on a bad config file', async () => {
    const file = join(w.pki.dir, 'broken.yaml');
    await writeFile(file, 'identity: [');
    expect(await runAgentCommand(['agent', '--config', file], { log: silentLogger })).toBe(2);
  });

  it('runs, serves health and metrics, reloads on SIGHUP and keeps the old config on a bad one', async () => {
    const file = join(w.pki.dir, 'agent.yaml');
    await writeFile(file, yaml('spiffe://factory.example/node/*'));
    const signals = new EventEmitter();
    let agent: Agent | null = null;
    const done = runAgentCommand(['agent', '--config', file], {
      log: silentLogger,
      signals,
      verifier: () =>
        jwsDecisionVerifier({ publicKey: w.signer.publicKey, trustDomain: TD, clock: systemClock }),
      extra: { sink: w.events, fetchCrl: null },
      onStarted: (a) => (agent = a),
    });
    await withTimeout(
      (async () => {
        while (!agent) await new Promise((r) => setTimeout(r, 20));
      })(),
      10_000,
      'agent start',
    );
    const a = agent as unknown as Agent;
    const port = a.inbound.get('in')!.port;
    const peer = await w.pki.issue(node('p1'));
    const live = leafClient(port, peer, w.pki.bundlePem);
    expect(await live.accepted).toBe(true);

    const health = await get(a.admin!.port, '/healthz');
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok', identity: w.self.id });
    const metrics = (await get(a.admin!.port, '/metrics')).body;
    expect(metrics).toContain(`edgeward_agent_connections{identity="${peer.id}"} 1`);
    expect(metrics).toContain(
      `edgeward_agent_certificate_expiry_timestamp_seconds{identity="${w.self.id}"} `,
    );
    expect(metrics).toContain('edgeward_agent_decision_revision 0');
    expect(metrics).toMatch(
      /edgeward_agent_connections_accepted_total\{direction="inbound",listener="in"\} \d+/,
    );
    expect((await get(a.admin!.port, '/nope')).status).toBe(404);

    // A bad file: refused, the old config keeps running (the live connection and new ones work).
    await writeFile(file, yaml('not-a-pattern'));
    signals.emit('SIGHUP');
    await new Promise((r) => setTimeout(r, 300));
    expect(a.config.inbound[0]?.policy.allow).toEqual(['spiffe://factory.example/node/*']);
    expect(await leafClient(port, peer, w.pki.bundlePem).accepted).toBe(true);

    // A good file that no longer allows the peer: its live connection is cut, new ones refused.
    await writeFile(file, yaml('spiffe://factory.example/node/other'));
    signals.emit('SIGHUP');
    await withTimeout(live.closed, 5000, 'cut by policy reload');
    expect(await leafClient(port, peer, w.pki.bundlePem).accepted).toBe(false);
    const metrics2 = (await get(a.admin!.port, '/metrics')).body;
    // Two live connections of that peer were open (the first one and the one made after the bad reload).
    expect(metrics2).toMatch(/edgeward_agent_kills_total\{reason="ERR_POLICY_AUTHZ_DENIED"\} 2/);
    expect(metrics2).toMatch(
      /edgeward_agent_denials_total\{listener="in",reason="ERR_POLICY_AUTHZ_DENIED"\} \d+/,
    );

    signals.emit('SIGTERM');
    expect(await withTimeout(done, 10_000, 'stop')).toBe(0);
  });
});
