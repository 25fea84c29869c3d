// What one reporter can make the SIEM hold: a node posts N events (default 240,000) about
// connections it terminated from N/2 invented devices (each with its own serial and address), as
// fast as the SIEM lets it; the SIEM's resident memory (VmRSS, and its peak VmHWM) is read before
// and after, and the dashboard inventory's rows are counted (figures: docs/BENCHMARKS.md). Run: npm run build && node
// dist/bench/siem-reporter-flood.js [--events N]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { serviceId } from '../common/identity.js';
import { runSiemCommand } from '../siem/index.js';
import { fmt, post, startBenchCa, startSiemChild, stopProcess, tokenFileIn } from './lib.js';

const TD = 'bench.example';

if (process.argv[2] === 'siem-child') {
  process.exitCode = await runSiemCommand(process.argv.slice(3), (s) => process.stdout.write(s + '\n'));
}

/** VmRSS and VmHWM of a process, in MiB. */
function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function run(o: { events?: number } = {}): Promise<void> {
  const n = o.events ?? 240_000;
  const work = mkdtempSync(join(tmpdir(), 'edgeward-bench-flood-'));
  try {
    const caDir = join(work, 'ca');
    const ca = await startBenchCa(caDir, TD);
    const siemDir = join(work, 'siem');
    const { proc, found } = await startSiemChild(
      fileURLToPath(import.meta.url),
      [
        ...['--data', siemDir, '--listen', '127.0.0.1:0', '--ca', ca.url, '--fingerprint', ca.fingerprint],
        ...[
          '--token-file',
          tokenFileIn(work, await ca.token(serviceId(TD, 'siem'))),
          '--dashboard',
          '127.0.0.1:0',
        ],
      ],
      { ready: [/listening on (https:\/\/\S+)/, /dashboard on (https:\/\/\S+)/], timeoutMs: 60_000 },
    );
    const siemUrl = found[0] as string;
    const pid = proc.pid as number;
    const node = `spiffe://${TD}/node/flood`;
    const id = await ca.enroll(node, join(work, 'node'));
    const agent = new Agent({
      key: id.keyPem,
      cert: id.certPem,
      ca: id.bundlePem,
      checkServerIdentity: () => undefined,
      keepAlive: true,
      maxSockets: 4,
    });
    await wait(2000);
    const before = memory(pid);
    const t0 = Date.now();
    const now = Date.now() - 60_000;
    let sent = 0;
    let accepted = 0;
    let limited = 0;
    const batch = 1000;
    const one = async (start: number): Promise<void> => {
      const events = Array.from({ length: Math.min(batch, n - start) }, (_, k) => {
        const i = start + k;
        const dev = i >> 1;
        return {
          '@timestamp': now + Math.floor(i / 100),
          'event.action': i % 2 === 0 ? 'connection.accepted' : 'connection.closed',
          'network.direction': 'inbound',
          'source.identity': `spiffe://${TD}/device/invented-${dev}`,
          'source.ip': `10.${(dev >> 16) & 255}.${(dev >> 8) & 255}.${dev & 255}`,
          'destination.identity': node,
          'tls.client.x509.serial_number': (0x100000 + dev).toString(16),
        };
      });
      const body = Buffer.from(JSON.stringify(events));
      for (;;) {
        const r = await post(`${siemUrl}/v1/events`, agent, body);
        if (r?.status === 200) {
          const j = JSON.parse(r.body.toString()) as { accepted?: number };
          accepted += j.accepted ?? 0;
          break;
        }
        if (r?.status === 429) {
          limited++;
          await wait(200);
          continue;
        }
        throw new Error(`ingest answered ${r?.status ?? 'nothing'}: ${r?.body.toString() ?? ''}`);
      }
      sent += events.length;
    };
    for (let i = 0; i < n; i += batch * 4)
      await Promise.all([0, 1, 2, 3].filter((k) => i + k * batch < n).map((k) => one(i + k * batch)));
    const seconds = (Date.now() - t0) / 1000;
    await wait(3000);
    const after = memory(pid);
    agent.destroy();
    await stopProcess(proc);
    await ca.close();
    const db = new Database(join(siemDir, 'dashboard.db'), { readonly: true });
    const rows = (db.prepare('SELECT COUNT(*) AS n FROM inventory').get() as { n: number }).n;
    db.close();
    console.log(
      `${fmt(sent, 0)} events from one node in ${fmt(seconds)} s (${fmt(accepted, 0)} accepted, ${limited} answers 429): ` +
        `SIEM RSS ${fmt(before.rss)} -> ${fmt(after.rss)} MiB (peak ${fmt(after.peak)} MiB); inventory rows ${rows}`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] !== 'siem-child') {
  const i = process.argv.indexOf('--events');
  await run(i > 0 ? { events: Number(process.argv[i + 1]) } : {});
  process.exit(0);
}
