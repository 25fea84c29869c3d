// The inbound listener's cache of parsed peer certificates, with real sockets: a cached
// certificate is still refused once revoked, quarantined (by identity or SPKI) or expired; another
// certificate of the same identity is parsed for itself; identity failures are never cached; the
// table is bounded. Also: the inbound server resumes no TLS session (every connection is a full
// mutual handshake).
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import type { InboundListener } from '../../agent/inbound.js';
import { PeerFactsCache } from '../../agent/tls-identity.js';
import { fakeClock } from '../../common/clock.js';
import { echoServer, leafClient, node, startAgent, world, TD, type World } from './fixtures/harness.js';

let w: World;
let app: Awaited<ReturnType<typeof echoServer>>;
let agent: Agent;
let listener: InboundListener;
let port: number;

const inbound = (appPort: number) => [
  {
    name: 'in',
    listen: '127.0.0.1:0',
    forward: `127.0.0.1:${appPort}`,
    allow: [`spiffe://${TD}/node/*`],
  },
];

beforeAll(async () => {
  w = await world();
  app = await echoServer();
  agent = await startAgent(w, { inbound: inbound(app.port) });
  listener = agent.inbound.get('in')!;
  port = listener.port;
});

afterAll(async () => {
  await agent?.stop();
  await app?.close();
  await w?.cleanup();
});

const denied = (id: string, code: string) => (e: Record<string, unknown>) =>
  e['source.identity'] === id && e['error.code'] === code;

describe('inbound identity cache', () => {
  it('a reconnecting certificate is a cache hit and gets the same facts', async () => {
    const peer = await w.pki.issue(node('cached'));
    const hits = listener.peerFacts.hits;
    const misses = listener.peerFacts.misses;
    for (let i = 0; i < 3; i++) {
      const c = leafClient(port, peer, w.pki.bundlePem);
      expect(await c.accepted).toBe(true);
      c.socket.destroy();
    }
    expect(listener.peerFacts.misses).toBe(misses + 1);
    expect(listener.peerFacts.hits).toBe(hits + 2);
    const accepted = w.events.events.filter(
      (e) => e['event.action'] === 'connection.accepted' && e['source.identity'] === peer.id,
    );
    expect(accepted).toHaveLength(3);
    for (const e of accepted) {
      expect(e['tls.client.x509.serial_number']).toBe(peer.serial);
      expect(e['tls.client.x509.spki_sha256']).toBe(peer.spki);
    }
  });

  it('a cached certificate is refused once its serial is revoked', async () => {
    const peer = await w.pki.issue(node('revoked-later'));
    const c = leafClient(port, peer, w.pki.bundlePem);
    expect(await c.accepted).toBe(true);
    const hits = listener.peerFacts.hits;
    agent.enforcer.applyRevoked([peer.serial]);
    await c.closed; // the live one is cut too
    expect(await leafClient(port, peer, w.pki.bundlePem).accepted).toBe(false);
    expect(listener.peerFacts.hits).toBe(hits + 1);
    const ev = await w.events.waitFor(
      (e) => denied(peer.id, 'ERR_AGENT_REVOKED')(e) && e['event.action'] === 'connection.denied',
    );
    expect(ev['tls.client.x509.serial_number']).toBe(peer.serial);
    agent.enforcer.applyRevoked([]);
  });

  it('a cached certificate is refused once its identity or its key is quarantined', async () => {
    const byId = await w.pki.issue(node('quarantined-id'));
    const byKey = await w.pki.issue(node('quarantined-key'));
    for (const p of [byId, byKey]) {
      const c = leafClient(port, p, w.pki.bundlePem);
      expect(await c.accepted).toBe(true);
      c.socket.destroy();
    }
    await agent.applyDecisionToken('snapshot', await w.signer.snapshot());
    await agent.applyDecisionToken(
      'delta',
      await w.signer.add({ type: 'identity', value: byId.id }, { type: 'spki', value: byKey.spki }),
    );
    const hits = listener.peerFacts.hits;
    expect(await leafClient(port, byId, w.pki.bundlePem).accepted).toBe(false);
    expect(await leafClient(port, byKey, w.pki.bundlePem).accepted).toBe(false);
    expect(listener.peerFacts.hits).toBe(hits + 2);
    await w.events.waitFor(denied(byId.id, 'ERR_AGENT_QUARANTINED'));
    await w.events.waitFor(denied(byKey.id, 'ERR_AGENT_QUARANTINED'));
  });

  it('another certificate of the same identity is parsed for itself, not taken from the cache', async () => {
    const first = await w.pki.issue(node('twice'), { name: 'twice-1' });
    const second = await w.pki.issue(node('twice'), { name: 'twice-2' });
    expect(second.serial).not.toBe(first.serial);
    expect(second.spki).not.toBe(first.spki);
    const c1 = leafClient(port, first, w.pki.bundlePem);
    expect(await c1.accepted).toBe(true);
    const misses = listener.peerFacts.misses;
    const c2 = leafClient(port, second, w.pki.bundlePem);
    expect(await c2.accepted).toBe(true);
    expect(listener.peerFacts.misses).toBe(misses + 1);
    const ev = await w.events.waitFor(
      (e) =>
        e['event.action'] === 'connection.accepted' && e['tls.client.x509.serial_number'] === second.serial,
    );
    expect(ev['tls.client.x509.spki_sha256']).toBe(second.spki);
    // Revoking the second certificate leaves the first one's live connection alone.
    agent.enforcer.applyRevoked([second.serial]);
    await c2.closed;
    expect(c1.socket.destroyed).toBe(false);
    c1.socket.destroy();
    agent.enforcer.applyRevoked([]);
  });

  it('a certificate without a usable identity is refused every time and never cached', async () => {
    const bad = await w.pki.issue(node('two-sans'), { extraUris: [node('other')] });
    const size = listener.peerFacts.size;
    for (let i = 0; i < 2; i++) expect(await leafClient(port, bad, w.pki.bundlePem).accepted).toBe(false);
    expect(listener.peerFacts.size).toBe(size);
    const refused = w.events.events.filter((e) => e['error.code'] === 'ERR_AGENT_CERT_IDENTITY');
    expect(refused.length).toBeGreaterThanOrEqual(2);
  });

  it('the inbound server resumes no session: every connection is a full mutual handshake', async () => {
    const peer = await w.pki.issue(node('resumer'));
    const connect = (session?: Buffer) =>
      new Promise<{ reused: boolean; session: Buffer | undefined; accepted: boolean }>((resolve) => {
        const s = tls.connect({
          host: '127.0.0.1',
          port,
          key: peer.keyPem,
          cert: peer.certPem,
          ca: w.pki.bundlePem,
          minVersion: 'TLSv1.3',
          checkServerIdentity: () => undefined,
          ...(session ? { session } : {}),
        });
        let got: Buffer | undefined;
        let reused = false;
        s.on('session', (b: Buffer) => (got = b));
        s.on('error', () => undefined);
        s.once('secureConnect', () => {
          reused = s.isSessionReused();
          s.write('x');
        });
        s.once('data', () => {
          // Give the (post-handshake) session messages a moment, then leave.
          setTimeout(() => {
            s.destroy();
            resolve({ reused, session: got, accepted: true });
          }, 50);
        });
        s.once('close', () => resolve({ reused, session: got, accepted: false }));
      });
    const a = await connect();
    expect(a.accepted).toBe(true);
    expect(a.session).toBeDefined();
    const b = await connect(a.session);
    expect(b.accepted).toBe(true);
    expect(b.reused).toBe(false);
  });
});

describe('identity cache and the clock', () => {
  it('cached facts still go through the expiry check', async () => {
    const clock = fakeClock(Date.now());
    const a = await startAgent(w, { inbound: inbound(app.port) }, { clock });
    try {
      const p = a.inbound.get('in')!.port;
      const peer = await w.pki.issue(node('expires'), { notAfter: new Date(Date.now() + 3_600_000) });
      const c = leafClient(p, peer, w.pki.bundlePem);
      expect(await c.accepted).toBe(true);
      c.socket.destroy();
      clock.advance(2 * 3_600_000);
      expect(await leafClient(p, peer, w.pki.bundlePem).accepted).toBe(false);
      expect(a.inbound.get('in')!.peerFacts.hits).toBe(1);
      await w.events.waitFor(denied(peer.id, 'ERR_AGENT_CERT_EXPIRED'));
    } finally {
      await a.stop();
    }
  });

  it('is bounded: the oldest entry leaves first', async () => {
    const cache = new PeerFactsCache(TD, 2);
    const certs = await Promise.all(['b1', 'b2', 'b3'].map((n) => w.pki.issue(node(n))));
    const peerCert = (leaf: (typeof certs)[number]): Promise<tls.PeerCertificate> =>
      new Promise((resolve, reject) => {
        const server = tls.createServer(
          {
            key: w.self.keyPem,
            cert: w.self.certPem,
            ca: w.pki.bundlePem,
            requestCert: true,
            rejectUnauthorized: true,
            minVersion: 'TLSv1.3',
          },
          (s) => {
            resolve(s.getPeerCertificate());
            s.destroy();
            server.close();
          },
        );
        server.listen(0, '127.0.0.1', () => {
          const c = tls.connect({
            host: '127.0.0.1',
            port: (server.address() as { port: number }).port,
            key: leaf.keyPem,
            cert: leaf.certPem,
            ca: w.pki.bundlePem,
            checkServerIdentity: () => undefined,
          });
          c.on('error', () => undefined);
          c.on('secureConnect', () => c.write('x'));
        });
        server.on('tlsClientError', reject);
      });
    const pcs: tls.PeerCertificate[] = [];
    for (const c of certs) pcs.push(await peerCert(c));
    const facts = pcs.map((pc) => cache.get(pc));
    expect(facts.map((f) => f.serial)).toEqual(certs.map((c) => c.serial));
    expect(cache.size).toBe(2);
    expect(cache.misses).toBe(3);
    cache.get(pcs[2]!);
    expect(cache.hits).toBe(1);
    cache.get(pcs[0]!); // evicted: parsed again
    expect(cache.misses).toBe(4);
    expect(cache.size).toBe(2);
    // Another trust domain's cache refuses the same certificate.
    expect(() => new PeerFactsCache('other.example').get(pcs[0]!)).toThrow(
      expect.objectContaining({ code: 'ERR_AGENT_CERT_IDENTITY' }),
    );
    expect(() => new PeerFactsCache(TD, 0)).toThrow(TypeError);
  });
});
