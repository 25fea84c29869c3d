// The agent follows the SIEM's decision-signing key as the SIEM renews: a new kid makes it fetch
// the SIEM's chain, which must lead to its bundle and name spiffe://TD/svc/siem.
import { createPrivateKey } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { siemKeyVerifier } from '../../agent/decision-verifier.js';
import { renew } from '../../agent/renew.js';
import { systemClock } from '../../common/clock.js';
import { signDecisionSet } from '../../common/decision-jws.js';
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

async function signedBy(folder: string, revision: number): Promise<string> {
  const id = loadIdentity(folder);
  const kid = spkiSha256Hex(id.leaf.publicKey.export({ type: 'spki', format: 'der' }));
  return signDecisionSet(set(revision), createPrivateKey(id.keyPem), kid);
}

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
});
