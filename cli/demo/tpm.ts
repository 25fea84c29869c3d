// The demo's TPM device: swtpm with a TEST manufacturer, and the attestation policy that trusts
// it (t1 by TPM with the golden PCRs read from it, other devices by PUF, nodes and services by
// join token).
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createTestManufacturer,
  policyTrustingMaker,
  readReferencePcrs,
  startSwtpm,
  type Swtpm,
} from '../../attestation/tpm/index.js';
import type { Mesh } from './supervisor.js';

const TD = 'factory.example';

/**
 * swtpm with a TEST manufacturer when swtpm, tpm2-tools and openssl are installed (the demo needs
 * no system package: without them it says so and goes on with PUF devices only), and the
 * attestation policy: t1 by TPM with the golden PCRs read from it, other devices by PUF, nodes
 * and services by join token.
 */
export async function demoTpm(
  dir: string,
  mesh: Mesh,
): Promise<{ swtpm: Swtpm; policyFile: string } | undefined> {
  const missing = ['swtpm', 'swtpm_setup', 'tpm2_createek', 'openssl'].filter(
    (t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0,
  );
  if (missing.length > 0) {
    mesh.step(
      `no TPM device: ${missing.join(', ')} not installed (apt-get install swtpm swtpm-tools tpm2-tools openssl)`,
    );
    return undefined;
  }
  const maker = await createTestManufacturer('Edgeward DEMO TPM Manufacturer', join(dir, 'tpm-maker'));
  const swtpm = await startSwtpm(maker, dir);
  mesh.onStop(() => swtpm.stop());
  const golden = await readReferencePcrs({ tcti: swtpm.tcti });
  const policyFile = join(dir, 'attestation-policy.yaml');
  writeFileSync(
    policyFile,
    policyTrustingMaker(maker, [
      { pattern: `spiffe://${TD}/device/t1`, methods: ['tpm'], pcrs: golden },
      { pattern: `spiffe://${TD}/device/*`, methods: ['puf'] },
      { pattern: `spiffe://${TD}/node/*`, methods: ['token'] },
      { pattern: `spiffe://${TD}/svc/*`, methods: ['token'] },
    ]),
  );
  mesh.step(
    `swtpm TPM on 127.0.0.1:${swtpm.port}, EK certificates from a TEST maker; attestation policy ${policyFile}`,
  );
  return { swtpm, policyFile };
}
