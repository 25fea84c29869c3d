// The dependency tree runs on Node 20 as the README promises: light-my-request (fastify's
// inject) gets a cookie release for Node 18+ through package.json's overrides (cookie 2 says
// Node 22 and is ESM-only, which Node 20 before 20.19 cannot require), and inject still carries
// cookies.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);

describe('Node 20 dependency tree', () => {
  it('light-my-request resolves a cookie release whose engines admit Node 20', () => {
    const lmr = dirname(
      require.resolve('light-my-request/package.json', { paths: [dirname(require.resolve('fastify'))] }),
    );
    const cookieMain = createRequire(join(lmr, 'index.js')).resolve('cookie');
    let dir = dirname(cookieMain);
    while (!dir.endsWith('/cookie')) dir = dirname(dir);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      version: string;
      engines: { node: string };
      type?: string;
    };
    expect(pkg.version).toMatch(/^1\./);
    expect(pkg.engines.node).toBe('>=18');
    expect(pkg.type).not.toBe('module');
  });

  it('fastify inject still sends cookies', async () => {
    const app = Fastify();
    app.get('/', async (req) => ({ cookie: req.headers.cookie ?? null }));
    const r = await app.inject({ method: 'GET', url: '/', cookies: { session: 'abc', theme: 'dark' } });
    expect(r.json()).toEqual({ cookie: 'session=abc; theme=dark' });
    await app.close();
  });
});
