// A client that sends only its leaf (openssl s_client -cert without -cert_chain, constrained
// devices saving bytes) is accepted: the agent completes the chain from the intermediates it
// knows. The trust anchors stay the roots: a known intermediate whose root is not in the bundle
// does not make its leaves trusted.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import {
  agentConfig,
  agentDeps,
  echoServer,
  mtlsClient,
  node,
  world,
  withTimeout,
  type World,
} from './fixtures/harness.js';

const run = promisify(execFile);

let w: World;
let echo: Awaited<ReturnType<typeof echoServer>>;
let server: Agent;
let foreign: Awaited<ReturnType<World['pki']['foreign']>>;

beforeAll(async () => {
  try {
    await run('which', ['openssl']);
  } catch {
    throw new Error('openssl is required for this test (apt-get install -y openssl)');
  }
  w = await world('server');
  foreign = await w.pki.foreign();
  // The agent also knows a foreign intermediate (it sends it in its own chain), but the
  // foreign root is not in its bundle.
  const certFile = join(w.self.dir, 'cert.pem');
  await writeFile(certFile, (await readFile(certFile, 'utf8')) + foreign.intermediate.pem + '\n');
  echo = await echoServer();
  server = await Agent.start(
    agentConfig(w, {
      inbound: [
        { name: 'echo', listen: '127.0.0.1:0', forward: `127.0.0.1:${echo.port}`, allow: [node('*')] },
      ],
    }),
    agentDeps(w),
  );
});

afterAll(async () => {
  await server?.stop();
  await echo?.close();
  await w?.cleanup();
});

describe('a client that sends only its leaf', () => {
  it('openssl s_client -cert <leaf only> is accepted and echoed', async () => {
    const peer = await w.pki.issue(node('ossl-leaf'), { name: 'ossl-leaf' });
    const leafFile = join(peer.dir, 'leaf.pem');
    await writeFile(leafFile, peer.leafPem);
    const port = server.inbound.get('echo')!.port;
    const r = await run('sh', [
      '-c',
      `(printf 'ping\\n'; sleep 1) | timeout 10 openssl s_client -quiet -no_ign_eof -tls1_3 -connect 127.0.0.1:${port} -cert ${leafFile} -key ${peer.dir}/key.pem 2>&1; true`,
    ]);
    expect(r.stdout).toContain('ping');
    const ev = await w.events.waitFor(
      (e) => e['event.action'] === 'connection.accepted' && e['source.identity'] === peer.id,
    );
    expect(ev['tls.client.x509.serial_number']).toBe(peer.serial);
  });

  it('a Node client sending only its leaf is accepted', async () => {
    const peer = await w.pki.issue(node('node-leaf'), { name: 'node-leaf' });
    const c = mtlsClient(server.inbound.get('echo')!.port, {
      keyPem: peer.keyPem,
      certPem: peer.leafPem,
      ca: w.pki.bundlePem,
    });
    expect(await withTimeout(c.accepted, 5000, 'first byte')).toBe(true);
    c.socket.destroy();
  });

  it('a leaf of a known intermediate whose root is not a trust anchor is refused', async () => {
    const peer = await w.pki.issue(node('foreign-leaf'), {
      name: 'foreign-leaf',
      issuer: foreign.intermediate,
    });
    const c = mtlsClient(server.inbound.get('echo')!.port, {
      keyPem: peer.keyPem,
      certPem: peer.leafPem,
      ca: w.pki.bundlePem,
    });
    expect(await withTimeout(c.accepted, 5000, 'refused')).toBe(false);
    const ev = await w.events.waitFor(
      (e) =>
        e['error.code'] === 'ERR_AGENT_UNTRUSTED_CHAIN' && e['tls.client.x509.serial_number'] === peer.serial,
    );
    expect(ev['event.action']).toBe('handshake.failure');
  });
});
