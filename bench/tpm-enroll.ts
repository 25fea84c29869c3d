// Whole TPM enrollments against swtpm, end to end and step by step: a TEST manufacturer CA and a
// swtpm with its EK certificates (attestation/tpm/swtpm.ts), `edgeward ca serve` as a child process with an attestation policy trusting that
// manufacturer and holding the swtpm's golden PCRs, and the enrollment client with the real TPM
// prover (`edgeward enroll --attest tpm`'s code, in this process): pin the CA, P-256 key and CSR,
// EK and its certificate, AK created and loaded under the EK, POST /v1/enroll/begin,
// TPM2_ActivateCredential, TPM2_Quote, POST /v1/enroll/finish, certificate checked and written.
// Every step is timed from the client's progress lines and each tpm2-tools command from the tool
// runner's debug log; the CA's, swtpm's and tpm2-tools' CPU time come from /proc.
// Usage: npm run build && node dist/bench/tpm-enroll.js [--enrollments 20] [--ek rsa,ecc] [--ak ecc]
import { readdirSync, readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { enroll } from '../client/index.js';
import {
  createTpmProver,
  readReferencePcrs,
  createTestManufacturer,
  policyTrustingMaker,
  startSwtpm,
} from '../attestation/tpm/index.js';
import {
  exitedChildrenCpuSeconds,
  fmt,
  initCaData,
  percentile,
  processTreeCpuSeconds,
  startCaProcess,
  type CaProcess,
} from './lib.js';

const { values } = parseArgs({
  options: { enrollments: { type: 'string' }, ek: { type: 'string' }, ak: { type: 'string' } },
});
const N = Number(values.enrollments ?? 20);
const EKS = (values.ek ?? 'rsa,ecc').split(',') as ('rsa' | 'ecc')[];
const AK = (values.ak ?? 'ecc') as 'ecc' | 'rsa';
if (EKS.some((e) => e !== 'rsa' && e !== 'ecc') || (AK !== 'ecc' && AK !== 'rsa') || !(N >= 1))
  throw new TypeError('usage: tpm-enroll.js [--enrollments N] [--ek rsa,ecc] [--ak ecc|rsa]');
const TD = 'bench.example';

/** What each stretch of an enrollment is, from the progress line or tool that starts it. */
function stepOf(label: string): string {
  if (label.startsWith('tool ')) return `TPM  ${label.slice(5)}`;
  if (label.startsWith('pinning the CA')) return 'CA   GET /v1/bundle (pin the root; new TLS connection)';
  if (label === 'POST /v1/enroll/begin') return 'CA   POST /v1/enroll/begin (new TLS connection)';
  if (label === 'POST /v1/enroll/finish')
    return 'CA   POST /v1/enroll/finish (new TLS connection) + check, write cert';
  if (label.startsWith('generating an ECDSA')) return 'host P-256 key + CSR';
  return 'host other (progress, parsing, files)';
}

interface Sample {
  readonly steps: Map<string, number>;
  readonly totalMs: number;
  /** The prover's line naming the EK it used (handle and certificate index). */
  readonly ekLine: string;
  /** tpm2-tools commands run (each one a process and a TCTI connection to swtpm). */
  readonly commands: number;
}

/** One enrollment with a fresh prover, as one `edgeward enroll --attest tpm` run does. */
async function enrollOnce(
  ca: CaProcess,
  tcti: string,
  ek: 'rsa' | 'ecc',
  id: string,
  out: string,
): Promise<Sample> {
  const marks: { label: string; t: number }[] = [];
  const mark = (label: string): void => void marks.push({ label, t: performance.now() });
  // The tool runner logs each tpm2-tools command at debug level just before running it.
  const log = pino(
    { level: 'debug' },
    {
      write: (line: string) => {
        const tool = /"tool":"([^"]+)"/.exec(line)?.[1];
        if (tool) mark(`tool ${tool}`);
      },
    },
  );
  const prover = createTpmProver({ tcti, ek, ak: AK, log, print: mark });
  const start = performance.now();
  try {
    await enroll({ ca: ca.url, fingerprint: ca.fingerprint, id, prover, out, print: mark });
  } finally {
    await prover.close?.(); // flushes transient objects: part of every enrollment's TPM work
  }
  const end = performance.now();
  const steps = new Map<string, number>();
  marks.forEach((m, i) => {
    const step = stepOf(m.label);
    steps.set(step, (steps.get(step) ?? 0) + ((marks[i + 1]?.t ?? end) - m.t));
  });
  const ekLine = marks.find((m) => m.label.startsWith('endorsement key:'))?.label ?? 'endorsement key: ?';
  const commands = marks.filter((m) => m.label.startsWith('tool ')).length;
  return { steps, totalMs: end - start, ekLine, commands };
}

function swtpmPid(port: number): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (cmd[0]?.endsWith('swtpm') && cmd.some((a) => a.includes(`port=${port},`))) return Number(name);
    } catch {
      // exited meanwhile
    }
  }
  return undefined;
}

function stat(xs: readonly number[]): { p50: number; p99: number; mean: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeward-bench-tpm-'));
  const maker = await createTestManufacturer('Edgeward BENCH TPM Vendor', join(dir, 'maker'));
  const tpm = await startSwtpm(maker);
  let ca: CaProcess | undefined;
  try {
    console.log(
      `TPM enrollments against swtpm, ${N} per EK after one first enrollment, AK ${AK.toUpperCase()}, ` +
        `node ${process.version}, ${cpus().length} cores, load average ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')}`,
    );
    const golden = await readReferencePcrs({ tcti: tpm.tcti });
    const policyFile = join(dir, 'attestation-policy.yaml');
    writeFileSync(
      policyFile,
      policyTrustingMaker(maker, [{ pattern: `spiffe://${TD}/node/*`, methods: ['tpm'], pcrs: golden }]),
    );
    const data = join(dir, 'ca');
    initCaData(data, TD);
    ca = await startCaProcess({ data, args: ['--attestation-policy', policyFile] });
    const caPid = ca.proc.pid as number;
    const tpmPid = swtpmPid(tpm.port);
    for (const ek of EKS) {
      const id = `spiffe://${TD}/node/tpm-bench-${ek}`;
      const out = join(dir, `id-${ek}`);
      // A TPM the CA has never seen: EK chain validated, EK bound to the identity.
      const first = await enrollOnce(ca, tpm.tcti, ek, id, out);
      const cpu0 = {
        ca: processTreeCpuSeconds(caPid),
        swtpm: tpmPid ? processTreeCpuSeconds(tpmPid) : NaN,
        tools: exitedChildrenCpuSeconds(),
        self: process.cpuUsage(),
      };
      const samples: Sample[] = [];
      for (let i = 0; i < N; i++) samples.push(await enrollOnce(ca, tpm.tcti, ek, id, out));
      const self = process.cpuUsage(cpu0.self);
      const per = (s: number): string => `${fmt((s * 1000) / N, 1)} ms`;
      const total = stat(samples.map((s) => s.totalMs));
      const ekName = ek === 'rsa' ? 'RSA 2048 EK' : 'ECC EK (swtpm: NIST P-384)';
      console.log(`\n${ekName}, ${AK.toUpperCase()} AK: ${N} re-enrollments of ${id}; ${first.ekLine}`);
      console.log(`  first enrollment (EK unknown to the CA): ${fmt(first.totalMs, 0)} ms`);
      console.log(
        `  whole enrollment: p50 ${fmt(total.p50, 0)} ms, p99 ${fmt(total.p99, 0)} ms, mean ${fmt(total.mean, 0)} ms; ` +
          `${first.commands} tpm2-tools commands each`,
      );
      const names = [...new Set(samples.flatMap((s) => [...s.steps.keys()]))].sort();
      const groups = new Map<string, number[]>();
      console.log(
        `  ${'step'.padEnd(72)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'share'.padStart(6)}`,
      );
      for (const name of names) {
        const xs = samples.map((s) => s.steps.get(name) ?? 0);
        const st = stat(xs);
        const group = name.slice(0, 4).trim();
        groups.set(
          group,
          (groups.get(group) ?? samples.map(() => 0)).map((v, i) => v + (xs[i] ?? 0)),
        );
        console.log(
          `  ${name.padEnd(72)} ${fmt(st.p50, 1).padStart(8)} ${fmt(st.p99, 1).padStart(8)} ${fmt((st.mean / total.mean) * 100, 1).padStart(5)}%`,
        );
      }
      for (const [group, xs] of groups) {
        const st = stat(xs);
        const what =
          { TPM: 'all TPM commands', CA: 'all CA round trips', host: 'all host work' }[group] ?? group;
        console.log(
          `  = ${what.padEnd(70)} ${fmt(st.p50, 1).padStart(8)} ${fmt(st.p99, 1).padStart(8)} ${fmt((st.mean / total.mean) * 100, 1).padStart(5)}%`,
        );
      }
      console.log(
        `  CPU per enrollment: CA process ${per(processTreeCpuSeconds(caPid) - cpu0.ca)}, ` +
          `swtpm ${per((tpmPid ? processTreeCpuSeconds(tpmPid) : NaN) - cpu0.swtpm)}, ` +
          `tpm2-tools processes ${per(exitedChildrenCpuSeconds() - cpu0.tools)}, ` +
          `enrollment client ${per((self.user + self.system) / 1e6)}`,
      );
    }
    console.log(
      `\nload average at the end: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
  } finally {
    await ca?.stop();
    await tpm.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
