// TCP half-close through two agents (app -> outbound agent -> inbound agent -> service): a FIN is
// relayed as a FIN in either direction, through both listeners, and the other direction keeps
// flowing until it ends too. socat -t 3 is the outside client that ends its request with a FIN.
import { execFile } from 'node:child_process';
import * as net from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import {
  agentConfig,
  agentDeps,
  echoServer,
  node,
  world,
  withTimeout,
  type World,
} from './fixtures/harness.js';

const run = promisify(execFile);

let w: World;
let echo: Awaited<ReturnType<typeof echoServer>>;
let banner: net.Server;
/** What the banner service read from each connection until the client's FIN. */
const bannerHeard: Promise<string>[] = [];
let server: Agent;
let client: Agent;

beforeAll(async () => {
  try {
    await run('which', ['socat']);
  } catch {
    throw new Error('socat is required for this test (apt-get install -y socat)');
  }
  w = await world('server');
  echo = await echoServer();
  // Speaks first, then ends its side at once, and still reads what the client sends after that.
  banner = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    bannerHeard.push(
      new Promise((r) =>
        s.once('end', () => {
          r(Buffer.concat(parts).toString());
          s.destroy();
        }),
      ),
    );
    s.end('banner, then FIN\n');
  });
  await new Promise<void>((r) => banner.listen(0, '127.0.0.1', r));
  const bannerPort = (banner.address() as net.AddressInfo).port;
  server = await Agent.start(
    agentConfig(w, {
      inbound: [
        { name: 'echo', listen: '127.0.0.1:0', forward: `127.0.0.1:${echo.port}`, allow: [node('*')] },
        { name: 'banner', listen: '127.0.0.1:0', forward: `127.0.0.1:${bannerPort}`, allow: [node('*')] },
      ],
    }),
    agentDeps(w),
  );
  const leaf = await w.pki.issue(node('client'), { name: 'client' });
  const cw = { ...w, self: leaf };
  client = await Agent.start(
    agentConfig(cw, {
      outbound: [
        {
          name: 'echo',
          listen: '127.0.0.1:0',
          connect: `127.0.0.1:${server.inbound.get('echo')!.port}`,
          expect: node('server'),
        },
        {
          name: 'banner',
          listen: '127.0.0.1:0',
          connect: `127.0.0.1:${server.inbound.get('banner')!.port}`,
          expect: node('server'),
        },
      ],
    }),
    agentDeps(cw),
  );
});

afterAll(async () => {
  await client?.stop();
  await server?.stop();
  await echo?.close();
  await new Promise<void>((r) => (banner ? banner.close(() => r()) : r()));
  await w?.cleanup();
});

/** Everything `s` reads until its peer's FIN. */
function readToEnd(s: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.once('end', () => resolve(Buffer.concat(parts).toString()));
    s.once('error', reject);
  });
}

describe('TCP half-close through two agents', () => {
  it('printf hello | socat -t 3 - TCP:<outbound> gets the echo service reply', async () => {
    const port = client.outbound.get('echo')!.port;
    const r = await run('sh', ['-c', `printf hello | timeout 10 socat -t 3 - TCP:127.0.0.1:${port}`]);
    expect(r.stdout).toBe('hello');
  });

  it('the client ends its request with a FIN and still reads the whole reply, then the FIN', async () => {
    const port = client.outbound.get('echo')!.port;
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const request = Buffer.alloc(256 * 1024, 0x61).toString() + 'end of request';
    const closed = new Promise((r) => s.once('close', r));
    const reply = readToEnd(s);
    s.end(request);
    expect(await withTimeout(reply, 10_000, 'reply then FIN')).toBe(request);
    await withTimeout(closed, 5000, 'closed once both ended');
  });

  it('the service ends first: its FIN reaches the client, which still sends after it', async () => {
    const port = client.outbound.get('banner')!.port;
    const before = bannerHeard.length;
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const closed = new Promise((r) => s.once('close', r));
    const got = readToEnd(s);
    expect(await withTimeout(got, 10_000, 'banner then FIN')).toBe('banner, then FIN\n');
    s.end('sent after the service FIN');
    await withTimeout(
      (async () => {
        while (bannerHeard.length === before) await new Promise((r) => setTimeout(r, 10));
      })(),
      5000,
      'service connection',
    );
    expect(await withTimeout(bannerHeard[before]!, 10_000, 'service heard the client')).toBe(
      'sent after the service FIN',
    );
    await withTimeout(closed, 5000, 'closed once both ended');
    await w.events.waitFor(
      (e) => e['event.action'] === 'connection.closed' && e['network.direction'] === 'inbound',
    );
  });
});
