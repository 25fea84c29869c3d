// The decision stream's SSE adapter over a real hub and SQLite store: the bytes of each frame
// (first frames, deltas, ready, heartbeats), resuming, subscribers dropped when slow, out of
// order or resynced, the stream limit, and the agent ledger kept as streams open and close.
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyDecisions } from '../../../common/decision-jws.js';
import { EdgewardError } from '../../../common/errors.js';
import { silentLogger } from '../../../common/log.js';
import { DEFAULT_SETTINGS } from '../../../policies/index.js';
import { ResponseEngine } from '../../../siem/playbooks/index.js';
import { DecisionHub } from '../../../siem/service/hub.js';
import { SseStreams, sseComment, sseFrame, type Subscriber } from '../../../siem/service/sse.js';
import { openSqliteStore } from '../../../siem/store/index.js';
import { tempDir } from '../../helpers/tmp.js';

const TD = 'factory.example';
const N1 = `spiffe://${TD}/node/n1`;
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });

function setup(maxSubscribers?: number) {
  const store = openSqliteStore(join(tempDir('edgeward-sse-'), 'siem.db'), { synchronous: 'NORMAL' });
  const engine = new ResponseEngine({
    trustDomain: TD,
    config: { settings: DEFAULT_SETTINGS, playbooks: [] },
  });
  const t = Date.UTC(2026, 0, 1);
  const now = () => t;
  const hub = new DecisionHub({
    engine,
    store,
    signer: { key: privateKey, kid: 'k1' },
    now,
    log: silentLogger,
  });
  const streams = new SseStreams({ hub, now, ...(maxSubscribers !== undefined ? { maxSubscribers } : {}) });
  hub.addPublisher(streams);
  const quarantine = (ip: string) =>
    hub.change((e, at) =>
      e.createManual(
        { scope: { type: 'ip', value: ip }, action: 'quarantine', ttlMs: 60_000, reason: 'test' },
        at,
      ),
    );
  return { store, hub, streams, now, quarantine };
}

/** A subscriber that keeps the raw bytes written to it; `room` frames at most. */
function sub(identity = N1, room = Infinity) {
  const frames: string[] = [];
  let closed = false;
  const s: Subscriber = {
    identity,
    sent: -1,
    send(f) {
      if (closed || frames.length >= room) return false;
      frames.push(f);
      return true;
    },
    close() {
      closed = true;
    },
  };
  return { s, frames, isClosed: () => closed };
}

const JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

describe('SSE framing', () => {
  it('writes an id, an event and one data line, and refuses a data line with a newline', async () => {
    expect(sseFrame('delta', 'a.b.c', 7)).toBe('id: 7\nevent: delta\ndata: a.b.c\n\n');
    expect(sseFrame('ready', '{"revision":0}')).toBe('event: ready\ndata: {"revision":0}\n\n');
    expect(() => sseFrame('delta', 'a\nb')).toThrow(TypeError);
    expect(() => sseFrame('de\rlta', 'a')).toThrow(TypeError);
    expect(sseComment('hb 3\nevent: x')).toBe(': hb 3 event: x\n\n');
  });
});

describe('SseStreams', () => {
  it('opens with a snapshot and ready, then carries each change as a delta frame', async () => {
    const h = setup();
    const a = sub();
    await h.streams.subscribe(a.s, null);
    await h.quarantine('192.0.2.1');
    await h.quarantine('192.0.2.2');
    await h.hub.settled();
    h.streams.heartbeat();
    expect(a.frames).toHaveLength(5);
    const [snapshot, ready, d1, d2, hb] = a.frames as [string, string, string, string, string];
    expect(snapshot).toMatch(/^id: 0\nevent: snapshot\ndata: [^\n]+\n\n$/);
    expect(ready).toBe('event: ready\ndata: {"revision":0,"kid":"k1"}\n\n');
    expect(d1).toMatch(/^id: 1\nevent: delta\ndata: [^\n]+\n\n$/);
    expect(d2).toMatch(/^id: 2\nevent: delta\ndata: [^\n]+\n\n$/);
    expect(hb).toBe(': hb 2\n\n');
    let last: number | null = null;
    for (const f of [snapshot, d1, d2]) {
      const jws = /data: (.*)/.exec(f)?.[1] ?? '';
      expect(jws).toMatch(JWS);
      const d = await verifyDecisions(jws, {
        publicKey,
        trustDomain: TD,
        lastApplied: last,
        now: h.now(),
        kid: 'k1',
      });
      last = d.kind === 'snapshot' ? d.set.revision : d.delta.revision;
    }
    expect(last).toBe(2);
    expect(h.hub.ledger.list(h.now()).find((x) => x.identity === N1)?.connected).toBe(1);
    h.streams.unsubscribe(a.s);
    expect(h.streams.subscribers).toBe(0);
    expect(h.hub.ledger.list(h.now()).find((x) => x.identity === N1)?.connected).toBe(0);
    await h.store.close();
  });

  it('resumes with the delta since the revision held, or only ready when current', async () => {
    const h = setup();
    for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) await h.quarantine(ip);
    const behind = sub();
    await h.streams.subscribe(behind.s, 1);
    expect(behind.frames[0]).toMatch(/^id: 3\nevent: delta\n/);
    expect(behind.frames[1]).toBe('event: ready\ndata: {"revision":3,"kid":"k1"}\n\n');
    const current = sub();
    await h.streams.subscribe(current.s, 3);
    expect(current.frames).toEqual(['event: ready\ndata: {"revision":3,"kid":"k1"}\n\n']);
    await h.store.close();
  });

  it('drops a subscriber that cannot keep up, and one that is out of order', async () => {
    const h = setup();
    const slow = sub('spiffe://factory.example/node/slow', 2);
    const odd = sub('spiffe://factory.example/node/odd');
    await h.streams.subscribe(slow.s, null);
    await h.streams.subscribe(odd.s, null);
    odd.s.sent = -1; // holds less than the next change follows from (revision 0)
    await h.quarantine('192.0.2.9');
    await h.hub.settled();
    expect(slow.isClosed()).toBe(true);
    expect(odd.isClosed()).toBe(true);
    expect(odd.frames).toHaveLength(2);
    expect(h.streams.subscribers).toBe(0);
    expect(h.streams.dropped).toBe(2);
    await h.store.close();
  });

  it('drops every subscriber when the hub cannot sign a change, so each resyncs', async () => {
    const h = setup();
    const a = sub();
    await h.streams.subscribe(a.s, null);
    h.hub.setSigner({ key: generateKeyPairSync('ed25519').privateKey, kid: 'bad' });
    await h.quarantine('192.0.2.1');
    await h.hub.settled();
    expect(a.isClosed()).toBe(true);
    expect(a.frames).toHaveLength(2);
    await h.store.close();
  });

  it('refuses a stream past the limit with ERR_SIEM_STREAM_LIMIT, and close ends them all', async () => {
    const h = setup(1);
    const a = sub();
    await h.streams.subscribe(a.s, null);
    const refused = await h.streams.subscribe(sub().s, null).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(EdgewardError);
    expect((refused as EdgewardError).code).toBe('ERR_SIEM_STREAM_LIMIT');
    h.hub.close();
    expect(a.isClosed()).toBe(true);
    expect(h.streams.subscribers).toBe(0);
    await h.store.close();
  });
});
