// The reporter against a real mTLS HTTPS ingest server: batches as JSON arrays, spools while the
// SIEM is down, replays in order when it is back, and never sends the SIEM-owned fields.
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log.js';
import {
  httpsBatchSender,
  MAX_RETRY_AFTER_S,
  parseRetryAfter,
  Reporter,
  retryDelayMs,
} from '../../client/reporter.js';
import { loadIdentityMaterial } from '../../agent/index.js';
import { newBatchId, Spool } from '../../client/spool.js';
import { node, world, withTimeout, type World } from '../agent/fixtures/harness.js';

let w: World;
let siem: https.Server;
let port: number;
let up = false;
const received: Record<string, unknown>[][] = [];
const peers: string[] = [];
/** When each batch of "throttle" events arrived. */
const throttleAnswers: number[] = [];

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
          res.writeHead(400, { 'content-type': 'application/json' }).end(
            JSON.stringify({
              statusCode: 400,
              code: 'ERR_SIEM_EVENT_INVALID',
              error: 'Bad Request',
              message: 'x',
            }),
          );
          return;
        }
        // A body over the SIEM's limit: more than four events of the "big" kind.
        const body = Buffer.concat(chunks);
        if (body.includes('"big') && (JSON.parse(body.toString()) as unknown[]).length > 4) {
          res.writeHead(413).end();
          return;
        }
        // Over its budget: the first time each "throttle" batch arrives, 429 with Retry-After.
        if (body.includes('"throttle') && throttleAnswers.length === 0) {
          throttleAnswers.push(Date.now());
          res
            .writeHead(429, { 'content-type': 'application/json', 'retry-after': '2' })
            .end(
              JSON.stringify({ statusCode: 429, code: 'ERR_SIEM_REPORTER_RATE', error: 'x', message: 'x' }),
            );
          return;
        }
        if (body.includes('"throttle')) throttleAnswers.push(Date.now());
        if (body.includes('"single-too-big"')) {
          res.writeHead(413).end();
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
    expect([...r.refusedByStatus]).toEqual([[400, 1]]);
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

  it('splits a batch the SIEM finds too large (413) instead of dropping it; drops one event too large alone', async () => {
    const { spool, r } = await reporterTo('spool-413.sqlite', 16);
    up = true;
    const before = received.flat().length;
    for (let i = 0; i < 16; i++) r.emit({ ...ev(200 + i), 'event.reason': `big${i}` } as never);
    r.emit({ ...ev(300), 'event.reason': 'single-too-big' } as never);
    r.start();
    await withTimeout(
      (async () => {
        while (received.flat().length - before < 16 || r.refused < 1)
          await new Promise((res) => setTimeout(res, 50));
      })(),
      15_000,
      'split replay',
    );
    const got = received.flat().slice(before);
    expect(got.map((e) => e['event.reason'])).toEqual(Array.from({ length: 16 }, (_, i) => `big${i}`));
    expect(received.slice(-4).every((b) => b.length <= 4)).toBe(true);
    expect(r.refused).toBe(1);
    expect([...r.refusedByStatus]).toEqual([[413, 1]]);
    expect(spool.size).toBe(0);
    await r.stop();
    spool.close();
  });

  it('keeps a batch the SIEM answers 429 and sends it again only after Retry-After, once', async () => {
    const { spool, r } = await reporterTo('spool-429.sqlite', 10);
    up = true;
    const before = received.flat().length;
    for (let i = 0; i < 5; i++) r.emit({ ...ev(400 + i), 'event.reason': `throttle${i}` } as never);
    r.start();
    await withTimeout(
      (async () => {
        while (received.flat().length - before < 5) await new Promise((res) => setTimeout(res, 50));
      })(),
      15_000,
      'throttled replay',
    );
    expect(throttleAnswers.length).toBe(2);
    expect((throttleAnswers[1] as number) - (throttleAnswers[0] as number)).toBeGreaterThanOrEqual(2000);
    expect(
      received
        .flat()
        .slice(before)
        .map((e) => e['event.reason']),
    ).toEqual(Array.from({ length: 5 }, (_, i) => `throttle${i}`));
    expect([...r.throttled]).toEqual([['ERR_SIEM_REPORTER_RATE', 1]]);
    expect(r.siemUp).toBe(true);
    expect(r.refused).toBe(0);
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

describe('Retry-After', () => {
  it('reads delta-seconds and HTTP-dates, and nothing else', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:07 GMT', now)).toBe(7);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    for (const bad of [undefined, '', '-1', '1.5', '1e3', '99999999999', 'soon', ['1', '2']])
      expect(parseRetryAfter(bad, now)).toBeUndefined();
  });

  it('waits at least what the SIEM asked, at least 1 s, at most MAX_RETRY_AFTER_S, with bounded jitter', () => {
    expect(retryDelayMs(3, () => 0)).toBe(3000);
    expect(retryDelayMs(3, () => 0.999)).toBe(3749);
    expect(retryDelayMs(0, () => 0)).toBe(1000);
    expect(retryDelayMs(86_400, () => 0)).toBe(MAX_RETRY_AFTER_S * 1000);
    expect(retryDelayMs(86_400, () => 0.999)).toBeLessThan(MAX_RETRY_AFTER_S * 1000 + 5000);
  });
});
