// The inbound listener with real sockets: refused peers (each with its reason in the events),
// accepted peers relayed to the local app, live connections cut by decisions and expiry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import {
  echoServer,
  leafClient,
  mtlsClient,
  node,
  startAgent,
  world,
  withTimeout,
  type World,
} from './fixtures/harness.js';

let w: World;
let app: Awaited<ReturnType<typeof echoServer>>;
let agent: Agent;
let port: number;

beforeAll(async () => {
  w = await world();
  app = await echoServer();
  agent = await startAgent(w, {
    inbound: [
      {
        name: 'in',
        listen: '127.0.0.1:0',
        forward: `127.0.0.1:${app.port}`,
        allow: [`spiffe://factory.example/node/*`],
        deny: [node('banned')],
      },
    ],
  });
  port = agent.inbound.get('in')!.port;
});

afterAll(async () => {
  await agent?.stop();
  await app?.close();
  await w?.cleanup();
});

const failureFor = (code: string) => (e: Record<string, unknown>) => e['error.code'] === code;

describe('inbound mTLS listener', () => {
  it('accepts an allowed peer and relays to the local app', async () => {
    const peer = await w.pki.issue(node('a1'));
    const c = leafClient(port, peer, w.pki.bundlePem);
    expect(await c.accepted).toBe(true);
    const ev = await w.events.waitFor(
      (e) => e['event.action'] === 'connection.accepted' && e['source.identity'] === peer.id,
    );
    expect(ev['tls.client.x509.serial_number']).toBe(peer.serial);
    expect(ev['tls.client.x509.spki_sha256']).toBe(peer.spki);
    c.socket.destroy();
  });

  it('refuses a client without a certificate: ERR_AGENT_NO_CLIENT_CERT', async () => {
    const c = mtlsClient(port, { ca: w.pki.bundlePem });
    expect(await c.accepted).toBe(false);
    await w.events.waitFor(failureFor('ERR_AGENT_NO_CLIENT_CERT'));
  });

  it('refuses a certificate from another CA: ERR_AGENT_UNTRUSTED_CHAIN', async () => {
    const other = await w.pki.foreign();
    const peer = await w.pki.issue(node('foreign'), { issuer: other.intermediate, name: 'foreign' });
    const c = leafClient(port, peer, w.pki.bundlePem);
    expect(await c.accepted).toBe(false);
    const ev = await w.events.waitFor(failureFor('ERR_AGENT_UNTRUSTED_CHAIN'));
    expect(ev['event.action']).toBe('handshake.failure');
  });

  it('refuses an expired certificate: ERR_AGENT_CERT_EXPIRED', async () => {
    const peer = await w.pki.issue(node('old'), {
      notBefore: new Date(Date.now() - 7200_000),
      notAfter: new Date(Date.now() - 3600_000),
    });
    const c = leafClient(port, peer, w.pki.bundlePem);
    expect(await c.accepted).toBe(false);
    const ev = await w.events.waitFor(failureFor('ERR_AGENT_CERT_EXPIRED'));
    expect(ev['event.reason']).toBe('CERT_HAS_EXPIRED');
  });

  it('refuses an identity the policy does not allow (no match, and explicit deny)', async () => {
    const dev = await w.pki.issue(`spiffe://factory.example/device/d1`);
    expect(await leafClient(port, dev, w.pki.bundlePem).accepted).toBe(false);
    const ev = await w.events.waitFor(
      (e) => e['error.code'] === 'ERR_POLICY_AUTHZ_DENIED' && e['source.identity'] === dev.id,
    );
    expect(ev['event.action']).toBe('connection.denied');
    expect(ev['event.reason']).toContain('no-match');
    const banned = await w.pki.issue(node('banned'));
    expect(await leafClient(port, banned, w.pki.bundlePem).accepted).toBe(false);
    const ev2 = await w.events.waitFor(
      (e) => e['error.code'] === 'ERR_POLICY_AUTHZ_DENIED' && e['source.identity'] === banned.id,
    );
    expect(ev2['event.reason']).toContain('denied');
  });

  it('refuses a certificate with two URI SANs: ERR_AGENT_CERT_IDENTITY', async () => {
    const peer = await w.pki.issue(node('two'), { extraUris: [node('three')] });
    expect(await leafClient(port, peer, w.pki.bundlePem).accepted).toBe(false);
    await w.events.waitFor(failureFor('ERR_AGENT_CERT_IDENTITY'));
  });

  it('refuses TLS 1.2 clients', async () => {
    const tls = await import('node:tls');
    const peer = await w.pki.issue(node('old-tls'));
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      key: peer.keyPem,
      cert: peer.certPem,
      ca: w.pki.bundlePem,
      maxVersion: 'TLSv1.2',
      checkServerIdentity: () => undefined,
    });
    const err = await new Promise<Error | null>((r) => {
      s.once('error', r);
      s.once('secureConnect', () => r(null));
    });
    expect(err).not.toBeNull();
    await w.events.waitFor((e) => e['error.code'] === 'ERR_AGENT_HANDSHAKE');
  });

  it('cuts a live connection when its identity is quarantined, and refuses it afterwards', async () => {
    const peer = await w.pki.issue(node('victim'));
    const bystander = await w.pki.issue(node('bystander'));
    const c = leafClient(port, peer, w.pki.bundlePem);
    const b = leafClient(port, bystander, w.pki.bundlePem);
    expect(await c.accepted).toBe(true);
    expect(await b.accepted).toBe(true);
    await agent.applyDecisionToken('snapshot', await w.signer.snapshot());
    await agent.applyDecisionToken('delta', await w.signer.add({ type: 'identity', value: peer.id }));
    await withTimeout(c.closed, 5000, 'quarantined connection cut');
    expect(b.socket.destroyed).toBe(false);
    const ev = await w.events.waitFor(
      (e) => e['event.action'] === 'connection.closed' && e['source.identity'] === peer.id,
    );
    expect(ev['error.code']).toBe('ERR_AGENT_QUARANTINED');
    expect(ev['decision.revision']).toBe(w.signer.revision);
    expect(await leafClient(port, peer, w.pki.bundlePem).accepted).toBe(false);
    const denied = await w.events.waitFor(
      (e) => e['event.action'] === 'connection.denied' && e['source.identity'] === peer.id,
    );
    expect(denied['error.code']).toBe('ERR_AGENT_QUARANTINED');
    b.socket.destroy();
  });

  it('cuts live connections matching serial, SPKI and CIDR decisions', async () => {
    const p1 = await w.pki.issue(node('s1'));
    const p2 = await w.pki.issue(node('s2'));
    const c1 = leafClient(port, p1, w.pki.bundlePem);
    const c2 = leafClient(port, p2, w.pki.bundlePem);
    expect(await c1.accepted).toBe(true);
    expect(await c2.accepted).toBe(true);
    await agent.applyDecisionToken(
      'delta',
      await w.signer.add({ type: 'serial', value: p1.serial }, { type: 'spki', value: p2.spki }),
    );
    await withTimeout(Promise.all([c1.closed, c2.closed]), 5000, 'serial/spki cut');
    const p3 = await w.pki.issue(node('s3'));
    const c3 = leafClient(port, p3, w.pki.bundlePem);
    expect(await c3.accepted).toBe(true);
    await agent.applyDecisionToken('delta', await w.signer.add({ type: 'cidr', value: '127.0.0.0/8' }));
    await withTimeout(c3.closed, 5000, 'cidr cut');
    expect(await leafClient(port, p3, w.pki.bundlePem).accepted).toBe(false);
  });

  it('refuses a forged decision and an older revision', async () => {
    const { decisionSigner } = await import('./fixtures/harness.js');
    const forger = decisionSigner();
    forger.revision = w.signer.revision + 5;
    await expect(agent.applyDecisionToken('snapshot', await forger.snapshot())).rejects.toMatchObject({
      code: 'ERR_AGENT_DECISION_INVALID',
    });
    const before = agent.enforcer.decisionRevision;
    expect(before).toBe(w.signer.revision);
  });
});
