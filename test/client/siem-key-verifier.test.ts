// The agent follows the SIEM's decision-signing key as the SIEM renews: a new kid makes it fetch
// the SIEM's chain, which must lead to its bundle and name spiffe://TD/svc/siem.
import { createPrivateKey } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { siemKeyVerifier } from '../../client/decision-verifier.js';
import { DecisionStore } from '../../client/decisions-store.js';
import { renew } from '../../client/renew.js';
import { systemClock, type Clock } from '../../common/clock.js';
import { signDecisionDelta, signDecisionSet } from '../../common/decision-jws.js';
import { loadIdentity } from '../../common/identity-dir.js';
import { spkiSha256Hex } from '../../common/x509.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { tempDir } from '../helpers/tmp.js';
import { enrollAs } from '../siem/service/setup.js';

const TD = 'factory.example';
const dir = tempDir();
let ca: TestCa;

beforeAll(async () => {
  ca = await startTestCa();
});
afterAll(async () => {
  await ca.stop();
});

function set(revision: number): { trustDomain: string; revision: number; issuedAt: number; decisions: [] } {
  return { trustDomain: TD, revision, issuedAt: Date.now(), decisions: [] };
}

function keyOf(folder: string): { key: ReturnType<typeof createPrivateKey>; kid: string } {
  const id = loadIdentity(folder);
  const kid = spkiSha256Hex(id.leaf.publicKey.export({ type: 'spki', format: 'der' }));
  return { key: createPrivateKey(id.keyPem), kid };
}

async function signedBy(folder: string, revision: number): Promise<string> {
  const { key, kid } = keyOf(folder);
  return signDecisionSet(set(revision), key, kid);
}

/** A delta from `from` adding one IP quarantine, signed with the folder's current key. */
async function deltaBy(folder: string, from: number, ip: string): Promise<string> {
  const { key, kid } = keyOf(folder);
  const now = Date.now();
  return signDecisionDelta(
    {
      trustDomain: TD,
      from,
      revision: from + 1,
      issuedAt: now,
      upserts: [
        {
          id: `d${from + 1}`,
          revision: from + 1,
          scope: { type: 'ip', value: ip },
          action: 'quarantine',
          reason: 'test',
          createdAt: now,
          expiresAt: now + 30 * 86_400_000,
          alerts: [],
        },
      ],
      removals: [],
    },
    key,
    kid,
  );
}

const unreachable = (): Promise<string> => Promise.reject(new Error('the SIEM is unreachable'));

describe('siemKeyVerifier', () => {
  it('fetches the key for a new kid after the SIEM renews, and refuses a chain that is not the SIEM', async () => {
    const siemDir = join(dir, 'siem');
    await enrollAs(ca, `spiffe://${TD}/svc/siem`, siemDir);
    let fetches = 0;
    let serve = (): string => loadIdentity(siemDir).certPem;
    const v = siemKeyVerifier({
      trustDomain: TD,
      clock: systemClock,
      minRefetchMs: 0,
      bundle: () => ca.rootPem,
      fetchChain: () => {
        fetches++;
        return Promise.resolve(serve());
      },
    });
    expect((await v.verifySet(await signedBy(siemDir, 1), null)).revision).toBe(1);
    expect((await v.verifySet(await signedBy(siemDir, 2), 1)).revision).toBe(2);
    expect(fetches).toBe(1);

    await renew({ ca: ca.url, dir: siemDir });
    expect((await v.verifySet(await signedBy(siemDir, 3), 2)).revision).toBe(3);
    expect(fetches).toBe(2);

    // A node's key presented as the SIEM's: the chain is ours, the name is not.
    const nodeDir = join(dir, 'node');
    await enrollAs(ca, `spiffe://${TD}/node/n1`, nodeDir);
    serve = () => loadIdentity(nodeDir).certPem;
    await expect(v.verifySet(await signedBy(nodeDir, 4), 3)).rejects.toMatchObject({
      code: 'ERR_SIEM_DECISION_KEY',
    });
  });

  it('spaces out refetches for unknown kids', async () => {
    const siemDir = join(dir, 'siem2');
    await enrollAs(ca, `spiffe://${TD}/svc/siem`, siemDir);
    const other = join(dir, 'siem3');
    await enrollAs(ca, `spiffe://${TD}/svc/siem`, other);
    let fetches = 0;
    const v = siemKeyVerifier({
      trustDomain: TD,
      clock: systemClock,
      minRefetchMs: 60_000,
      bundle: () => ca.rootPem,
      fetchChain: () => {
        fetches++;
        return Promise.resolve(loadIdentity(siemDir).certPem);
      },
    });
    await v.verifySet(await signedBy(siemDir, 1), null);
    // Tokens under another kid: no second fetch within the interval, and they are refused.
    for (let i = 0; i < 3; i++) {
      await expect(v.verifySet(await signedBy(other, 2), 1)).rejects.toMatchObject({
        code: 'ERR_DECISION_SIGNATURE',
      });
    }
    expect(fetches).toBe(1);
  });

  it('persists each token with the SIEM chain that verified it, across a SIEM renewal, and re-verifies them with no network', async () => {
    const siemDir = join(dir, 'siem-store');
    await enrollAs(ca, `spiffe://${TD}/svc/siem`, siemDir);
    const live = siemKeyVerifier({
      trustDomain: TD,
      clock: systemClock,
      minRefetchMs: 0,
      bundle: () => ca.rootPem,
      fetchChain: () => Promise.resolve(loadIdentity(siemDir).certPem),
    });
    const file = join(dir, 'store-keys', 'decisions.json');
    const store = new DecisionStore(file, live, TD);
    await (
      await store.applySnapshot(await signedBy(siemDir, 1))
    ).persisted;
    await (
      await store.applyDelta(await deltaBy(siemDir, 1, '10.0.0.1'))
    ).persisted;
    // The SIEM renews (new key, new kid); the next delta is signed with the new key.
    const before = keyOf(siemDir).kid;
    await renew({ ca: ca.url, dir: siemDir });
    const after = keyOf(siemDir).kid;
    expect(after).not.toBe(before);
    await (
      await store.applyDelta(await deltaBy(siemDir, 2, '10.0.0.2'))
    ).persisted;
    const form = JSON.parse(await readFile(file, 'utf8')) as {
      v: number;
      keys: Record<string, string>;
      deltas: string[];
    };
    expect(form.v).toBe(2);
    expect(Object.keys(form.keys).sort()).toEqual([before, after].sort());

    // A restart two days later (both SIEM certificates expired), cut off from the SIEM.
    const later: Clock = { now: () => Date.now() + 2 * 86_400_000 };
    const offline = siemKeyVerifier({
      trustDomain: TD,
      clock: later,
      bundle: () => ca.rootPem,
      fetchChain: unreachable,
    });
    const loaded = await new DecisionStore(file, offline, TD).load();
    expect(loaded?.revision).toBe(3);
    expect(loaded?.decisions.map((d) => d.scope.value).sort()).toEqual(['10.0.0.1', '10.0.0.2']);
    // But a stored key past its validity does not verify anything live: it needs a fresh chain.
    await expect(offline.verifyDelta(await deltaBy(siemDir, 3, '10.0.0.3'), 3)).rejects.toThrow();
  });

  it('refuses a stored chain that is not the SIEM, or that is missing, and never fetches to make up for it', async () => {
    const siemDir = join(dir, 'siem-tamper');
    await enrollAs(ca, `spiffe://${TD}/svc/siem`, siemDir);
    const nodeDir = join(dir, 'node-tamper');
    await enrollAs(ca, `spiffe://${TD}/node/n9`, nodeDir);
    const v = siemKeyVerifier({
      trustDomain: TD,
      clock: systemClock,
      bundle: () => ca.rootPem,
      fetchChain: () => Promise.resolve(loadIdentity(siemDir).certPem),
    });
    const file = join(dir, 'store-tamper', 'decisions.json');
    await (
      await new DecisionStore(file, v, TD).applySnapshot(await signedBy(siemDir, 1))
    ).persisted;
    const good = await readFile(file, 'utf8');
    let fetches = 0;
    const cutOff = (): ReturnType<typeof siemKeyVerifier> =>
      siemKeyVerifier({
        trustDomain: TD,
        clock: systemClock,
        bundle: () => ca.rootPem,
        fetchChain: () => {
          fetches++;
          return unreachable();
        },
      });
    // A node signs a snapshot and puts its own chain under its kid: the chain is ours, the name is not.
    const nodeKid = keyOf(nodeDir).kid;
    await writeFile(
      file,
      JSON.stringify({
        v: 2,
        snapshot: await signedBy(nodeDir, 9),
        deltas: [],
        keys: { [nodeKid]: loadIdentity(nodeDir).certPem },
      }),
    );
    await expect(new DecisionStore(file, cutOff(), TD).load()).rejects.toMatchObject({
      code: 'ERR_AGENT_DECISION_STORE',
      cause: { code: 'ERR_SIEM_DECISION_KEY' },
    });
    // The SIEM's token without its chain.
    const form = JSON.parse(good) as { keys: Record<string, string> };
    await writeFile(file, JSON.stringify({ ...form, keys: {} }));
    await expect(new DecisionStore(file, cutOff(), TD).load()).rejects.toMatchObject({
      code: 'ERR_AGENT_DECISION_STORE',
    });
    expect(fetches).toBe(0);
    await writeFile(file, good);
    expect((await new DecisionStore(file, cutOff(), TD).load())?.revision).toBe(1);
  });
});
