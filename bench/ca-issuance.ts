// Issuance benchmark beside cfssl (Debian golang-cfssl) on the same machine:
//  1. signing alone, in process (our Authority.issue, CSR parse included) — no peer equivalent
//     without HTTP, so cfssl's figure here is its HTTP sign endpoint at the same concurrency;
//  2. issuance over the network: edgeward renewals over mTLS (TLS 1.3, CSR checks, SQLite
//     insert + audit record per certificate) vs cfssl's /api/v1/cfssl/sign (plain HTTP, no DB);
//  3. renewal latency p50/p99 at concurrency 1.
// Usage: npm run build && node dist/bench/ca-issuance.js [--seconds 10] [--concurrency 16]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createAuthority, openCaStore } from '../ca/index.js';
import { csrDerFromText, parseCsr } from '../common/csr.js';
import {
  cfsslSign,
  csrPool,
  fmt,
  initCaData,
  load,
  processTreeCpuSeconds,
  renewalTarget,
  startCaProcess,
  startProcess,
  stopProcess,
  type LoadResult,
  type Target,
} from './lib.js';

const { values } = parseArgs({ options: { seconds: { type: 'string' }, concurrency: { type: 'string' } } });
const SECONDS = Number(values.seconds ?? 10);
const CONC = Number(values.concurrency ?? 16);
const TD = 'bench.example';

async function signingAlone(dir: string): Promise<number> {
  const { authority } = createAuthority(join(dir, 'inproc'), TD, Date.now(), undefined);
  const csrs = csrPool(64, (i) => `spiffe://${TD}/node/b${i}`);
  const end = performance.now() + SECONDS * 1000;
  let n = 0;
  const t0 = performance.now();
  while (performance.now() < end) {
    for (let j = 0; j < 100; j++) {
      const csr = parseCsr(csrDerFromText(csrs[n % csrs.length] as string));
      authority.issue({
        identity: `spiffe://${TD}/node/b${n % 64}`,
        spkiDer: csr.spkiDer,
        lifetimeMs: 86_400_000,
        now: Date.now(),
      });
      n++;
    }
  }
  return n / ((performance.now() - t0) / 1000);
}

/** A load run with the CPU it cost: the server's process tree and this load generator, per request. */
async function measured(
  pid: number | undefined,
  run: () => Promise<LoadResult>,
): Promise<LoadResult & { serverUs: number; clientUs: number }> {
  const s0 = pid === undefined ? 0 : processTreeCpuSeconds(pid);
  const c0 = process.cpuUsage();
  const r = await run();
  const c = process.cpuUsage(c0);
  const server = pid === undefined ? NaN : processTreeCpuSeconds(pid) - s0;
  return { ...r, serverUs: (server * 1e6) / r.ops, clientUs: (c.user + c.system) / r.ops };
}

const cpuText = (r: { serverUs: number; clientUs: number }): string =>
  `CPU per request: server ${fmt(r.serverUs, 0)} us, load generator ${fmt(r.clientUs, 0)} us`;

/**
 * Renewals against `ca serve`; with `ceiling`, the same clients and bodies then go to
 * mtls-ceiling-server (TLS and HTTP only, no CA work): the harness's own limit on this machine.
 */
async function edgewardRenewals(
  dir: string,
  concurrency: number,
  workers = 1,
  ceiling = false,
): Promise<
  LoadResult & {
    serverUs: number;
    clientUs: number;
    ceiling?: LoadResult & { serverUs: number; clientUs: number };
  }
> {
  const data = join(dir, `ca-${workers}-${concurrency}`);
  initCaData(data, TD);
  const server = await startCaProcess({ data, workers });
  try {
    const store = openCaStore(join(data, 'ca.db'));
    const targets: Target[] = [];
    for (let i = 0; i < Math.min(concurrency, 16); i++)
      targets.push(await renewalTarget(store, server, `spiffe://${TD}/node/r${i}`, join(dir, `id${i}`)));
    await store.close();
    await load(targets, concurrency, 1); // warm-up
    const result = await measured(server.proc.pid, () => load(targets, concurrency, SECONDS));
    if (!ceiling) return result;
    await server.stop();
    const id0 = join(dir, 'id0');
    const { proc, output } = await startProcess(
      process.execPath,
      [
        join(import.meta.dirname, 'mtls-ceiling-server.js'),
        join(id0, 'key.pem'),
        join(id0, 'cert.pem'),
        join(id0, 'bundle.pem'),
        '2400',
      ],
      /listening on https:\/\/\S+/,
    );
    try {
      const url = /listening on (https:\/\/\S+)/.exec(output)?.[1] ?? '';
      const same = targets.map((t) => ({ ...t, url: `${url}/v1/renew` }));
      await load(same, concurrency, 1);
      return { ...result, ceiling: await measured(proc.pid, () => load(same, concurrency, SECONDS)) };
    } finally {
      await stopProcess(proc);
    }
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeward-bench-ca-'));
  try {
    console.log(`CA issuance benchmark: ${SECONDS} s per run, concurrency ${CONC}, node ${process.version}`);
    if (process.env['ONLY_CFSSL']) {
      const c = await cfsslSign(dir, TD, CONC, SECONDS);
      console.log(
        `cfssl: ${fmt(c.perSecond, 0)}/s p50 ${fmt(c.p50ms, 2)} p99 ${fmt(c.p99ms, 2)} errors ${c.errors}`,
      );
      return;
    }
    const alone = await signingAlone(dir);
    console.log(`signing alone (in process, CSR parse + sign): ${fmt(alone, 0)} certs/s`);
    const ew1 = await edgewardRenewals(dir, CONC, 1, true);
    console.log(
      `edgeward renewals over mTLS, 1 process:  ${fmt(ew1.perSecond, 0)}/s  p50 ${fmt(ew1.p50ms, 2)} ms  p99 ${fmt(ew1.p99ms, 2)} ms  errors ${ew1.errors}; ${cpuText(ew1)}`,
    );
    const top = ew1.ceiling;
    if (top)
      console.log(
        `harness ceiling (mTLS + HTTP + JSON only, 1 process, same clients): ${fmt(top.perSecond, 0)}/s  p50 ${fmt(top.p50ms, 2)} ms  p99 ${fmt(top.p99ms, 2)} ms  errors ${top.errors}; ${cpuText(top)}`,
      );
    const ew = await edgewardRenewals(dir, CONC, 2);
    console.log(
      `edgeward renewals over mTLS, 2 workers:  ${fmt(ew.perSecond, 0)}/s  p50 ${fmt(ew.p50ms, 2)} ms  p99 ${fmt(ew.p99ms, 2)} ms  errors ${ew.errors}; ${cpuText(ew)}`,
    );
    const cf = await cfsslSign(dir, TD, CONC, SECONDS);
    console.log(
      `cfssl sign over HTTP:        ${fmt(cf.perSecond, 0)}/s  p50 ${fmt(cf.p50ms, 2)} ms  p99 ${fmt(cf.p99ms, 2)} ms  errors ${cf.errors}`,
    );
    const lat = await edgewardRenewals(join(dir, 'lat'), 1);
    console.log(
      `edgeward renewal latency at concurrency 1: p50 ${fmt(lat.p50ms, 2)} ms  p99 ${fmt(lat.p99ms, 2)} ms (${lat.ops} renewals)`,
    );
    console.log(
      `ratio edgeward/cfssl issuance rate: ${fmt(Math.max(ew.perSecond, ew1.perSecond) / cf.perSecond, 2)}x;  signing alone vs cfssl HTTP: ${fmt(alone / cf.perSecond, 2)}x;  harness ceiling vs cfssl: ${fmt((top?.perSecond ?? NaN) / cf.perSecond, 2)}x`,
    );
    void readFileSync;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
