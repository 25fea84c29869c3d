// The hardened HTTPS server every service is built on, over real TLS sockets: TLS 1.3 only, the
// coded answers to oversized, malformed, poisoned and misrouted requests, and the deadlines that
// close slow and idle clients.
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgewardError } from '../../common/errors.js';
import { createHttpsServer, holdOpen, listeningUrl, type HttpsApp } from '../../common/http-server.js';
import { silentLogger } from '../../common/log.js';
import { opensslRootCa, type Issued } from '../helpers/host-cert.js';
import { rawRequest } from '../helpers/https.js';
import { tempDir } from '../helpers/tmp.js';

let host: Issued;
let rootPem: string;
let app: HttpsApp;
let url: string;
let port: number;
const refusals: string[] = [];

beforeAll(async () => {
  const root = opensslRootCa(tempDir());
  rootPem = root.certPem;
  host = root.issue('localhost');
  app = createHttpsServer({
    log: silentLogger,
    tls: { key: host.keyPem, cert: host.certPem },
    bodyLimit: 1024,
    timeouts: { requestMs: 1500, headersMs: 1500, idleMs: 1000, keepAliveMs: 600, checkEveryMs: 100 },
    onRefusal: (e, _err, _req, reply) => {
      refusals.push(e.code);
      if (e.code === 'ERR_RATE_LIMITED') void reply.header('retry-after', '7');
    },
  });
  app.post('/echo', { schema: { body: { type: 'object' } } }, async (req) => ({ got: req.body }));
  app.get('/boom', async () => {
    throw new Error('secret detail');
  });
  app.get('/limited', async () => {
    throw new EdgewardError('ERR_RATE_LIMITED');
  });
  app.get('/stream', (req, reply) => {
    reply.hijack();
    holdOpen(req);
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
    reply.raw.write(': open\n\n');
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  ({ url, port } = listeningUrl(app, '127.0.0.1', 0));
});
afterAll(async () => {
  await app.close();
});

/** A raw TLS 1.3 socket to the server, and everything it receives until it closes. */
function open(): Promise<{ socket: TLSSocket; received: Promise<{ bytes: string; closedAfterMs: number }> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: rootPem }, () => {
      const t0 = Date.now();
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      const received = new Promise<{ bytes: string; closedAfterMs: number }>((done) =>
        socket.on('close', () =>
          done({ bytes: Buffer.concat(chunks).toString('latin1'), closedAfterMs: Date.now() - t0 }),
        ),
      );
      socket.on('error', () => undefined);
      resolve({ socket, received });
    });
    socket.once('error', reject);
  });
}

describe('TLS', () => {
  it('speaks TLS 1.3 only: a TLS 1.2 client is refused in the handshake', async () => {
    const err = await new Promise<Error>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, maxVersion: 'TLSv1.2' }, () => {
        s.destroy();
        reject(new Error('a TLS 1.2 handshake succeeded'));
      });
      s.on('error', resolve);
    });
    expect(String((err as NodeJS.ErrnoException).code)).toMatch(/ERR_SSL|ECONNRESET/);
  });

  it('negotiates TLS 1.3', async () => {
    const { socket } = await open();
    expect(socket.getProtocol()).toBe('TLSv1.3');
    socket.destroy();
  });
});

describe('coded answers', () => {
  const post = (body: string | Buffer, headers: Record<string, string> = {}) =>
    rawRequest(`${url}/echo`, { method: 'POST', body, headers, ca: rootPem });

  it('answers a well-formed request', async () => {
    const r = await post('{"a":1}');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ got: { a: 1 } });
  });

  it('refuses a body over the limit with ERR_INPUT_TOO_LARGE (413)', async () => {
    const r = await post(JSON.stringify({ pad: 'x'.repeat(2048) }));
    expect(r.status).toBe(413);
    expect(r.json).toEqual({
      statusCode: 413,
      code: 'ERR_INPUT_TOO_LARGE',
      error: 'Payload Too Large',
      message: 'request too large',
    });
    expect(refusals).toContain('ERR_INPUT_TOO_LARGE');
  });

  it('refuses malformed JSON with ERR_INPUT_MALFORMED (400)', async () => {
    const r = await post('{"a":');
    expect(r.status).toBe(400);
    expect(r.json?.['code']).toBe('ERR_INPUT_MALFORMED');
    expect(r.json?.['statusCode']).toBe(400);
    expect(Object.keys(r.json ?? {}).sort()).toEqual(['code', 'error', 'message', 'statusCode']);
  });

  it('refuses prototype poisoning with ERR_INPUT_MALFORMED (400)', async () => {
    for (const body of ['{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"admin":true}}}']) {
      const r = await post(body);
      expect(r.status).toBe(400);
      expect(r.json?.['code']).toBe('ERR_INPUT_MALFORMED');
    }
  });

  it('refuses a content type it does not parse with ERR_INPUT_UNSUPPORTED_MEDIA (415)', async () => {
    const r = await post('a=1', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(r.status).toBe(415);
    expect(r.json?.['code']).toBe('ERR_INPUT_UNSUPPORTED_MEDIA');
  });

  it('answers an unknown route with ERR_NOT_FOUND (404)', async () => {
    const r = await rawRequest(`${url}/nowhere?x=1`, { ca: rootPem });
    expect(r.status).toBe(404);
    expect(r.json).toEqual({
      statusCode: 404,
      code: 'ERR_NOT_FOUND',
      error: 'Not Found',
      message: 'not found',
    });
  });

  it('answers a failure with ERR_INTERNAL (500) and keeps the detail in', async () => {
    const r = await rawRequest(`${url}/boom`, { ca: rootPem });
    expect(r.status).toBe(500);
    expect(r.json).toEqual({
      statusCode: 500,
      code: 'ERR_INTERNAL',
      error: 'Internal Server Error',
      message: 'internal error',
    });
    expect(r.body.toString()).not.toContain('secret detail');
  });

  it('lets the service add headers to a refusal', async () => {
    const r = await rawRequest(`${url}/limited`, { ca: rootPem });
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('7');
    expect(r.json?.['code']).toBe('ERR_RATE_LIMITED');
  });
});

describe('deadlines', () => {
  it('answers a client that trickles its headers with 408 and closes', async () => {
    const { socket, received } = await open();
    const line = 'GET /echo HTTP/1.1\r\nhost: localhost\r\nx-slow: ';
    let i = 0;
    // One byte every 100 ms: never idle for long, but the headers never end.
    const drip = setInterval(() => {
      if (!socket.destroyed) socket.write(i < line.length ? (line[i++] as string) : 'a');
    }, 100);
    const r = await received;
    clearInterval(drip);
    expect(r.bytes).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
  });

  it('answers a client that trickles its body with 408 and closes', async () => {
    const { socket, received } = await open();
    socket.write(
      'POST /echo HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 900\r\n\r\n',
    );
    const drip = setInterval(() => {
      if (!socket.destroyed) socket.write(' ');
    }, 100);
    const r = await received;
    clearInterval(drip);
    expect(r.bytes).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
  });

  it('closes a connection that says nothing', async () => {
    const { received } = await open();
    const r = await received;
    expect(r.bytes === '' || r.bytes.startsWith('HTTP/1.1 408 ')).toBe(true);
  });

  it('closes a keep-alive connection left idle after its answer', async () => {
    const { socket, received } = await open();
    socket.write('GET /nowhere HTTP/1.1\r\nhost: localhost\r\n\r\n');
    const r = await received;
    expect(r.bytes).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
    expect(r.bytes).toContain('"code":"ERR_NOT_FOUND"');
  });

  it('keeps a held-open stream past the idle deadline', async () => {
    const { socket, received } = await open();
    socket.write('GET /stream HTTP/1.1\r\nhost: localhost\r\n\r\n');
    const outcome = await Promise.race([
      received.then(() => 'closed'),
      new Promise((r) => setTimeout(() => r('open'), 2500)),
    ]);
    expect(outcome).toBe('open');
    socket.destroy();
  });
});
