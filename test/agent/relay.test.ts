// The relay between the TLS side and the local app, on real loopback sockets: bytes both ways in
// order, backpressure (a slow reader pauses the other side instead of buffering without bound),
// end and error passed on, one close report, idle timeout and deadline, and no closures of its own
// per connection (its listeners are shared by every relay).
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Relay, relay, type RelayOptions } from '../../agent/relay.js';
import { withTimeout } from './fixtures/harness.js';

/** A connected pair of loopback sockets: [ours, theirs]. */
async function pair(allowHalfOpen = false): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer({ allowHalfOpen });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const theirs = new Promise<net.Socket>((r) => server.once('connection', r));
  const ours = net.connect({
    port: (server.address() as net.AddressInfo).port,
    host: '127.0.0.1',
    allowHalfOpen,
  });
  await new Promise((r) => ours.once('connect', r));
  const t = await theirs;
  server.close();
  return [ours, t];
}

const open: net.Socket[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.destroy();
});

interface Probe extends RelayOptions {
  closes: [number, number][];
  idle: number;
  deadlines: number;
}

function probe(idleTimeout = 60_000, deadline = 60_000): Probe {
  return {
    idleTimeout,
    deadline,
    closes: [],
    idle: 0,
    deadlines: 0,
    onIdle() {
      this.idle += 1;
    },
    onDeadline() {
      this.deadlines += 1;
    },
    onClose(rx, tx) {
      this.closes.push([rx, tx]);
    },
  };
}

/**
 * peerA <-> secure ~ relay ~ plain <-> peerB: `peerA` stands for the remote TLS peer, `peerB`
 * for the local app.
 */
async function relayed(
  o: RelayOptions,
  halfOpen = false,
): Promise<{
  peerA: net.Socket;
  peerB: net.Socket;
  secure: net.Socket;
  plain: net.Socket;
  r: Relay;
}> {
  const [peerA, secure] = await pair(halfOpen);
  const [plain, peerB] = await pair(halfOpen);
  open.push(peerA, peerB, secure, plain);
  peerA.on('error', () => undefined);
  peerB.on('error', () => undefined);
  return { peerA, peerB, secure, plain, r: new Relay(secure, plain, o) };
}

function collect(s: net.Socket, bytes: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let n = 0;
    s.on('data', (d: Buffer) => {
      parts.push(d);
      n += d.length;
      if (n >= bytes) resolve(Buffer.concat(parts));
    });
  });
}

/** Everything `s` reads until its peer's FIN. */
function collectAll(s: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.once('end', () => resolve(Buffer.concat(parts).toString()));
  });
}

describe('relay', () => {
  it('carries bytes both ways, in order', async () => {
    const { peerA, peerB } = await relayed(probe());
    const up = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
    const down = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7) % 253));
    const gotUp = collect(peerB, up.length);
    const gotDown = collect(peerA, down.length);
    peerA.write(up);
    peerB.write(down);
    expect((await withTimeout(gotUp, 5000, 'up')).equals(up)).toBe(true);
    expect((await withTimeout(gotDown, 5000, 'down')).equals(down)).toBe(true);
  });

  it('pauses the sender side while the receiver does not read, and loses nothing', async () => {
    const { peerA, peerB, secure } = await relayed(probe());
    peerB.pause();
    const big = Buffer.alloc(32 * 1024 * 1024, 0x5a);
    peerA.write(big);
    const deadline = Date.now() + 5000;
    while (!secure.isPaused() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(secure.isPaused()).toBe(true);
    // Backpressure holds: the relay has not swallowed the whole transfer into memory.
    expect(secure.bytesRead).toBeLessThan(big.length);
    const got = collect(peerB, big.length);
    peerB.resume();
    const all = await withTimeout(got, 20_000, 'drained');
    expect(all.length).toBe(big.length);
    expect(all.every((b) => b === 0x5a)).toBe(true);
  });

  it('passes an end on, and reports the close once with the TLS side byte counts', async () => {
    const p = probe();
    const { peerA, peerB } = await relayed(p);
    const ended = new Promise((r) => peerA.once('end', r));
    peerA.resume();
    const got = collect(peerB, 5);
    peerA.write('hello');
    await got;
    peerB.end('bye');
    await withTimeout(ended, 5000, 'end passed on');
    await withTimeout(
      (async () => {
        while (p.closes.length === 0) await new Promise((r) => setTimeout(r, 10));
      })(),
      5000,
      'close reported',
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(p.closes).toEqual([[5, 3]]);
  });

  for (const first of ['peerA', 'peerB'] as const) {
    it(`half-close: a FIN from ${first} arrives as a FIN, the other direction keeps flowing until it ends too`, async () => {
      const p = probe();
      const sides = await relayed(p, true);
      const ender = sides[first];
      const answerer = first === 'peerA' ? sides.peerB : sides.peerA;
      const request = collectAll(answerer);
      ender.end('request');
      expect(await withTimeout(request, 5000, 'request then FIN')).toBe('request');
      // The ender's side is half-closed, not gone: the reply still reaches it.
      const reply = collectAll(ender);
      answerer.write('reply, ');
      await new Promise((r) => setTimeout(r, 50));
      answerer.end('then FIN');
      expect(await withTimeout(reply, 5000, 'reply then FIN')).toBe('reply, then FIN');
      await withTimeout(
        (async () => {
          while (p.closes.length === 0) await new Promise((r) => setTimeout(r, 10));
        })(),
        5000,
        'close reported once both directions ended',
      );
      expect(sides.secure.destroyed && sides.plain.destroyed).toBe(true);
      expect(p.closes.length).toBe(1);
    });
  }

  it('half-close: a reset on the still-open direction cuts the other side at once', async () => {
    const p = probe();
    const { peerA, peerB } = await relayed(p, true);
    const request = collectAll(peerB);
    peerA.end('request');
    await withTimeout(request, 5000, 'request then FIN');
    const cut = new Promise((r) => peerA.once('close', r));
    peerB.resetAndDestroy();
    await withTimeout(cut, 5000, 'reset passed on');
    expect(p.closes.length).toBe(1);
  });

  it('an error on one side destroys the other', async () => {
    const { plain, secure, peerA } = await relayed(probe());
    const closed = new Promise((r) => peerA.once('close', r));
    plain.destroy(new Error('boom'));
    await withTimeout(closed, 5000, 'other side cut');
    expect(secure.destroyed).toBe(true);
  });

  it('closes after the idle timeout and at the deadline', async () => {
    const idle = probe(150, 60_000);
    const a = await relayed(idle);
    await withTimeout(new Promise((r) => a.peerA.once('close', r)), 5000, 'idle close');
    expect(idle.idle).toBe(1);
    expect(idle.deadlines).toBe(0);

    const busy = probe(60_000, 300);
    const b = await relayed(busy);
    b.peerB.on('data', () => undefined);
    const t = setInterval(() => b.peerA.write('x'), 20);
    await withTimeout(new Promise((r) => b.peerA.once('close', r)), 5000, 'deadline close');
    clearInterval(t);
    expect(busy.deadlines).toBe(1);
    expect(busy.idle).toBe(0);
  });

  it('destroy() cuts both sides; the returned function of relay() does the same', async () => {
    const a = await relayed(probe());
    const both = Promise.all([
      new Promise((r) => a.peerA.once('close', r)),
      new Promise((r) => a.peerB.once('close', r)),
    ]);
    a.r.destroy();
    await withTimeout(both, 5000, 'both cut');

    const [peerA, secure] = await pair();
    const [plain, peerB] = await pair();
    open.push(peerA, peerB, secure, plain);
    const cut = relay(secure, plain, probe());
    const closed = new Promise((r) => peerB.once('close', r));
    cut();
    await withTimeout(closed, 5000, 'cut');
  });

  it('holds no closure of its own per connection: every relay shares its listeners', async () => {
    const a = await relayed(probe());
    const b = await relayed(probe());
    for (const ev of ['data', 'end', 'error', 'close', 'drain', 'timeout']) {
      const la = a.secure.listeners(ev).at(-1);
      const lb = b.secure.listeners(ev).at(-1);
      expect(la).toBeTypeOf('function');
      expect(la).toBe(lb);
      expect(a.plain.listeners(ev).includes(la as never) || ev === 'timeout').toBe(true);
    }
  });
});
