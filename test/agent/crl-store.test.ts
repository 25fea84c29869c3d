// The CRL across restarts (the fail-static attack: a restart must not forget revocations): the last verified CRL is stored and enforced at
// the next start before any connection, whether or not the CA answers; past its nextUpdate it is
// still enforced and /healthz and /metrics say so; a stored CRL that does not verify makes the
// agent refuse everyone until the CA gives a good one; the CRL comes only from spiffe://TD/svc/ca.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import { httpsCrlFetcher } from '../../agent/crl-poller.js';
import { loadIdentityMaterial } from '../../agent/rotation.js';
import { EdgewardError } from '../../common/errors.js';
import { echoServer, leafClient, node, startAgent, TD, world, type World } from './fixtures/harness.js';

let w: World;
let app: Awaited<ReturnType<typeof echoServer>>;
beforeAll(async () => {
  w = await world('crl-store');
  app = await echoServer();
});
afterAll(async () => {
  await app.close();
  await w.cleanup();
});

const down = (): Promise<Uint8Array> =>
  Promise.reject(new EdgewardError('ERR_AGENT_CRL_FETCH', 'connect ECONNREFUSED (the CA is down)'));

function extra(state: string): Record<string, unknown> {
  return {
    state: { dir: join(w.pki.dir, state) },
    admin: { listen: '127.0.0.1:0' },
    inbound: [
      {
        name: 'in',
        listen: '127.0.0.1:0',
        forward: `127.0.0.1:${app.port}`,
        allow: [`spiffe://${TD}/node/*`],
      },
    ],
  };
}

function get(a: Agent, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: a.admin!.port, path }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

const port = (a: Agent): number => a.inbound.get('in')!.port;

describe('the CRL across restarts', () => {
  it('is stored 0600 when fetched and enforced at the next start while the CA is down', async () => {
    const revoked = await w.pki.issue(node('crl-revoked'));
    const der = await w.pki.crl([revoked.serial]);
    const a1 = await startAgent(w, extra('s1'), { fetchCrl: () => Promise.resolve(der) });
    await a1.crl!.pollOnce();
    await a1.stop();
    const file = join(w.pki.dir, 's1', 'crl.der');
    expect(readFileSync(file).equals(der)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const a2 = await startAgent(w, extra('s1'), { fetchCrl: down });
    try {
      // Enforced before the first connection: nothing was fetched.
      expect(await leafClient(port(a2), revoked, w.pki.bundlePem).accepted).toBe(false);
      await w.events.waitFor(
        (e) => e['error.code'] === 'ERR_AGENT_REVOKED' && e['source.identity'] === revoked.id,
      );
      const legit = await w.pki.issue(node('crl-legit'));
      expect(await leafClient(port(a2), legit, w.pki.bundlePem).accepted).toBe(true);
      await a2.crl!.pollOnce();
      const h = await get(a2, '/healthz');
      expect(h.status).toBe(200);
      expect(JSON.parse(h.body)).toMatchObject({
        status: 'ok',
        crl: { state: 'current', source: 'stored', revoked: 1, error: 'ERR_AGENT_CRL_FETCH' },
        failClosed: [],
      });
    } finally {
      await a2.stop();
    }
  });

  it('past its nextUpdate is still enforced, and /healthz and /metrics say it is stale', async () => {
    const revoked = await w.pki.issue(node('crl-stale'));
    const der = await w.pki.crl([revoked.serial], {
      thisUpdate: new Date(Date.now() - 7200_000),
      nextUpdate: new Date(Date.now() - 3600_000),
    });
    writeFileSync(join(w.pki.dir, 'stale.der'), der);
    const a = await startAgent(w, extra('s2'), { fetchCrl: () => Promise.resolve(der) });
    try {
      await a.crl!.pollOnce();
      expect(await leafClient(port(a), revoked, w.pki.bundlePem).accepted).toBe(false);
      const h = await get(a, '/healthz');
      expect(h.status).toBe(200);
      const body = JSON.parse(h.body) as { status: string; crl: { state: string; nextUpdate: string } };
      expect(body.status).toBe('degraded');
      expect(body.crl.state).toBe('stale');
      expect(Date.parse(body.crl.nextUpdate)).toBeLessThan(Date.now());
      const m = (await get(a, '/metrics')).body;
      expect(m).toMatch(/^edgeward_agent_crl_stale 1$/m);
      const next = Number(/^edgeward_agent_crl_next_update_timestamp_seconds (\d+)$/m.exec(m)?.[1]);
      expect(next).toBeLessThan(Date.now() / 1000 - 3000);
    } finally {
      await a.stop();
    }
  });

  it('a stored CRL that does not verify makes the agent refuse everyone until the CA gives a good one', async () => {
    const state = 's3';
    const other = await w.pki.foreign();
    const forged = await w.pki.crl([], { signer: { ...other.intermediate, cert: w.pki.intermediate.cert } });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(w.pki.dir, state), { recursive: true });
    writeFileSync(join(w.pki.dir, state, 'crl.der'), forged);
    let fetch = down;
    const a = await startAgent(w, extra(state), { fetchCrl: () => fetch() });
    try {
      const legit = await w.pki.issue(node('crl-closed'));
      expect(await leafClient(port(a), legit, w.pki.bundlePem).accepted).toBe(false);
      await w.events.waitFor(
        (e) => e['error.code'] === 'ERR_AGENT_FAIL_CLOSED' && e['source.identity'] === legit.id,
      );
      const h = await get(a, '/healthz');
      expect(h.status).toBe(503);
      expect(JSON.parse(h.body)).toMatchObject({
        status: 'unhealthy',
        crl: { state: 'refused' },
        failClosed: ['crl'],
      });
      expect((await get(a, '/metrics')).body).toContain('edgeward_agent_fail_closed{what="crl"} 1');
      const good = await w.pki.crl([]);
      fetch = () => Promise.resolve(good);
      await a.crl!.pollOnce();
      expect(await leafClient(port(a), legit, w.pki.bundlePem).accepted).toBe(true);
      expect(JSON.parse((await get(a, '/healthz')).body)).toMatchObject({
        status: 'ok',
        crl: { state: 'current', source: 'ca' },
        failClosed: [],
      });
    } finally {
      await a.stop();
    }
  });

  it('is fetched only from a server proven to be spiffe://TD/svc/ca', async () => {
    const der = await w.pki.crl([]);
    const identity = await loadIdentityMaterial(w.self.dir, w.self.id);
    for (const [name, ok] of [
      [`spiffe://${TD}/node/not-the-ca`, false],
      [`spiffe://${TD}/svc/ca`, true],
    ] as const) {
      const leaf = await w.pki.issue(name, { name: `crl-server-${ok}` });
      const server = https.createServer(
        { key: leaf.keyPem, cert: leaf.certPem, minVersion: 'TLSv1.3' },
        (_q, r) => r.end(der),
      );
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      try {
        const fetch = httpsCrlFetcher(url, `spiffe://${TD}/svc/ca`, () => identity);
        if (ok) expect(Buffer.from(await fetch()).equals(der)).toBe(true);
        else await expect(fetch()).rejects.toMatchObject({ code: 'ERR_AGENT_PEER_MISMATCH' });
      } finally {
        server.closeAllConnections();
        await new Promise<void>((r) => server.close(() => r()));
      }
    }
  });
});
