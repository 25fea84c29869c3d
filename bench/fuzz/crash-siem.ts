// Crash suite for `edgeward siem serve`: closed loops post event batches (and an analyst makes
// decisions) while the SIEM process is killed with SIGKILL at a random point; after each kill the
// store and its state file open, every event of every acknowledged batch is there exactly once
// (by the batch's identity and the event's port), no event id is stored twice, and the SIEM comes
// back on its folder with every acknowledged decision active and its revision no older.
// Run: npm run build && node dist/bench/fuzz/crash-siem.js [kills=50]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { FILES } from '../../ca/index.js';
import { serviceId } from '../../common/identity.js';
import { openSqliteStoreSync } from '../../siem/store/index.js';
import { EDGEWARD, post, startBenchCa, tokenFileIn } from '../lib.js';
import { killCountArg } from './crash.js';

const TD = 'factory.example';
const BATCH = 50;
const LOOPS = 4;

export interface SiemCrashResult {
  readonly kills: number;
  readonly batches: number;
  readonly events: number;
  readonly decisions: number;
  readonly revision: number;
}

export function agentOf(dir: string): Agent {
  const r = (f: string): string => readFileSync(join(dir, f), 'utf8');
  return new Agent({
    keepAlive: true,
    key: r('key.pem'),
    cert: r('cert.pem'),
    ca: r('bundle.pem'),
    checkServerIdentity: () => undefined,
  });
}

export function get(url: string, agent: Agent): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(url, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          json: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>,
        }),
      );
    });
    req.on('error', reject);
  });
}

export function serveSiem(args: readonly string[]): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [EDGEWARD, 'siem', 'serve', ...args], {
    env: { ...process.env, EDGEWARD_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`SIEM not ready after 60 s:\n${out}`));
    }, 60_000);
    const onData = (c: Buffer): void => {
      out += c.toString();
      const m = /listening on (https:\/\/\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve({ proc, url: m[1] });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`SIEM exited with ${code} before it was ready:\n${out}`));
    });
  });
}

/** Every stored crash-suite event by batch: the ports seen (a second one is a duplicate). */
function storedEvents(file: string): { batches: Map<number, Set<number>>; total: number } {
  // The store opens as the SIEM opens it (events and state file), then its rows are read as they are.
  openSqliteStoreSync(file).close();
  const db = new Database(file, { readonly: true });
  try {
    const ids = db.prepare(`SELECT count(*) AS n, count(DISTINCT id) AS d FROM events`).get() as {
      n: number;
      d: number;
    };
    if (ids.n !== ids.d) throw new Error(`${ids.n - ids.d} event ids stored twice`);
    const batches = new Map<number, Set<number>>();
    const rows = db
      .prepare(`SELECT source_identity AS s, doc FROM events WHERE source_identity LIKE ?`)
      .iterate(`spiffe://${TD}/device/b%`) as Iterable<{ s: string; doc: string }>;
    let total = 0;
    for (const r of rows) {
      const k = Number(r.s.slice(`spiffe://${TD}/device/b`.length));
      const port = (JSON.parse(r.doc) as { 'source.port': number })['source.port'];
      let seen = batches.get(k);
      if (!seen) batches.set(k, (seen = new Set()));
      if (seen.has(port)) throw new Error(`batch ${k}: event ${port} stored twice`);
      seen.add(port);
      total++;
    }
    return { batches, total };
  } finally {
    db.close();
  }
}

export async function crashSiem(
  kills: number,
  log: (s: string) => void = () => {},
): Promise<SiemCrashResult> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeward-crash-siem-'));
  const caData = join(dir, 'ca');
  const data = join(dir, 'siem');
  const procs = new Set<ChildProcess>();
  const ca = await startBenchCa(caData, TD);
  try {
    await ca.enroll(`spiffe://${TD}/node/n1`, join(dir, 'n1'));
    const node = agentOf(join(dir, 'n1'));
    const admin = agentOf(join(caData, FILES.adminDir));
    const base = ['--data', data, '--ca', ca.url, '--fingerprint', ca.fingerprint, '--listen', '127.0.0.1:0'];
    const first = ['--token-file', tokenFileIn(dir, await ca.token(serviceId(TD, 'siem')))];

    const ackedBatches = new Set<number>();
    const ackedDecisions = new Map<string, number>();
    let revision = 0;
    let nextBatch = 0;
    let nextDecision = 0;
    let events = 0;

    /** The SIEM back on its folder: every acknowledged decision active, the revision no older. */
    const restart = async (k: number): Promise<{ proc: ChildProcess; url: string }> => {
      const s = await serveSiem(k === 0 ? [...base, ...first] : base);
      procs.add(s.proc);
      const listed = await get(`${s.url}/v1/decisions`, admin);
      if (listed.status !== 200) throw new Error(`after kill ${k}: listing decisions: ${listed.status}`);
      const rev = listed.json['revision'] as number;
      if (rev < revision) throw new Error(`after kill ${k}: revision ${rev}, ${revision} was acknowledged`);
      const active = new Set((listed.json['active'] as { id: string }[]).map((d) => d.id));
      for (const [id, r] of ackedDecisions)
        if (!active.has(id))
          throw new Error(`after kill ${k}: acknowledged decision ${id} (revision ${r}) lost`);
      revision = rev;
      return s;
    };

    for (let k = 0; k < kills; k++) {
      const s = await restart(k);
      let stop = false;
      let first: () => void = () => {};
      const firstAck = new Promise<void>((r) => (first = r));
      const eventLoop = async (): Promise<void> => {
        while (!stop) {
          const b = nextBatch++;
          const t0 = Date.now() - 10_000;
          const body = Array.from({ length: BATCH }, (_, i) => ({
            '@timestamp': t0 + i,
            'event.action': 'connection.accepted',
            'source.identity': `spiffe://${TD}/device/b${b}`,
            'source.port': i,
          }));
          const r = await post(`${s.url}/v1/events`, node, Buffer.from(JSON.stringify(body)));
          if (!r) return;
          if (r.status === 200) {
            ackedBatches.add(b);
            first();
          } else if (r.status === 429 || r.status === 503) await new Promise((w) => setTimeout(w, 50));
          else if (!stop) throw new Error(`kill ${k}: batch refused with ${r.status}: ${r.body.toString()}`);
        }
      };
      const decisionLoop = async (): Promise<void> => {
        while (!stop) {
          const d = nextDecision++;
          const body = {
            scope: { type: 'ip', value: `10.${(d >> 8) & 255}.${d & 255}.1` },
            action: 'quarantine',
            ttl: '1h',
            reason: `crash suite ${d}`,
          };
          const r = await post(`${s.url}/v1/decisions`, admin, Buffer.from(JSON.stringify(body)));
          if (!r) return;
          if (r.status !== 201) {
            if (stop) return;
            throw new Error(`kill ${k}: decision refused with ${r.status}: ${r.body.toString()}`);
          }
          const made = (JSON.parse(r.body.toString()) as { decision: { id: string; revision: number } })
            .decision;
          ackedDecisions.set(made.id, made.revision);
          revision = Math.max(revision, made.revision);
          await new Promise((w) => setTimeout(w, 100));
        }
      };
      const loops = Promise.all([...Array.from({ length: LOOPS }, eventLoop), decisionLoop()]);
      await Promise.race([firstAck, loops]);
      await new Promise((r) => setTimeout(r, 20 + Math.floor(Math.random() * 1000)));
      const gone = new Promise((r) => s.proc.once('exit', r));
      s.proc.kill('SIGKILL');
      await gone;
      procs.delete(s.proc);
      stop = true;
      await loops;
      node.destroy();
      admin.destroy();

      const stored = storedEvents(join(data, 'siem.db'));
      for (const b of ackedBatches) {
        const n = stored.batches.get(b)?.size ?? 0;
        if (n !== BATCH)
          throw new Error(`after kill ${k + 1}: acknowledged batch ${b} has ${n} of ${BATCH} events`);
      }
      events = stored.total;
      log(
        `kill ${k + 1}: ${ackedBatches.size} batches acknowledged, ${events} events stored, ` +
          `${ackedDecisions.size} decisions, revision ${revision}`,
      );
    }
    const last = await restart(kills);
    const gone = new Promise((r) => last.proc.once('exit', r));
    last.proc.kill('SIGTERM');
    await gone;
    procs.delete(last.proc);
    return { kills, batches: ackedBatches.size, events, decisions: ackedDecisions.size, revision };
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await ca.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === import.meta.filename) {
  const r = await crashSiem(killCountArg(process.argv[2], 'crash-siem'), (s) => console.log(`  ${s}`));
  console.log(
    `crash-siem: ${r.kills} kills, ${r.batches} batches acknowledged (${r.events} events stored), every one whole, ` +
      `no event twice, ${r.decisions} decisions all active after each restart, revision ${r.revision}`,
  );
  process.exit(0);
}
