// Decisions: the store keeps the last good verified set on disk with monotonic revisions; the
// SSE stream client applies a snapshot then deltas over mTLS, acknowledges, and resumes.
import { readFile, writeFile } from 'node:fs/promises';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../common/clock.js';
import { jwsDecisionVerifier } from '../../client/decision-verifier.js';
import { SseParser, tokenOf, type SseEvent } from '../../client/decisions-client.js';
import { DecisionStore } from '../../client/decisions-store.js';
import {
  decisionSigner,
  leafClient,
  node,
  startAgent,
  TD,
  world,
  withTimeout,
  type World,
} from '../agent/fixtures/harness.js';

let w: World;
beforeAll(async () => {
  w = await world('dec');
});
afterAll(async () => {
  await w.cleanup();
});

describe('DecisionStore', () => {
  it('persists verified sets, moves only forward, and re-verifies on load', async () => {
    const signer = decisionSigner();
    const verifier = jwsDecisionVerifier({
      publicKey: signer.publicKey,
      trustDomain: TD,
      clock: systemClock,
    });
    const file = join(w.pki.dir, 'store1', 'decisions.json');
    const s = new DecisionStore(file, verifier, TD);
    expect(await s.load()).toBeNull();
    const snap1 = await signer.addSnapshot({ type: 'identity', value: node('x') });
    const first = await s.applySnapshot(snap1);
    expect(first.changed).toBe(true);
    await first.persisted;
    const d2 = await signer.add({ type: 'ip', value: '10.0.0.9' });
    const second = await s.applyDelta(d2);
    expect(s.revision).toBe(2);
    // Enforcement may run before the write lands; the acknowledgement waits for it.
    await second.persisted;
    // Replaying the same delta, or an older snapshot, is a revision error.
    await expect(s.applyDelta(d2)).rejects.toMatchObject({ code: 'ERR_AGENT_DECISION_REVISION' });
    await expect(s.applySnapshot(snap1)).rejects.toMatchObject({ code: 'ERR_AGENT_DECISION_REVISION' });
    const again = new DecisionStore(file, verifier, TD);
    const loaded = await again.load();
    expect(loaded?.revision).toBe(2);
    expect(loaded?.decisions.map((d) => d.scope.value).sort()).toEqual(['10.0.0.9', node('x')].sort());
    // Tampering with the stored file makes it unusable, never silently different.
    const text = await readFile(file, 'utf8');
    await writeFile(
      file,
      text.replace(
        /"snapshot":"([^.]+)\.([^.]+)\./,
        (_m, h: string, p: string) => `"snapshot":"${h}.${p.slice(0, -2)}AA.`,
      ),
    );
    await expect(new DecisionStore(file, verifier, TD).load()).rejects.toMatchObject({
      code: 'ERR_AGENT_DECISION_STORE',
    });
    await writeFile(file, '{"v":1,"snapshot":1,"deltas":[]}');
    await expect(new DecisionStore(file, verifier, TD).load()).rejects.toMatchObject({
      code: 'ERR_AGENT_DECISION_STORE',
    });
  });

  it('refuses forged and foreign-domain tokens as ERR_AGENT_DECISION_INVALID', async () => {
    const signer = decisionSigner();
    const verifier = jwsDecisionVerifier({
      publicKey: signer.publicKey,
      trustDomain: 'other.example',
      clock: systemClock,
    });
    const s = new DecisionStore(join(w.pki.dir, 'store2.json'), verifier, 'other.example');
    await expect(s.applySnapshot(await signer.snapshot())).rejects.toMatchObject({
      code: 'ERR_AGENT_DECISION_INVALID',
    });
    await expect(s.applySnapshot('a.b.c')).rejects.toMatchObject({ code: 'ERR_AGENT_DECISION_INVALID' });
    await expect(s.applyDelta(await signer.add({ type: 'ip', value: '1.2.3.4' }))).rejects.toMatchObject({
      code: 'ERR_AGENT_DECISION_REVISION',
    });
  });

  it('the last good set is enforced at start, before the SIEM is reachable', async () => {
    const victim = await w.pki.issue(node('stored-victim'));
    const dir = join(w.pki.dir, 'offline-state');
    const extra = {
      state: { dir },
      inbound: [
        {
          name: 'in',
          listen: '127.0.0.1:0',
          forward: '127.0.0.1:1',
          allow: ['spiffe://factory.example/node/*'],
        },
      ],
    };
    const a1 = await startAgent(w, extra);
    await a1.applyDecisionToken(
      'snapshot',
      await w.signer.addSnapshot({ type: 'identity', value: victim.id }),
    );
    await a1.stop();
    const a2 = await startAgent(w, extra);
    try {
      expect(a2.enforcer.decisionRevision).toBe(w.signer.revision);
      expect(await leafClient(a2.inbound.get('in')!.port, victim, w.pki.bundlePem).accepted).toBe(false);
      await w.events.waitFor(
        (e) => e['error.code'] === 'ERR_AGENT_QUARANTINED' && e['source.identity'] === victim.id,
      );
    } finally {
      await a2.stop();
    }
  });

  it('the offline path: a local signed decisions file is verified and applied', async () => {
    const signer = decisionSigner();
    const file = join(w.pki.dir, 'offline.jws');
    await writeFile(file, await signer.addSnapshot({ type: 'cidr', value: '10.0.0.0/8' }));
    const a = await startAgent(
      { ...w, signer },
      { state: { dir: join(w.pki.dir, 'offline-file-state') }, decisions: { file } },
    );
    try {
      expect(a.enforcer.decisionRevision).toBe(1);
    } finally {
      await a.stop();
    }
  });
});

describe('SSE', () => {
  it('parses events split across chunks, CRLF, comments and multi-line data', () => {
    const got: SseEvent[] = [];
    const p = new SseParser((e) => got.push(e));
    p.push(': hello\r\nevent: snap');
    p.push('shot\r\nid: 3\r\ndata: a\r\ndata: b\r');
    p.push('\n\r\ndata: x\n\n');
    expect(got).toEqual([
      { event: 'snapshot', data: 'a\nb', id: '3' },
      { event: 'message', data: 'x', id: '3' },
    ]);
    expect(tokenOf('{"jws":"a.b.c"}')).toBe('a.b.c');
    expect(tokenOf(' a.b.c \n')).toBe('a.b.c');
    expect(() => tokenOf('{"nope":1}')).toThrow(
      expect.objectContaining({ code: 'ERR_AGENT_DECISION_STREAM' }),
    );
    expect(() => tokenOf('{bad json')).toThrow(
      expect.objectContaining({ code: 'ERR_AGENT_DECISION_STREAM' }),
    );
  });

  it('refuses unbounded lines', () => {
    const p = new SseParser(() => undefined);
    expect(() => p.push('x'.repeat(17 * 1024 * 1024))).toThrow(
      expect.objectContaining({ code: 'ERR_AGENT_DECISION_STREAM' }),
    );
  });
});

describe('decision stream client', () => {
  it('applies a snapshot then a delta from the SIEM, cuts the live connection and acknowledges', async () => {
    const signer = decisionSigner();
    const siemLeaf = await w.pki.issue('spiffe://factory.example/svc/siem', { name: 'siem' });
    const acks: number[] = [];
    const froms: string[] = [];
    let push: ((s: string) => void) | null = null;
    const siem = https.createServer(
      {
        key: siemLeaf.keyPem,
        cert: siemLeaf.certPem,
        ca: w.pki.bundlePem,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.3',
      },
      (req, res) => {
        if (req.url?.startsWith('/v1/decisions/stream')) {
          froms.push(new URL(req.url, 'https://x').searchParams.get('from') ?? '');
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          push = (s) => res.write(s);
          void signer
            .snapshot()
            .then((t) => res.write(`event: snapshot\nid: ${signer.revision}\ndata: ${t}\n\n`));
          return;
        }
        if (req.url === '/v1/decisions/ack') {
          let body = '';
          req.on('data', (c: Buffer) => (body += c.toString()));
          req.on('end', () => {
            acks.push((JSON.parse(body) as { revision: number }).revision);
            res.writeHead(204).end();
          });
          return;
        }
        res.writeHead(404).end();
      },
    );
    await new Promise<void>((r) => siem.listen(0, '127.0.0.1', r));
    const port = (siem.address() as AddressInfo).port;
    const victim = await w.pki.issue(node('sse-victim'));
    const app = await (await import('../agent/fixtures/harness.js')).echoServer();
    const events = new (await import('../agent/fixtures/harness.js')).EventCapture();
    const a = await startAgent(
      { ...w, signer, events },
      {
        state: { dir: join(w.pki.dir, 'sse-state') },
        siem: { url: `https://127.0.0.1:${port}` },
        inbound: [
          {
            name: 'in',
            listen: '127.0.0.1:0',
            forward: `127.0.0.1:${app.port}`,
            allow: ['spiffe://factory.example/node/*'],
          },
        ],
      },
      { sink: events },
    );
    try {
      await withTimeout(
        (async () => {
          while (acks.length === 0) await new Promise((r) => setTimeout(r, 20));
        })(),
        10_000,
        'snapshot ack',
      );
      expect(acks).toEqual([0]);
      const live = leafClient(a.inbound.get('in')!.port, victim, w.pki.bundlePem);
      expect(await live.accepted).toBe(true);
      const delta = await signer.add({ type: 'identity', value: victim.id });
      push!(`event: delta\nid: 1\ndata: ${JSON.stringify({ jws: delta })}\n\n`);
      await withTimeout(live.closed, 2000, 'cut by streamed decision');
      await withTimeout(
        (async () => {
          while (!acks.includes(1)) await new Promise((r) => setTimeout(r, 20));
        })(),
        5000,
        'delta ack',
      );
      expect(froms[0]).toBe('0');
      await events.waitFor((e) => e['event.action'] === 'decision.applied' && e['decision.revision'] === 1);
    } finally {
      await a.stop();
      await app.close();
      siem.closeAllConnections();
      await new Promise<void>((r) => siem.close(() => r()));
    }
  });
});
