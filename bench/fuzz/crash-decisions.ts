// Crash suite for the agent's decision store: a process applies signed deltas (and now and then a
// fresh snapshot) and reports each revision once its store is on disk (`persisted` settled); it
// is killed with SIGKILL at a random point, and the store must load and verify again at a
// revision no older than the last one reported. Run:
// npm run build && node dist/bench/fuzz/crash-decisions.js [kills=50]
import { mkdtempSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DecisionStore, jwsDecisionVerifier } from '../../client/index.js';
import { signDecisionDelta, signDecisionSet } from '../../common/decision-jws.js';
import type { Decision } from '../../common/decisions.js';
import { fuzzDecisionKey } from './targets/signed.js';
import { killCountArg, killWhileWriting } from './crash.js';

const TD = 'factory.example';
const clock = { now: () => Date.now() };
const verifier = (): ReturnType<typeof jwsDecisionVerifier> =>
  jwsDecisionVerifier({ publicKey: fuzzDecisionKey().publicKey, trustDomain: TD, clock });

function decision(revision: number): Decision {
  const now = Date.now();
  return {
    id: `d-${revision}`,
    revision,
    scope: { type: 'identity', value: `spiffe://${TD}/device/d${revision}` },
    action: 'quarantine',
    reason: 'crash suite',
    createdAt: now,
    expiresAt: now + 3_600_000,
    alerts: [],
  };
}

async function child(file: string): Promise<void> {
  const key = fuzzDecisionKey().privateKey;
  const store = new DecisionStore(file, verifier(), TD);
  await store.load();
  for (;;) {
    const from = store.revision;
    const revision = from + 1;
    const now = Date.now();
    let persisted: Promise<void>;
    if (store.current === null || revision % 16 === 0) {
      const decisions = [...(store.current?.decisions ?? []), decision(revision)];
      const token = await signDecisionSet(
        { trustDomain: TD, revision, issuedAt: now, decisions },
        key,
        'siem-1',
      );
      persisted = (await store.applySnapshot(token)).persisted;
    } else {
      const token = await signDecisionDelta(
        { trustDomain: TD, from, revision, issuedAt: now, upserts: [decision(revision)], removals: [] },
        key,
        'siem-1',
      );
      persisted = (await store.applyDelta(token)).persisted;
    }
    await persisted;
    writeSync(1, `${revision}\n`);
  }
}

async function main(kills: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeward-crash-decisions-'));
  const file = join(dir, 'decisions.json');
  const self = fileURLToPath(import.meta.url);
  let acknowledged = 0;
  let revision = 0;
  try {
    for (let k = 0; k < kills; k++) {
      acknowledged = await killWhileWriting(self, ['--child', file], acknowledged);
      const store = new DecisionStore(file, verifier(), TD);
      const set = await store.load();
      if (!set) throw new Error(`after kill ${k + 1}: no stored decisions`);
      if (set.revision < acknowledged)
        throw new Error(
          `after kill ${k + 1}: store at revision ${set.revision}, ${acknowledged} was acknowledged`,
        );
      if (set.decisions.length !== set.revision)
        throw new Error(`after kill ${k + 1}: ${set.decisions.length} decisions at revision ${set.revision}`);
      revision = set.revision;
    }
    console.log(
      `crash-decisions: ${kills} kills, revision ${revision}, the store loaded and verified after each, never behind what was acknowledged`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await child(process.argv[3] as string);
else await main(killCountArg(process.argv[2], 'crash-decisions'));
