// PUF enrollment end to end: a real CA over HTTPS on 127.0.0.1 with the `puf` method, records
// provisioned from the simulator and imported into the CA's SQLite store, and the real enrollment
// client with the PUF prover (tweetnacl on the device side, node:crypto at the CA).
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { remoteCode, enroll } from '../../client/index.js';
import { importPufRecord, createPufProver, provisionPuf, createSimPuf } from '../../attestation/puf/index.js';
import { startTestCa, TEST_TD, type TestCa } from '../helpers/ca.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('edgeward-puf-e2e-');
let ca: TestCa;

async function register(name: string, seed: string, crps = 2): Promise<string> {
  const id = `spiffe://${TEST_TD}/device/${name}`;
  const { json } = provisionPuf({ id, puf: createSimPuf({ seed, ber: 0.1 }), crps });
  await ca.running.store.transaction((tx) => importPufRecord(tx, json));
  return id;
}

async function refusal(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return remoteCode(err) ?? String(err);
  }
}

beforeAll(async () => {
  ca = await startTestCa();
});
afterAll(async () => {
  await ca.stop();
});

describe('PUF enrollment over HTTPS', () => {
  it('enrolls a provisioned device in key mode at 15 % bit errors and issues its certificate', async () => {
    const id = await register('e2e-1', 'e2e-seed-1');
    const out = join(dir, 'e2e-1');
    const issued = await enroll({
      ca: ca.url,
      fingerprint: ca.fingerprint,
      id,
      prover: createPufProver({ puf: 'sim:e2e-seed-1,ber=0.15', id }),
      out,
    });
    expect(issued.identity).toBe(id);
    const cert = new X509Certificate(readFileSync(join(out, 'cert.pem')));
    expect(cert.subjectAltName).toContain(id);
    expect((await ca.running.store.certificatesOf(id)).map((c) => c.method)).toEqual(['puf']);
  });

  it('enrolls in challenge-response mode, each pair once', async () => {
    const id = await register('e2e-2', 'e2e-seed-2', 1);
    const prover = () => createPufProver({ puf: 'sim:e2e-seed-2', id, mode: 'crp' });
    await enroll({ ca: ca.url, fingerprint: ca.fingerprint, id, prover: prover(), out: join(dir, 'e2e-2a') });
    expect(
      await refusal(
        enroll({ ca: ca.url, fingerprint: ca.fingerprint, id, prover: prover(), out: join(dir, 'e2e-2b') }),
      ),
    ).toBe('ERR_ATT_PUF_CRP_EXHAUSTED');
  });

  it("refuses another device's PUF and an identity never provisioned, with their codes", async () => {
    const id = await register('e2e-3', 'e2e-seed-3');
    expect(
      await refusal(
        enroll({
          ca: ca.url,
          fingerprint: ca.fingerprint,
          id,
          prover: createPufProver({ puf: 'sim:someone-else', id }),
          out: join(dir, 'e2e-3'),
        }),
      ),
    ).toBe('ERR_ATT_PUF_KEY_MISMATCH');
    const never = `spiffe://${TEST_TD}/device/never-provisioned`;
    expect(
      await refusal(
        enroll({
          ca: ca.url,
          fingerprint: ca.fingerprint,
          id: never,
          prover: createPufProver({ puf: 'sim:never', id: never }),
          out: join(dir, 'never'),
        }),
      ),
    ).toBe('ERR_ATT_PUF_NOT_PROVISIONED');
  });
});
