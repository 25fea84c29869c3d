// Crash suite for `edgeward ca serve`: closed loops renew certificates over mTLS while the CA
// process is killed with SIGKILL at a random point; after each kill every renewal the client got a
// certificate for is in the store under its identity, no serial was handed out twice,
// `edgeward ca audit verify` passes, and the CA starts again on the same folder.
// Run: npm run build && node dist/bench/fuzz/crash-ca.js [kills=50]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FILES, openCaStore } from '../../ca/index.js';
import {
  EDGEWARD,
  initCaData,
  post,
  renewalTarget,
  startBenchCa,
  startCaProcess,
  type Target,
} from '../lib.js';
import { killCountArg } from './crash.js';

const TD = 'factory.example';
const IDENTITIES = 4;
const LOOPS = 8;
/** Audit kinds that record a certificate's issuance. */
const ISSUANCES = new Set(['admin.issue', 'enroll.success', 'renew.success', 'service.issue']);

export interface CaCrashResult {
  readonly kills: number;
  readonly renewals: number;
  readonly auditRecords: number;
}

/** The audit chain as the operator checks it: `edgeward ca audit verify` (exit 0, its record count). */
function auditVerify(data: string): number {
  const r = spawnSync(process.execPath, [EDGEWARD, 'ca', 'audit', 'verify', '--data', data], {
    encoding: 'utf8',
    env: { ...process.env, EDGEWARD_LOG_LEVEL: 'warn' },
  });
  const m = /audit chain OK: (\d+) records/.exec(r.stdout);
  if (r.status !== 0 || !m) throw new Error(`ca audit verify: exit ${r.status}\n${r.stdout}${r.stderr}`);
  return Number(m[1]);
}

export async function crashCa(kills: number, log: (s: string) => void = () => {}): Promise<CaCrashResult> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeward-crash-ca-'));
  const data = join(dir, 'ca');
  try {
    const fingerprint = initCaData(data, TD);
    // The identities that renew, enrolled once by an in-process CA on the same folder.
    const setup = await startBenchCa(data, TD, { fingerprint });
    const targets: Target[] = [];
    for (let i = 0; i < IDENTITIES; i++) {
      const id = `spiffe://${TD}/device/crash-${i}`;
      targets.push(await renewalTarget(setup.running.store, setup, id, join(dir, `id-${i}`)));
    }
    await setup.close();

    const acked = new Map<string, string>();
    let auditRecords = 0;
    for (let k = 0; k < kills; k++) {
      const ca = await startCaProcess({ data });
      if (ca.fingerprint !== fingerprint) throw new Error(`kill ${k}: the CA came back with another root`);
      let stop = false;
      let first: () => void = () => {};
      const firstAck = new Promise<void>((r) => (first = r));
      const loop = async (w: number): Promise<void> => {
        const t = targets[w % targets.length] as Target;
        const url = `${ca.url}/v1/renew`;
        for (let i = 0; !stop; i++) {
          const r = await post(url, t.agent, t.body(i));
          if (!r) return; // the CA is gone
          if (r.status !== 200) {
            if (stop) return;
            throw new Error(`kill ${k}: renewal refused with ${r.status}: ${r.body.toString()}`);
          }
          const { serial, identity } = JSON.parse(r.body.toString()) as { serial: string; identity: string };
          if (acked.has(serial)) throw new Error(`kill ${k}: serial ${serial} handed out twice`);
          acked.set(serial, identity);
          first();
        }
      };
      const loops = Promise.all(Array.from({ length: LOOPS }, (_, w) => loop(w)));
      await Promise.race([firstAck, loops]);
      await new Promise((r) => setTimeout(r, 20 + Math.floor(Math.random() * 1000)));
      const gone = new Promise((r) => ca.proc.once('exit', r));
      ca.proc.kill('SIGKILL');
      await gone;
      stop = true;
      await loops;
      for (const t of targets) (t.agent as { destroy(): void }).destroy();

      const store = openCaStore(join(data, FILES.db));
      try {
        for (const [serial, identity] of acked) {
          const rec = await store.getCertificate(serial);
          if (rec?.identity !== identity)
            throw new Error(
              `after kill ${k + 1}: acknowledged renewal ${serial} (${identity}) not in the store`,
            );
        }
        // Every stored certificate has one issuance record in the chain, and every record its certificate.
        const audited = new Map<string, number>();
        for await (const r of store.auditRecords()) {
          const serial = (JSON.parse(r.data) as { serial?: unknown }).serial;
          if (ISSUANCES.has(r.kind) && typeof serial === 'string')
            audited.set(serial, (audited.get(serial) ?? 0) + 1);
        }
        let stored = 0;
        for (const id of await store.identities()) {
          for (const c of await store.certificatesOf(id)) {
            stored++;
            if (audited.get(c.serial) !== 1)
              throw new Error(
                `after kill ${k + 1}: certificate ${c.serial} has ${audited.get(c.serial) ?? 0} issuance records`,
              );
          }
        }
        if (audited.size !== stored)
          throw new Error(`after kill ${k + 1}: ${audited.size} issuance records for ${stored} certificates`);
      } finally {
        await store.close();
      }
      const records = auditVerify(data);
      if (records < auditRecords) throw new Error(`after kill ${k + 1}: the audit chain shrank`);
      auditRecords = records;
      log(`kill ${k + 1}: ${acked.size} renewals acknowledged, audit chain of ${records} records OK`);
    }
    return { kills, renewals: acked.size, auditRecords };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === import.meta.filename) {
  const r = await crashCa(killCountArg(process.argv[2], 'crash-ca'), (s) => console.log(`  ${s}`));
  console.log(
    `crash-ca: ${r.kills} kills, ${r.renewals} renewals acknowledged, every one in the store, no serial twice, one issuance record per certificate, ` +
      `audit chain of ${r.auditRecords} records verified after each kill, the CA restarted on its folder each time`,
  );
  process.exit(0);
}
