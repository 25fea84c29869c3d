// The reporter against a real mTLS HTTPS ingest server: batches as JSON arrays, spools while the
// SIEM is down, replays in order when it is back, and never sends the SIEM-owned fields.
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log.js';
import { httpsBatchSender, Reporter } from '../../client/reporter.js';
import { loadIdentityMaterial } from '../../agent/index.js';
import { newBatchId, Spool } from '../../client/spool.js';
import { node, world, withTimeout, type World } from '../agent/fixtures/harness.js';

let w: World;
let siem: https.Server;
let port: number;
let up = false;
const received: Record<string, unknown>[][] = [];
const peers: string[] = [];

beforeAll(async () => {
  w = await world('reporter');
  const siemLeaf = await w.pki.issue('spiffe://factory.example/svc/siem', { name: 'siem' });
  siem = https.createServer(
    {
      key: siemLeaf.keyPem,
      cert: siemLeaf.certPem,
      ca: w.pki.bundlePem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (!up || req.url !== '/v1/events' || req.method !== 'POST') {
          res.writeHead(503).end();
          return;
        }
        // A batch the SIEM refuses as invalid, whatever the retry.
        if (Buffer.concat(chunks).includes('"poison"')) {
          res.writeHead(400).end();
          return;
        }
        const sock = req.socket as TLSSocket;
        peers.push(String(sock.getPeerCertificate().subjectaltname));
        received.push(JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>[]);
        res.writeHead(202).end();
      });
    },
  );
  await new Promise<void>((r) => siem.listen(0, '127.0.0.1', r));
  port = (siem.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((r) => siem.close(() => r()));
  await w.cleanup();
});

const ev = (i: number): Record<string, unknown> => ({
  '@timestamp': Date.now(),
  'event.action': 'handshake.failure',
  'event.reason': String(i),
  'source.identity': node('x'),
});

/** A reporter with its own spool file, sending to the test SIEM over mTLS as the node. */
async function reporterTo(spoolFile: string, batchMax: number): Promise<{ spool: Spool; r: Reporter }> {
  const m = await loadIdentityMaterial(w.self.dir, w.self.id);
  const spool = new Spool(join(w.pki.dir, spoolFile), { maxEvents: 10_000, maxBytes: 10_000_000 });
  const r = new Reporter({
    spool,
    send: httpsBatchSender({
      url: `https://127.0.0.1:${port}`,
      expect: 'spiffe://factory.example/svc/siem',
      context: () => m.context,
    }),
    batchMax,
    flushInterval: 50,
    log: silentLogger,
  });
  return { spool, r };
}

describe('reporter', () => {
  it('spools while the SIEM is down and replays in order over mTLS once it is back', async () => {
    const { spool, r } = await reporterTo('spool.sqlite', 7);
    for (let i = 0; i < 20; i++) r.emit(ev(i) as never);
    await r.flush();
    expect(r.siemUp).toBe(false);
    expect(spool.size).toBe(20);
    for (let i = 20; i < 30; i++) r.emit(ev(i) as never);
    up = true;
    r.start();
    await withTimeout(
      (async () => {
        while (received.flat().length < 30) await new Promise((res) => setTimeout(res, 50));
      })(),
      15_000,
      'replay',
    );
    const seq = received.flat().map((e) => Number(e['event.reason']));
    expect(seq).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(Math.max(...received.map((b) => b.length))).toBeLessThanOrEqual(7);
    expect(peers.every((p) => p === `URI:${w.self.id}`)).toBe(true);
    expect(received.flat().some((e) => 'observer.identity' in e)).toBe(false);
    expect(spool.size).toBe(0);
    await r.stop();
    spool.close();
  });

  it('drops a batch the SIEM refuses as invalid (4xx) instead of blocking the spool behind it', async () => {
    const { spool, r } = await reporterTo('spool-poison.sqlite', 1);
    up = true;
    const before = received.flat().length;
    r.emit({ ...ev(100), 'event.reason': 'poison' } as never);
    r.emit(ev(101) as never);
    await r.flush();
    expect(r.refused).toBe(1);
    expect(r.siemUp).toBe(true);
    expect(
      received
        .flat()
        .slice(before)
        .map((e) => e['event.reason']),
    ).toEqual(['101']);
    expect(spool.size).toBe(0);
    await r.stop();
    spool.close();
  });

  it('a SIEM presenting another identity is treated as unreachable', async () => {
    const m = await loadIdentityMaterial(w.self.dir, w.self.id);
    const send = httpsBatchSender({
      url: `https://127.0.0.1:${port}`,
      expect: 'spiffe://factory.example/svc/other',
      context: () => m.context,
    });
    await expect(send([ev(1) as never], newBatchId())).rejects.toMatchObject({
      code: 'ERR_AGENT_PEER_MISMATCH',
    });
  });

  it('drops events that do not fit the schema instead of poisoning the batch', async () => {
    const spool = new Spool(join(w.pki.dir, 'spool2.sqlite'), { maxEvents: 100, maxBytes: 1_000_000 });
    const r = new Reporter({
      spool,
      send: () => Promise.reject(new Error('down')),
      batchMax: 10,
      flushInterval: 1000,
      log: silentLogger,
    });
    r.emit({ '@timestamp': Date.now(), 'event.action': 'x', 'observer.identity': node('forged') });
    r.emit({ '@timestamp': Date.now(), 'event.action': 'x', 'no|such': 1 } as never);
    expect(r.invalid).toBe(2);
    await r.stop();
    expect(spool.size).toBe(0);
    spool.close();
  });
});
