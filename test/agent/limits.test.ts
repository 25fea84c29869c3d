// Limits on real sockets: handshake rate per source, maximum connections, handshake timeout,
// idle timeout and maximum lifetime, and a peer certificate expiring mid-connection.
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  echoServer,
  leafClient,
  node,
  startAgent,
  world,
  withTimeout,
  type World,
} from './fixtures/harness.js';

let w: World;
let app: Awaited<ReturnType<typeof echoServer>>;
beforeAll(async () => {
  w = await world('limits');
  app = await echoServer();
});
afterAll(async () => {
  await app.close();
  await w.cleanup();
});

const inbound = () => [
  {
    name: 'in',
    listen: '127.0.0.1:0',
    forward: `127.0.0.1:${app.port}`,
    allow: ['spiffe://factory.example/node/*'],
  },
];

describe('limits', () => {
  it('handshake rate per source address', async () => {
    const a = await startAgent(w, { inbound: inbound(), limits: { handshakeRate: 1, handshakeBurst: 2 } });
    try {
      const peer = await w.pki.issue(node('rate'));
      const port = a.inbound.get('in')!.port;
      const results = [];
      for (let i = 0; i < 4; i++) results.push(await leafClient(port, peer, w.pki.bundlePem).accepted);
      expect(results.slice(0, 2)).toEqual([true, true]);
      expect(results.slice(2)).toContain(false);
      await w.events.waitFor((e) => e['error.code'] === 'ERR_AGENT_HANDSHAKE_RATE');
    } finally {
      await a.stop();
    }
  });

  it('maximum connections', async () => {
    const a = await startAgent(w, { inbound: inbound(), limits: { maxConnections: 2 } });
    try {
      const peer = await w.pki.issue(node('max'));
      const port = a.inbound.get('in')!.port;
      const c1 = leafClient(port, peer, w.pki.bundlePem);
      const c2 = leafClient(port, peer, w.pki.bundlePem);
      expect(await c1.accepted).toBe(true);
      expect(await c2.accepted).toBe(true);
      expect(await leafClient(port, peer, w.pki.bundlePem).accepted).toBe(false);
      await w.events.waitFor((e) => e['error.code'] === 'ERR_AGENT_MAX_CONNECTIONS');
      c1.socket.destroy();
      await c1.closed;
      await new Promise((r) => setTimeout(r, 50));
      expect(await leafClient(port, peer, w.pki.bundlePem).accepted).toBe(true);
      c2.socket.destroy();
    } finally {
      await a.stop();
    }
  });

  it('handshake timeout, idle timeout and maximum lifetime', async () => {
    const a = await startAgent(w, {
      inbound: inbound(),
      limits: { handshakeTimeout: '300ms', idleTimeout: '400ms', maxLifetime: '1500ms' },
    });
    try {
      const port = a.inbound.get('in')!.port;
      // A client that opens TCP and never speaks TLS.
      const silent = net.connect(port, '127.0.0.1');
      silent.on('error', () => undefined);
      await withTimeout(new Promise((r) => silent.once('close', r)), 5000, 'handshake timeout');
      await w.events.waitFor((e) => e['error.code'] === 'ERR_AGENT_HANDSHAKE_TIMEOUT');
      const peer = await w.pki.issue(node('idle'));
      const idle = leafClient(port, peer, w.pki.bundlePem);
      expect(await idle.accepted).toBe(true);
      await withTimeout(idle.closed, 5000, 'idle close');
      await w.events.waitFor(
        (e) => e['event.action'] === 'connection.closed' && e['event.reason'] === 'idle timeout',
      );
      // A chatty connection still ends at the maximum lifetime.
      const busy = leafClient(port, peer, w.pki.bundlePem);
      expect(await busy.accepted).toBe(true);
      const t = setInterval(() => busy.socket.write('x'), 100);
      await withTimeout(busy.closed, 5000, 'lifetime close');
      clearInterval(t);
      await w.events.waitFor((e) => e['event.reason'] === 'maximum connection lifetime');
    } finally {
      await a.stop();
    }
  });

  it('a connection is closed when the peer certificate expires', async () => {
    const a = await startAgent(w, { inbound: inbound() });
    try {
      const peer = await w.pki.issue(node('short'), { notAfter: new Date(Date.now() + 2500) });
      const c = leafClient(a.inbound.get('in')!.port, peer, w.pki.bundlePem);
      expect(await c.accepted).toBe(true);
      await withTimeout(c.closed, 8000, 'closed at expiry');
      const ev = await w.events.waitFor(
        (e) => e['event.action'] === 'connection.closed' && e['source.identity'] === peer.id,
      );
      expect(ev['error.code']).toBe('ERR_AGENT_CERT_EXPIRED');
    } finally {
      await a.stop();
    }
  });
});
