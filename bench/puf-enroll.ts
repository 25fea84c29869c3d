// CA-side throughput of the `puf` method: begin (record lookup, nonce, challenge), finish (parse,
// Ed25519 verify with node:crypto) and commit (single-use markers in the real SQLite store).
// Device signatures are computed outside the timed sections: they are the device's work.
// Run: npm run build && node dist/bench/puf-enroll.js [enrollments=20000] [devices=50]
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BeginResult, CsrKey, MethodContext, Verdict } from '../attestation/index.js';
import { openCaStore } from '../ca/index.js';
import { systemClock } from '../common/clock.js';
import { silentLogger } from '../common/log.js';
import { importPufRecord, createPufMethod, signedMessage } from '../attestation/puf/index.js';
import { benchPufDevice, type BenchPufDevice } from './lib.js';

const total = Number(process.argv[2] ?? 20000);
const nDevices = Number(process.argv[3] ?? 50);
const dir = mkdtempSync(join(tmpdir(), 'edgeward-puf-bench-'));
const store = openCaStore(join(dir, 'ca.sqlite'));
const ctx: MethodContext = {
  clock: systemClock,
  log: silentLogger,
  trustDomain: 'factory.example',
  store,
  renewal: false,
  source: '127.0.0.1',
};
const method = createPufMethod({ rateLimit: { freeFailures: 1_000_000 } });

const devices: BenchPufDevice[] = [];
for (let i = 0; i < nDevices; i++) {
  const dev = benchPufDevice(`spiffe://factory.example/device/bench-${i}`, `bench-${i}`);
  await store.transaction((tx) => importPufRecord(tx, dev.record));
  devices.push(dev);
}
const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const spkiDer = publicKey.export({ format: 'der', type: 'spki' });
const csr: CsrKey = { spkiDer, spkiSha256: createHash('sha256').update(spkiDer).digest() };

interface Phase {
  wall: number;
  cpu: number;
}
async function timedAsync(fn: () => Promise<void>): Promise<Phase> {
  const c = process.cpuUsage();
  const t = performance.now();
  await fn();
  const d = process.cpuUsage(c);
  return { wall: performance.now() - t, cpu: (d.user + d.system) / 1000 };
}

async function round(n: number): Promise<{ begin: Phase; finish: Phase; commit: Phase }> {
  const begun: { dev: BenchPufDevice; b: BeginResult }[] = [];
  const begin = await timedAsync(async () => {
    for (let i = 0; i < n; i++) {
      const dev = devices[i % devices.length]!;
      begun.push({ dev, b: await method.begin(ctx, dev.id, { mode: 'key' }) });
    }
  });
  const responses = begun.map(({ dev, b }) => {
    const ch = b.challenge as { nonce: string };
    const hHash = Buffer.from((b.state as { helperHash: string }).helperHash, 'hex');
    const msg = signedMessage(Buffer.from(ch.nonce, 'base64url'), csr.spkiSha256, hHash, dev.id.uri);
    return {
      mode: 'key',
      publicKey: (b.state as { publicKey: string }).publicKey,
      helperHash: hHash.toString('base64url'),
      signature: sign(null, msg, dev.key).toString('base64url'),
    };
  });
  const verdicts: Verdict[] = [];
  // Verification runs on libuv's thread pool: keep a batch in flight, as concurrent requests would.
  const finish = await timedAsync(async () => {
    for (let i = 0; i < n; i += 64) {
      const batch: Promise<Verdict>[] = [];
      for (let j = i; j < Math.min(n, i + 64); j++) {
        batch.push(
          Promise.resolve(method.finish(ctx, begun[j]!.dev.id, begun[j]!.b.state, responses[j], csr)),
        );
      }
      verdicts.push(...(await Promise.all(batch)));
    }
  });
  const commit = await timedAsync(async () => {
    for (const v of verdicts) await store.transaction(async (tx) => v.commit?.(tx));
  });
  return { begin, finish, commit };
}

await round(Math.min(2000, total)); // warm-up
const r = await round(total);
const line = (name: string, p: Phase, note = ''): string =>
  `  ${name.padEnd(7)} wall ${((p.wall * 1000) / total).toFixed(1)} us (${Math.round((total * 1000) / p.wall)}/s), ` +
  `CPU ${((p.cpu * 1000) / total).toFixed(1)} us each (all threads)${note}\n`;
const cpu = r.begin.cpu + r.finish.cpu + r.commit.cpu;
const wall = r.begin.wall + r.finish.wall + r.commit.wall;
process.stdout.write(
  `puf method, ${total} enrollments over ${nDevices} devices (node ${process.version})\n` +
    line('begin', r.begin) +
    line('finish', r.finish) +
    line('commit', r.commit, '; one SQLite transaction per enrollment') +
    `  total   wall ${((wall * 1000) / total).toFixed(1)} us = ${Math.round((total * 1000) / wall)} enrollments/s; ` +
    `CPU ${((cpu * 1000) / total).toFixed(1)} us = ${Math.round((total * 1000) / cpu)}/s per core\n`,
);
await store.close();
rmSync(dir, { recursive: true, force: true });
