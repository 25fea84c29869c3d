// Full PUF enrollments at the CA over HTTPS: `edgeward ca serve` runs as a child process (its own
// event loop; with --workers N, N cluster processes), PUF records are registered in its store
// (the first with `edgeward ca puf import`, the rest through the same importPufRecord in one
// transaction), and this process drives whole enrollments over TLS 1.3 keep-alive connections:
// POST /v1/enroll/begin, the device's Ed25519 signature over the CA's nonce and the CSR key
// (node:crypto, made here in the load generator, outside the CA's process), then
// POST /v1/enroll/finish with the CSR, which issues the certificate (CSR checks, signing, SQLite
// insert with the single-use markers and the hash-chained audit record).
// Reported: enrollments/s, latency p50/p99 of a whole enrollment and of each request, and the CA
// processes' CPU seconds (from /proc), so that enrollments per CA CPU-second can be given.
// Usage: npm run build && node dist/bench/puf-enroll-https.js [--seconds 10] [--concurrency 32]
//          [--devices 1000] [--workers 1,2] [--latency-seconds 5] [--cpu-prof DIR]
import { spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { checkIssued, pinCa } from '../client/index.js';
import { importPufRecord, signedMessage } from '../attestation/puf/index.js';
import { openCaStore } from '../ca/index.js';
import { buildCsr } from '../common/csr.js';
import { serviceId } from '../common/identity.js';
import { toPem } from '../common/pem.js';
import { uriSans } from '../common/x509.js';
import {
  benchPufDevice,
  closedLoop,
  EDGEWARD,
  fmt,
  initCaData,
  percentile,
  post,
  processTreeCpuSeconds,
  startCaProcess,
  type BenchPufDevice,
  type LoadResult,
} from './lib.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string' },
    concurrency: { type: 'string' },
    devices: { type: 'string' },
    workers: { type: 'string' },
    'latency-seconds': { type: 'string' },
    'cpu-prof': { type: 'string' },
  },
});
const SECONDS = Number(values.seconds ?? 10);
const CONC = Number(values.concurrency ?? 32);
const N_DEVICES = Number(values.devices ?? 1000);
const WORKERS = (values.workers ?? '1,2').split(',').map(Number);
const LATENCY_SECONDS = Number(values['latency-seconds'] ?? 5);
const CPU_PROF = values['cpu-prof'];
const TD = 'bench.example';

interface Device extends BenchPufDevice {
  readonly beginBody: Buffer;
  readonly csrPem: string;
  readonly spkiDer: Buffer;
  readonly spkiSha256: Buffer;
  readonly helperHashB64: string;
}

function makeDevices(n: number): Device[] {
  return Array.from({ length: n }, (_, i) => {
    const d = benchPufDevice(`spiffe://${TD}/device/puf-${i}`, `puf-bench-${i}`);
    // The CSR key is made once per device: the CA's work does not depend on whether it is new.
    const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spkiDer = k.publicKey.export({ format: 'der', type: 'spki' });
    return {
      ...d,
      beginBody: Buffer.from(JSON.stringify({ id: d.id.uri, method: 'puf', evidence: { mode: 'key' } })),
      csrPem: toPem('CERTIFICATE REQUEST', buildCsr(k.privateKey, k.publicKey, d.id.uri)),
      spkiDer,
      spkiSha256: createHash('sha256').update(spkiDer).digest(),
      helperHashB64: d.helperHash.toString('base64url'),
    };
  });
}

/** Registers the devices: the first through the real `edgeward ca puf import`, the rest in process. */
async function register(data: string, dir: string, devices: readonly Device[]): Promise<void> {
  const first = devices[0];
  if (!first) throw new Error('no devices');
  const file = join(dir, 'first-record.json');
  writeFileSync(file, JSON.stringify(first.record));
  const r = spawnSync(process.execPath, [EDGEWARD, 'ca', 'puf', 'import', '--data', data, file], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`ca puf import failed: ${r.stderr}`);
  const store = openCaStore(join(data, 'ca.db'));
  try {
    const now = Date.now();
    await store.transaction(async (tx) => {
      for (const d of devices.slice(1)) {
        const done = await importPufRecord(tx, d.record, { trustDomain: TD });
        await tx.audit(
          {
            kind: 'puf.import',
            data: { identity: done.identity, publicKey: done.publicKey, crps: done.crps, by: 'bench' },
          },
          now,
        );
      }
    });
  } finally {
    await store.close();
  }
}

interface Run extends LoadResult {
  readonly workers: number;
  readonly concurrency: number;
  readonly caCpuSeconds: number;
  readonly genCpuSeconds: number;
  readonly beginP50: number;
  readonly beginP99: number;
  readonly finishP50: number;
  readonly finishP99: number;
  readonly refusals: ReadonlyMap<string, number>;
}

async function run(
  data: string,
  devices: readonly Device[],
  workers: number,
  concurrency: number,
  seconds: number,
): Promise<Run> {
  const ca = await startCaProcess({
    data,
    workers,
    ...(CPU_PROF ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', CPU_PROF] } : {}),
  });
  try {
    const ep = await pinCa(ca.url, ca.fingerprint, TD);
    const expected = serviceId(TD, 'ca');
    const agent = new Agent({
      keepAlive: true,
      maxSockets: concurrency,
      ca: ep.bundlePem,
      minVersion: 'TLSv1.3',
      checkServerIdentity: (_host, cert) =>
        uriSans(cert.subjectaltname).includes(expected) ? undefined : new Error(`server is not ${expected}`),
    });
    const beginUrl = `${ca.url}/v1/enroll/begin`;
    const finishUrl = `${ca.url}/v1/enroll/finish`;
    let beginLat: number[] = [];
    let finishLat: number[] = [];
    const refusals = new Map<string, number>();
    let check = true;
    const refused = (status: number | undefined, body: Buffer | undefined): false => {
      const code = body ? (/"code":"([A-Z_]+)"/.exec(body.toString())?.[1] ?? '') : 'transport';
      const key = `${status ?? '-'} ${code}`;
      refusals.set(key, (refusals.get(key) ?? 0) + 1);
      return false;
    };
    const enrollOnce = async (_w: number, i: number): Promise<boolean> => {
      const d = devices[i % devices.length] as Device;
      const t0 = performance.now();
      const b = await post(beginUrl, agent, d.beginBody);
      const t1 = performance.now();
      if (b?.status !== 200) return refused(b?.status, b?.body);
      const { session, challenge } = JSON.parse(b.body.toString('utf8')) as {
        session: string;
        challenge: { nonce: string };
      };
      // The device's work (its key was reconstructed at start-up): sign nonce, CSR key, helper hash, id.
      const msg = signedMessage(
        Buffer.from(challenge.nonce, 'base64url'),
        d.spkiSha256,
        d.helperHash,
        d.id.uri,
      );
      const body = JSON.stringify({
        session,
        csr: d.csrPem,
        response: {
          mode: 'key',
          publicKey: d.record.publicKey,
          helperHash: d.helperHashB64,
          signature: sign(null, msg, d.key).toString('base64url'),
        },
      });
      const t2 = performance.now();
      const f = await post(finishUrl, agent, Buffer.from(body));
      const t3 = performance.now();
      if (f?.status !== 200) return refused(f?.status, f?.body);
      if (check) {
        // Once per run: the answer is a certificate for this device's key and identity.
        check = false;
        checkIssued(JSON.parse(f.body.toString('utf8')), d.id.uri, d.spkiDer);
      }
      beginLat.push(t1 - t0);
      finishLat.push(t3 - t2);
      return true;
    };
    await closedLoop(concurrency, 1, enrollOnce); // warm-up: JIT, TLS sessions, SQLite pages
    beginLat = [];
    finishLat = [];
    refusals.clear();
    const ca0 = processTreeCpuSeconds(ca.proc.pid as number);
    const gen0 = process.cpuUsage();
    const r = await closedLoop(concurrency, seconds, enrollOnce);
    const gen = process.cpuUsage(gen0);
    const caCpu = processTreeCpuSeconds(ca.proc.pid as number) - ca0;
    agent.destroy();
    beginLat.sort((a, b) => a - b);
    finishLat.sort((a, b) => a - b);
    return {
      ...r,
      workers,
      concurrency,
      caCpuSeconds: caCpu,
      genCpuSeconds: (gen.user + gen.system) / 1e6,
      beginP50: percentile(beginLat, 50),
      beginP99: percentile(beginLat, 99),
      finishP50: percentile(finishLat, 50),
      finishP99: percentile(finishLat, 99),
      refusals,
    };
  } finally {
    await ca.stop();
  }
}

function report(r: Run): void {
  const caUs = (r.caCpuSeconds * 1e6) / r.ops;
  console.log(
    `CA --workers ${r.workers}, concurrency ${r.concurrency}: ${fmt(r.perSecond, 0)} enrollments/s ` +
      `(${r.ops} in ${fmt(r.seconds, 1)} s, errors ${r.errors}); enrollment p50 ${fmt(r.p50ms, 2)} ms ` +
      `p99 ${fmt(r.p99ms, 2)} ms; begin p50/p99 ${fmt(r.beginP50, 2)}/${fmt(r.beginP99, 2)} ms, ` +
      `finish p50/p99 ${fmt(r.finishP50, 2)}/${fmt(r.finishP99, 2)} ms`,
  );
  console.log(
    `  CA CPU ${fmt(r.caCpuSeconds, 2)} s = ${fmt(caUs, 0)} us per enrollment = ` +
      `${fmt(r.ops / r.caCpuSeconds, 0)} enrollments per CA CPU-second; ` +
      `load generator CPU ${fmt((r.genCpuSeconds * 1e6) / r.ops, 0)} us per enrollment`,
  );
  for (const [k, n] of r.refusals) console.log(`  refused ${k}: ${n}`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeward-bench-puf-https-'));
  try {
    console.log(
      `PUF enrollments over HTTPS: ${SECONDS} s per run, ${N_DEVICES} devices, node ${process.version}, ` +
        `${cpus().length} cores, load average ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')}`,
    );
    const data = join(dir, 'ca');
    initCaData(data, TD);
    const t0 = performance.now();
    const devices = makeDevices(N_DEVICES);
    await register(data, dir, devices);
    console.log(
      `provisioned and registered ${N_DEVICES} PUF devices in ${fmt((performance.now() - t0) / 1000, 1)} s`,
    );
    for (const w of WORKERS) report(await run(data, devices, w, CONC, SECONDS));
    if (LATENCY_SECONDS > 0) report(await run(data, devices, 1, 1, LATENCY_SECONDS));
    console.log(
      `load average at the end: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
