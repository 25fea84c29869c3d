// CA-side throughput of the `tpm` method: full begin (EK chain, AK checks, MakeCredential, nonce)
// + finish (activation secret, quote signature, binding, PCR digest and golden values) on the
// recorded swtpm vectors, for an RSA EK and an ECC (P-384) EK. The device's TPM work and the
// issuance transaction are not timed: they are the device's and the CA store's.
// Run: npm run build && node dist/bench/tpm-verify.js [seconds-per-case=3] [--processes N]
// With --processes N, N processes run each case at the same time (as `ca serve --workers N`
// would), and the sum of their rates is reported beside the one-process figure.
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  type CsrKey,
  type MethodContext,
  type MethodStoreReader,
  METHOD_NAMES,
} from '../attestation/index.js';
import { createHash } from 'node:crypto';
import { parseIdentity } from '../common/identity.js';
import { silentLogger } from '../common/log.js';
import { createTpmMethod } from '../attestation/tpm/index.js';
import { checkAttestationPolicy } from '../policies/index.js';

interface Vector {
  description: string;
  now: number;
  identity: string;
  policy: string;
  evidence: Record<string, unknown>;
  state: unknown;
  response: Record<string, unknown>;
  csrSpkiDer: string;
}

export interface TpmBenchResult {
  readonly vector: string;
  readonly description: string;
  readonly chainCache: boolean;
  readonly ops: number;
  readonly perSecond: number;
  /** Operations per second of this process's CPU time: the figure when the core is not shared. */
  readonly perCpuSecond: number;
  readonly meanMs: number;
}

function vectorDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/bench -> repo root; bench/ (from source) -> repo root
  for (const c of [
    resolve(here, '../../test/vectors/tpm'),
    resolve(here, '../test/vectors/tpm'),
    resolve('test/vectors/tpm'),
  ]) {
    if (existsSync(c)) return c;
  }
  throw new Error('test/vectors/tpm not found: run from the repository root');
}

/** A store with no bindings and no used markers: the read side a first enrollment sees. */
const emptyStore: MethodStoreReader = {
  getBinding: () => Promise.resolve(undefined),
  findBindingByHardware: () => Promise.resolve(undefined),
  wasUsed: () => Promise.resolve(false),
};

function vectorFiles(): string[] {
  return readdirSync(vectorDir())
    .filter((f) => f.endsWith('.json'))
    .sort();
}

export async function runTpmBench(
  secondsPerCase = 3,
  only?: { readonly vector: string; readonly chainCache: boolean },
): Promise<TpmBenchResult[]> {
  const dir = vectorDir();
  const files = vectorFiles().filter((f) => !only || f === `${only.vector}.json`);
  const results: TpmBenchResult[] = [];
  for (const file of files) {
    const v = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Vector;
    const id = parseIdentity(v.identity);
    const spkiDer = Buffer.from(v.csrSpkiDer, 'base64');
    const csr: CsrKey = { spkiDer, spkiSha256: createHash('sha256').update(spkiDer).digest() };
    const ctx: MethodContext = {
      clock: { now: () => v.now },
      log: silentLogger,
      trustDomain: id.trustDomain,
      store: emptyStore,
      renewal: false,
      source: '127.0.0.1',
    };
    for (const chainCache of only ? [only.chainCache] : [true, false]) {
      // A real enrollment brings a new AK every time (the AK is imported once, at finish); only
      // the EK chain and EK key can be known from an earlier enrollment or a renewal.
      const method = createTpmMethod(checkAttestationPolicy(v.policy, { methods: METHOD_NAMES }), {
        chainCacheSize: chainCache ? 4096 : 0,
      });
      // begin's fresh nonce and secret cannot match the recorded quote, so finish replays the
      // recorded session state: the same work as finishing this begin's session.
      const once = async (): Promise<void> => {
        await method.begin(ctx, id, v.evidence);
        await method.finish(ctx, id, v.state, v.response, csr);
      };
      for (let i = 0; i < 200; i++) await once(); // warm-up (JIT, caches)
      let ops = 0;
      const cpu0 = process.cpuUsage();
      const start = performance.now();
      const end = start + secondsPerCase * 1000;
      while (performance.now() < end) {
        for (let i = 0; i < 50; i++) await once();
        ops += 50;
      }
      const took = (performance.now() - start) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const cpuSeconds = (cpu.user + cpu.system) / 1e6;
      results.push({
        vector: file.replace(/\.json$/, ''),
        description: v.description,
        chainCache,
        ops,
        perSecond: ops / took,
        perCpuSecond: ops / cpuSeconds,
        meanMs: (took * 1000) / ops,
      });
    }
  }
  return results;
}

/** Runs one case in `n` child processes at once; the sum of their rates. */
async function parallel(n: number, seconds: number, vector: string, chainCache: boolean): Promise<number> {
  const self = fileURLToPath(import.meta.url);
  const runs = Array.from(
    { length: n },
    () =>
      new Promise<number>((ok, fail) => {
        const args = [self, String(seconds), '--only', `${vector}:${chainCache ? 'on' : 'off'}`];
        execFile(process.execPath, args, (err, stdout) =>
          err
            ? fail(new Error(err.message))
            : ok((JSON.parse(stdout) as TpmBenchResult[])[0]?.perSecond ?? NaN),
        );
      }),
  );
  return (await Promise.all(runs)).reduce((a, b) => a + b, 0);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { only: { type: 'string' }, processes: { type: 'string' } },
  });
  const seconds = Number(positionals[0] ?? 3);
  if (values.only) {
    // A child of --processes: one case, JSON out.
    const [vector = '', mode] = values.only.split(':');
    console.log(JSON.stringify(await runTpmBench(seconds, { vector, chainCache: mode === 'on' })));
  } else {
    const processes = Number(values.processes ?? 1);
    const results = await runTpmBench(seconds);
    console.log('tpm method, CA side: full begin + finish (one process, one thread)');
    console.log(
      `load average at start: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')} on ${cpus().length} cores`,
    );
    console.log(
      `vector            EK caches   per second   per CPU-second   mean ms${processes > 1 ? `   ${processes} processes, per second` : ''}`,
    );
    for (const r of results) {
      const par = processes > 1 ? await parallel(processes, seconds, r.vector, r.chainCache) : undefined;
      console.log(
        `${r.vector.padEnd(17)} ${(r.chainCache ? 'on' : 'off').padEnd(11)} ${r.perSecond.toFixed(0).padStart(10)}   ${r.perCpuSecond.toFixed(0).padStart(14)}   ${r.meanMs.toFixed(3).padStart(7)}${par === undefined ? '' : par.toFixed(0).padStart(24)}`,
      );
    }
  }
}
