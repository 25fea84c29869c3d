// kill -9 of the SIEM process under ingest load loses no acknowledged event, and a subscribed
// agent resumes from its revision (a delta, not a new snapshot) once the SIEM is back.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceId } from '../../common/identity.js';
import { openSqliteStoreSync } from '../../siem/store/index.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { EDGEWARD } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { adminCreds, call, enrollAs, subscriber, waitFor } from '../siem/service/setup.js';

const TD = 'factory.example';
let ca: TestCa;
const procs: ChildProcess[] = [];

function serve(args: string[]): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [EDGEWARD, 'siem', 'serve', ...args], {
    env: { ...process.env, EDGEWARD_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.push(proc);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`SIEM not ready:\n${out}\n${err}`)), 30_000);
    proc.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (https:\/\/\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve({ proc, url: m[1] });
      }
    });
    proc.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`SIEM exited with ${code}:\n${out}\n${err}`));
    });
  });
}

beforeAll(async () => {
  ca = await startTestCa();
});
afterAll(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await ca?.stop();
});

describe('SIEM crash', () => {
  it('kill -9 under load loses no acknowledged event; agents re-sync from their revision', async () => {
    const dir = tempDir('edgeward-siem-kill-');
    const data = join(dir, 'siem');
    const base = ['--data', data, '--ca', ca.url, '--fingerprint', ca.fingerprint];
    const first = await serve([
      ...base,
      '--listen',
      '127.0.0.1:0',
      '--token-file',
      await ca.tokenFile(serviceId(TD, 'siem')),
    ]);
    const port = new URL(first.url).port;
    const node = await enrollAs(ca, `spiffe://${TD}/node/n1`, join(dir, 'n1'));
    const admin = adminCreds(ca);
    const sub = await subscriber(first.url, node, join(dir, 'agent'), TD);
    try {
      const made = await call(`${first.url}/v1/decisions`, admin, {
        body: {
          scope: { type: 'ip', value: '198.51.100.1' },
          action: 'quarantine',
          ttl: '1h',
          reason: 'before',
        },
      });
      expect(made.status).toBe(201);
      const rev1 = (made.json?.['decision'] as { revision: number }).revision;
      await waitFor('agent at the first revision', () => sub.store.revision === rev1);

      // Load: 4 closed loops of 100-event batches, each batch with its own source identity.
      const acked: number[] = [];
      let next = 0;
      let stop = false;
      const loop = async (): Promise<void> => {
        while (!stop) {
          const k = next++;
          const t0 = Date.now() - 10_000;
          const batch = Array.from({ length: 100 }, (_, i) => ({
            '@timestamp': t0 + i,
            'event.action': 'connection.accepted',
            'source.identity': `spiffe://${TD}/device/b${k}`,
            'source.port': 1024 + i,
          }));
          try {
            const r = await call(`${first.url}/v1/events`, node, { body: batch });
            if (r.status === 200) acked.push(k);
          } catch {
            return; // the SIEM is gone
          }
        }
      };
      const loops = Array.from({ length: 4 }, loop);
      await waitFor('some batches acknowledged', () => acked.length >= 20, 20_000);
      first.proc.kill('SIGKILL');
      await new Promise((r) => first.proc.once('exit', r));
      stop = true;
      await Promise.all(loops);
      expect(acked.length).toBeGreaterThanOrEqual(20);

      const store = openSqliteStoreSync(join(data, 'siem.db'));
      try {
        for (const k of acked) {
          const got = store.timeline({
            entity: 'source.identity',
            value: `spiffe://${TD}/device/b${k}`,
            limit: 1000,
          });
          expect({ k, n: got.length }).toEqual({ k, n: 100 });
        }
      } finally {
        store.close();
      }

      // Back on the same port, without a token: the identity and the revision survived.
      const second = await serve([...base, '--listen', `127.0.0.1:${port}`]);
      const health = await call(`${second.url}/healthz`, undefined);
      expect(health.json?.['revision']).toBe(rev1);
      await waitFor('agent reconnected', () => sub.client.connected, 15_000);
      const after = await call(`${second.url}/v1/decisions`, admin, {
        body: {
          scope: { type: 'ip', value: '198.51.100.2' },
          action: 'quarantine',
          ttl: '1h',
          reason: 'after',
        },
      });
      const rev2 = (after.json?.['decision'] as { revision: number }).revision;
      expect(rev2).toBe(rev1 + 1);
      await waitFor('agent applied the new revision', () => sub.store.revision === rev2, 15_000);
      expect(sub.applied.at(-1)).toEqual({ kind: 'delta', revision: rev2 });
      expect(sub.store.current?.decisions.map((d) => d.scope.value).sort()).toEqual([
        '198.51.100.1',
        '198.51.100.2',
      ]);
      second.proc.kill('SIGTERM');
      await new Promise((r) => second.proc.once('exit', r));
    } finally {
      sub.client.stop();
    }
  });
});
