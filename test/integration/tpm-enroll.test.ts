// TPM enrollment end to end: a swtpm with EK certificates from a TEST manufacturer, a real CA over
// HTTPS on 127.0.0.1 with the `tpm` method and an attestation policy holding the golden PCRs read
// from the device, and the enrollment client (in process, then the `edgeward enroll` command).
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { remoteCode, enroll, renew } from '../../client/index.js';
import { createTpmMethod, createTpmProver, readReferencePcrs } from '../../attestation/tpm/index.js';
import { checkAttestationPolicy, methodsFor } from '../../policies/index.js';
import { startTestCa, TEST_TD, type TestCa } from '../helpers/ca.js';
import { edgewardAsync } from '../helpers/cli.js';
import { createTestManufacturer, policyTrustingMaker, startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { tempDir } from '../helpers/tmp.js';
import { METHOD_NAMES } from '../../attestation/index.js';

const dir = tempDir('edgeward-tpm-e2e-');
const ID = `spiffe://${TEST_TD}/node/tpm-e2e`;
let ca: TestCa;
let tpm: Swtpm;

beforeAll(async () => {
  const maker = await createTestManufacturer('E2E TPM Vendor', join(dir, 'maker'));
  tpm = await startSwtpm(maker);
  const golden = await readReferencePcrs({ tcti: tpm.tcti });
  const policy = checkAttestationPolicy(
    policyTrustingMaker(maker, [{ pattern: `spiffe://${TEST_TD}/node/*`, methods: ['tpm'], pcrs: golden }]),
    { methods: METHOD_NAMES },
  );
  ca = await startTestCa({
    methods: [createTpmMethod(policy)],
    policy: { methodsFor: (id) => methodsFor(policy, id) },
  });
});

afterAll(async () => {
  await ca?.stop();
  await tpm?.stop();
});

describe('TPM enrollment over HTTPS', () => {
  it('enrolls a node with its TPM and audits the EK it is now bound to', async () => {
    const out = join(dir, 'in-process');
    const lines: string[] = [];
    const prover = createTpmProver({ tcti: tpm.tcti, print: (l) => lines.push(l) });
    try {
      const issued = await enroll({
        ca: ca.url,
        fingerprint: ca.fingerprint,
        id: ID,
        prover,
        out,
        print: (l) => lines.push(l),
      });
      expect(issued.identity).toBe(ID);
    } finally {
      await prover.close?.();
    }
    const cert = new X509Certificate(readFileSync(join(out, 'cert.pem')));
    expect(cert.subjectAltName).toContain(ID);
    expect(lines).toContain('activating the CA credential (proves the AK and the EK share this TPM)');
    const audit = (await ca.audits('enroll.success')).find((a) => a['identity'] === ID);
    expect(audit?.['method']).toBe('tpm');
    expect(audit?.['facts']).toMatchObject({ ekTrust: 'certificate', akType: 'ecc', pcrBank: 'sha256' });
  });

  it('renews over mTLS only with a fresh quote from the same TPM', async () => {
    const out = join(dir, 'in-process');
    await expect(renew({ ca: ca.url, dir: out })).rejects.toThrow(/re-attest/);
    const prover = createTpmProver({ tcti: tpm.tcti });
    try {
      const issued = await renew({ ca: ca.url, dir: out, prover });
      expect(issued.identity).toBe(ID);
    } finally {
      await prover.close?.();
    }
    const audit = (await ca.audits('renew.success')).find((a) => a['identity'] === ID);
    expect(audit?.['facts']).toMatchObject({ renewal: true, ekTrust: 'certificate' });
  });

  it('`edgeward enroll --attest tpm --tcti` enrolls the same node again from the command line', async () => {
    const out = join(dir, 'cli');
    const r = await edgewardAsync([
      'enroll',
      '--ca',
      ca.url,
      '--fingerprint',
      ca.fingerprint,
      '--id',
      ID,
      '--attest',
      'tpm',
      '--tcti',
      tpm.tcti,
      '--out',
      out,
    ]);
    expect(r.status, `edgeward enroll failed:\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/quoting PCRs sha256:0,1,2,3,4,5,6,7/);
    expect(new X509Certificate(readFileSync(join(out, 'cert.pem'))).subjectAltName).toContain(ID);
  });

  it('refuses this TPM for another identity (ERR_ATT_TPM_EK_BOUND)', async () => {
    const prover = createTpmProver({ tcti: tpm.tcti });
    const other = `spiffe://${TEST_TD}/node/tpm-e2e-other`;
    try {
      await enroll({ ca: ca.url, fingerprint: ca.fingerprint, id: other, prover, out: join(dir, 'other') });
      expect.unreachable('enrollment of a second identity from one TPM must be refused');
    } catch (err) {
      expect(remoteCode(err)).toBe('ERR_ATT_TPM_EK_BOUND');
    } finally {
      await prover.close?.();
    }
  });
});
