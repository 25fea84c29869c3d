// Crash suite for the agent's event spool: a writer process appends numbered events and reports
// each acknowledged append (Spool.append returned: durable); it is killed with SIGKILL at a random
// point, the spool is reopened and checked (every acknowledged event there, in order, none twice),
// and a new writer goes on. Run: npm run build && node dist/bench/fuzz/crash-spool.js [kills=50]
import { mkdtempSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Spool } from '../../client/index.js';
import { killCountArg, killWhileWriting } from './crash.js';

const LIMITS = { maxEvents: 1_000_000, maxBytes: 256 * 1024 * 1024 };

function child(file: string, from: number): void {
  const spool = new Spool(file, LIMITS);
  for (let n = from; ; n += 3) {
    const batch = [n, n + 1, n + 2].map((i) => JSON.stringify({ n: i, pad: 'x'.repeat(i % 200) }));
    spool.append(batch);
    writeSync(1, `${n + 2}\n`);
  }
}

/** Every number from 0 up in the spool exactly once, in order; returns the count. */
function check(file: string, acknowledged: number): number {
  const spool = new Spool(file, LIMITS);
  try {
    const rows = spool.peek(LIMITS.maxEvents);
    rows.forEach((r, i) => {
      const n = (JSON.parse(r.body) as { n: number }).n;
      if (n !== i) throw new Error(`spool row ${i} holds event ${n}: lost, duplicated or reordered`);
    });
    if (rows.length - 1 < acknowledged)
      throw new Error(`acknowledged event ${acknowledged} lost (spool ends at ${rows.length - 1})`);
    return rows.length;
  } finally {
    spool.close();
  }
}

async function main(kills: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeward-crash-spool-'));
  const file = join(dir, 'spool.db');
  const self = fileURLToPath(import.meta.url);
  let next = 0;
  let acknowledged = -1;
  try {
    for (let k = 0; k < kills; k++) {
      // Killed at a random point once it is writing (its first acknowledgement), 10-200 ms later.
      acknowledged = await killWhileWriting(self, ['--child', file, String(next)], acknowledged);
      const count = check(file, acknowledged);
      next = count;
      if (next % 3 !== 0) {
        // A batch is one transaction: all of it or none of it.
        throw new Error(`spool holds ${next} events, not whole batches of 3`);
      }
    }
    console.log(
      `crash-spool: ${kills} kills, ${next} events, every acknowledged one kept, none twice, in order`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') child(process.argv[3] as string, Number(process.argv[4]));
else await main(killCountArg(process.argv[2], 'crash-spool'));
