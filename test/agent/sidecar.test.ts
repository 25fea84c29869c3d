// Two agents end to end (app -> outbound agent -> inbound agent -> app), outside clients (curl,
// openssl s_client), the CRL polled from a real HTTPS endpoint, PROXY v2, and rotation under load.
import { execFile } from 'node:child_process';
import * as https from 'node:https';
import * as net from 'node:net';
import { basename } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import { parseProxyV2 } from '../../agent/proxy-protocol.js';
import {
  agentConfig,
  agentDeps,
  echoServer,
  httpApp,
  leafClient,
  node,
  world,
  withTimeout,
  type World,
} from './fixtures/harness.js';
import { Agent as AgentClass } from '../../agent/agent.js';

const run = promisify(execFile);

async function need(tool: string): Promise<void> {
  try {
    await run('which', [tool]);
  } catch {
    throw new Error(
      `${tool} is required for this test (apt-get install -y ${tool === 'openssl' ? 'openssl' : 'curl'})`,
    );
  }
}

let w: World;
let app: Awaited<ReturnType<typeof echoServer>>;
let web: Awaited<ReturnType<typeof httpApp>>;
let server: Agent;
let crlDer: Buffer = Buffer.alloc(0);
let caServer: https.Server;

beforeAll(async () => {
  await need('curl');
  await need('openssl');
  w = await world('server');
  app = await echoServer();
  web = await httpApp();
  // The CA's CRL endpoint: HTTPS with a svc identity from the same PKI.
  const caLeaf = await w.pki.issue('spiffe://factory.example/svc/ca', { name: 'ca-svc' });
  crlDer = await w.pki.crl([]);
  caServer = https.createServer(
    { key: caLeaf.keyPem, cert: caLeaf.certPem, minVersion: 'TLSv1.3' },
    (req, res) => {
      if (req.url === '/v1/crl') {
        res.writeHead(200, { 'content-type': 'application/pkix-crl' });
        res.end(crlDer);
      } else res.writeHead(404).end();
    },
  );
  await new Promise<void>((r) => caServer.listen(0, '127.0.0.1', r));
  const caPort = (caServer.address() as net.AddressInfo).port;
  const cfg = agentConfig(w, {
    ca: { url: `https://127.0.0.1:${caPort}`, fingerprint: 'a'.repeat(64), crlInterval: '1s' },
    // The renewal-under-load test opens connections as fast as this machine allows, all from
    // 127.0.0.1; the per-source handshake limit (tested in limits.test.ts) must not cut in.
    limits: { handshakeRate: 100_000, handshakeBurst: 100_000 },
    inbound: [
      {
        name: 'echo',
        listen: '127.0.0.1:0',
        forward: `127.0.0.1:${app.port}`,
        allow: ['spiffe://factory.example/node/*'],
      },
      {
        name: 'web',
        listen: '127.0.0.1:0',
        forward: `127.0.0.1:${web.port}`,
        allow: ['spiffe://factory.example/node/*'],
      },
      {
        name: 'pp',
        listen: '127.0.0.1:0',
        forward: `127.0.0.1:${app.port}`,
        allow: ['spiffe://factory.example/node/*'],
        proxyProtocol: true,
      },
    ],
  });
  const { fetchCrl: _drop, ...deps } = agentDeps(w);
  void _drop;
  server = await AgentClass.start(cfg, deps);
});

afterAll(async () => {
  await server?.stop();
  await app?.close();
  await web?.close();
  await new Promise<void>((r) => (caServer ? caServer.close(() => r()) : r()));
  await w?.cleanup();
});

describe('outside clients', () => {
  it('curl with an allowed client certificate gets the app; without one it is refused', async () => {
    const peer = await w.pki.issue(node('curl1'), { name: 'curl1' });
    const port = server.inbound.get('web')!.port;
    const ok = await run('curl', [
      '-sS',
      '-k',
      '--tlsv1.3',
      '--cert',
      `${peer.dir}/cert.pem`,
      '--key',
      `${peer.dir}/key.pem`,
      `https://127.0.0.1:${port}/x`,
    ]);
    expect(ok.stdout).toBe('hello /x');
    await expect(run('curl', ['-sS', '-k', '--tlsv1.3', `https://127.0.0.1:${port}/`])).rejects.toThrow();
    await w.events.waitFor((e) => e['error.code'] === 'ERR_AGENT_NO_CLIENT_CERT');
  });

  it('openssl s_client with an expired certificate is refused with the reason reported', async () => {
    const peer = await w.pki.issue(node('old'), {
      name: 'old',
      notBefore: new Date(Date.now() - 7200_000),
      notAfter: new Date(Date.now() - 3600_000),
    });
    const port = server.inbound.get('echo')!.port;
    const r = await run('sh', [
      '-c',
      `printf 'ping\\n' | timeout 10 openssl s_client -quiet -no_ign_eof -tls1_3 -connect 127.0.0.1:${port} -cert ${peer.dir}/cert.pem -cert_chain ${peer.dir}/cert.pem -key ${peer.dir}/key.pem 2>/dev/null; true`,
    ]);
    expect(r.stdout).not.toContain('ping');
    const ev = await w.events.waitFor((e) => e['error.code'] === 'ERR_AGENT_CERT_EXPIRED');
    expect(ev['event.action']).toBe('handshake.failure');
  });

  it('openssl s_client with a valid certificate is echoed', async () => {
    const peer = await w.pki.issue(node('ossl'), { name: 'ossl' });
    const port = server.inbound.get('echo')!.port;
    const r = await run('sh', [
      '-c',
      `(printf 'ping\\n'; sleep 1) | timeout 10 openssl s_client -quiet -no_ign_eof -tls1_3 -connect 127.0.0.1:${port} -cert ${peer.dir}/cert.pem -cert_chain ${peer.dir}/cert.pem -key ${peer.dir}/key.pem 2>/dev/null; true`,
    ]);
    expect(r.stdout).toContain('ping');
  });
});

describe('CRL', () => {
  it('a revoked certificate is cut live and refused, from the polled CRL', async () => {
    const peer = await w.pki.issue(node('revokee'));
    const port = server.inbound.get('echo')!.port;
    const c = leafClient(port, peer, w.pki.bundlePem);
    expect(await c.accepted).toBe(true);
    crlDer = await w.pki.crl([peer.serial]);
    await withTimeout(c.closed, 10_000, 'revoked connection cut');
    const cut = await w.events.waitFor(
      (e) => e['event.action'] === 'connection.closed' && e['source.identity'] === peer.id,
    );
    expect(cut['error.code']).toBe('ERR_AGENT_REVOKED');
    expect(await leafClient(port, peer, w.pki.bundlePem).accepted).toBe(false);
    const ev = await w.events.waitFor(
      (e) => e['event.action'] === 'connection.denied' && e['source.identity'] === peer.id,
    );
    expect(ev['error.code']).toBe('ERR_AGENT_REVOKED');
  });

  it('a CRL signed by another key is refused and the last good one stays in force', async () => {
    const other = await w.pki.foreign();
    crlDer = await w.pki.crl([], { signer: { ...other.intermediate, cert: w.pki.intermediate.cert } });
    const r = await server.crl!.pollOnce();
    expect(r).toBeNull();
    expect((server.crl!.lastError as { code?: string }).code).toBe('ERR_AGENT_CRL_SIGNATURE');
    expect(server.crl!.revokedCount).toBe(1);
  });
});

describe('PROXY protocol v2', () => {
  it('the local app learns the verified peer identity', async () => {
    const got: Buffer[] = [];
    const ppApp = net.createServer((s) => s.on('data', (d) => got.push(d)).on('error', () => undefined));
    await new Promise<void>((r) => ppApp.listen(0, '127.0.0.1', r));
    const ppPort = (ppApp.address() as net.AddressInfo).port;
    const cfg = agentConfig(w, {
      inbound: [
        {
          name: 'pp2',
          listen: '127.0.0.1:0',
          forward: `127.0.0.1:${ppPort}`,
          allow: ['spiffe://factory.example/node/*'],
          proxyProtocol: true,
        },
      ],
    });
    const a = await AgentClass.start(cfg, agentDeps(w));
    try {
      const peer = await w.pki.issue(node('pp'));
      const c = leafClient(a.inbound.get('pp2')!.port, peer, w.pki.bundlePem, 'hello');
      await withTimeout(
        (async () => {
          while (Buffer.concat(got).indexOf('hello') < 0) await new Promise((r) => setTimeout(r, 20));
        })(),
        5000,
        'app got data',
      );
      const buf = Buffer.concat(got);
      const h = parseProxyV2(buf);
      expect(h.identity).toBe(peer.id);
      expect(h.srcIp).toBe('127.0.0.1');
      expect(buf.subarray(h.length).toString()).toBe('hello');
      c.socket.destroy();
    } finally {
      await a.stop();
      ppApp.close();
    }
  });
});

describe('outbound through a second agent', () => {
  it('app -> outbound agent -> inbound agent -> app, and expect mismatch is refused', async () => {
    const clientLeaf = await w.pki.issue(node('client'), { name: 'client' });
    const inPort = server.inbound.get('echo')!.port;
    const clientWorld = { ...w, self: clientLeaf };
    const a = await AgentClass.start(
      agentConfig(clientWorld, {
        outbound: [
          { name: 'good', listen: '127.0.0.1:0', connect: `127.0.0.1:${inPort}`, expect: node('server') },
          {
            name: 'bad',
            listen: '127.0.0.1:0',
            connect: `127.0.0.1:${inPort}`,
            expect: node('someone-else'),
          },
          {
            name: 'unix',
            listen: `unix:${w.pki.dir}/out.sock`,
            connect: `127.0.0.1:${inPort}`,
            expect: node('server'),
          },
        ],
      }),
      agentDeps(clientWorld),
    );
    try {
      const s = net.connect(a.outbound.get('good')!.port, '127.0.0.1');
      s.write('through the mesh\n');
      const echoed = await withTimeout(
        new Promise<string>((r) => s.once('data', (d: Buffer) => r(d.toString()))),
        5000,
        'echo',
      );
      expect(echoed).toBe('through the mesh\n');
      await w.events.waitFor(
        (e) => e['event.action'] === 'connection.accepted' && e['network.direction'] === 'outbound',
      );
      s.destroy();
      const u = net.connect({ path: `${w.pki.dir}/out.sock` });
      u.write('over a unix socket\n');
      const viaUnix = await withTimeout(
        new Promise<string>((r) => u.once('data', (d: Buffer) => r(d.toString()))),
        5000,
        'unix echo',
      );
      expect(viaUnix).toBe('over a unix socket\n');
      u.destroy();
      const bad = net.connect(a.outbound.get('bad')!.port, '127.0.0.1');
      bad.on('error', () => undefined);
      bad.write('x');
      await withTimeout(new Promise((r) => bad.once('close', r)), 5000, 'mismatch closed');
      const ev = await w.events.waitFor(
        (e) => e['event.action'] === 'handshake.failure' && e['network.direction'] === 'outbound',
      );
      expect(ev['event.reason']).toContain('ERR_AGENT_PEER_MISMATCH');
    } finally {
      await a.stop();
    }
  });
});

describe('rotation', () => {
  it('renewal under load swaps the context without losing a request; live connections keep going', async () => {
    const peer = await w.pki.issue(node('loader'));
    const port = server.inbound.get('echo')!.port;
    const long = leafClient(port, peer, w.pki.bundlePem);
    expect(await long.accepted).toBe(true);
    const before = server.rotation.current.serial;
    let ok = 0;
    let failed = 0;
    let stop = false;
    const loop = async (): Promise<void> => {
      while (!stop) {
        const c = leafClient(port, peer, w.pki.bundlePem);
        if (await c.accepted) ok++;
        else failed++;
        c.socket.destroy();
      }
    };
    const loops = [loop(), loop(), loop()];
    await new Promise((r) => setTimeout(r, 200));
    await server.rotation.rotateNow();
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(loops);
    expect(server.rotation.current.serial).not.toBe(before);
    expect(failed).toBe(0);
    expect(ok).toBeGreaterThan(0);
    // The long-lived connection made before the swap still works.
    const echoed = new Promise<string>((r) => long.socket.once('data', (d: Buffer) => r(d.toString())));
    long.socket.write('still here\n');
    expect(await withTimeout(echoed, 2000, 'long-lived echo')).toBe('still here\n');
    await w.events.waitFor((e) => e['event.action'] === 'rotation' && e['event.reason'] === 'renewed');
    long.socket.destroy();
    void basename;
  });

  it('accepts peers from the old and the new CA during a CA rotation', async () => {
    const oldPeer = await w.pki.issue(node('old-ca'));
    await w.pki.rotate();
    const newPeer = await w.pki.issue(node('new-ca'));
    await server.rotation.rotateNow(); // renew writes the new bundle (old + new roots) and a cert from the new CA
    const port = server.inbound.get('echo')!.port;
    expect(await leafClient(port, oldPeer, w.pki.bundlePem).accepted).toBe(true);
    expect(await leafClient(port, newPeer, w.pki.bundlePem).accepted).toBe(true);
  });
});
