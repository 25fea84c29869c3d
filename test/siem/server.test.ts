// The SIEM's composition root over the stores it is given: a factory other than the default opens
// them (here SQLite files in a folder of its own), ingest and the analyst API answer from them,
// and close() closes them once, after the server.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningSiem } from '../../siem/running-siem.js';
import { sqliteStores, type SiemStoreOptions } from '../../siem/store/stores.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { tempDir } from '../helpers/tmp.js';
import {
  adminCreds,
  call,
  enrollAs,
  enrollSiemIdentity,
  startTestSiem,
  type Creds,
} from './service/setup.js';

const TD = 'factory.example';
let ca: TestCa;
let siem: RunningSiem;
let node: Creds;
let dir: string;
const opened: SiemStoreOptions[] = [];
let closes = 0;

beforeAll(async () => {
  dir = tempDir('edgeward-siem-root-');
  ca = await startTestCa();
  mkdirSync(join(dir, 'elsewhere'), { mode: 0o700 });
  const identity = await enrollSiemIdentity(ca, dir);
  siem = await startTestSiem(dir, identity, ca.url, {
    ingestThread: false,
    stores: async (o) => {
      opened.push(o);
      const s = await sqliteStores({ ...o, dataDir: join(dir, 'elsewhere') });
      return {
        ...s,
        async close() {
          closes++;
          await s.close();
        },
      };
    },
  });
  node = await enrollAs(ca, `spiffe://${TD}/node/n1`, join(dir, 'n1'));
}, 60_000);

afterAll(async () => {
  await siem?.close();
  await ca?.stop();
});

describe('startSiemServer with a store factory', () => {
  it('opens its stores through the factory, with the data folder and durability', () => {
    expect(opened).toEqual([{ dataDir: join(dir, 'siem'), synchronous: 'NORMAL', ingestThread: false }]);
    expect(existsSync(join(dir, 'elsewhere', 'siem.db'))).toBe(true);
    expect(existsSync(join(dir, 'siem', 'siem.db'))).toBe(false);
  });

  it('ingests into them and answers the analyst API from them', async () => {
    const at = Date.now() - 1000;
    const r = await call(`${siem.url}/v1/events`, node, {
      body: [
        {
          '@timestamp': at,
          'event.action': 'handshake.failure',
          'source.ip': '192.0.2.77',
          'event.reason': 'unknown_ca',
        },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ accepted: 1 });
    const t = await call(`${siem.url}/v1/entities/source.ip/192.0.2.77/timeline`, adminCreds(ca));
    expect(t.status).toBe(200);
    expect((t.json?.['events'] as unknown[]).length).toBe(1);
  });

  it('answers an unknown route with the coded 404', async () => {
    const r = await call(`${siem.url}/v1/nothing`, node);
    expect(r.status).toBe(404);
    expect(r.json).toEqual({
      statusCode: 404,
      code: 'ERR_NOT_FOUND',
      error: 'Not Found',
      message: 'not found',
    });
  });

  it('closes the stores once, after the server', async () => {
    await siem.close();
    await siem.close();
    expect(closes).toBe(1);
    const refused = await call(`${siem.url}/healthz`, node).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Error);
  });
});
