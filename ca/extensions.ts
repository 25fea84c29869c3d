// Which attestation methods besides `token` a CA serves, and the enrollment policy. With an
// attestation policy file the CA runs the `tpm` method (trusted EK roots, golden PCRs) and
// allows per identity pattern only the methods the policy lists; without one, every method it
// runs is allowed.
import type { AttestationMethod } from '../attestation/method.js';
import type { EnrollmentPolicy } from './service.js';
import { createPufMethod } from '../attestation/puf/index.js';
import { createTpmMethod } from '../attestation/tpm/index.js';
import type { Logger } from '../common/log.js';
import {
  describeAttestationPolicy,
  loadAttestationPolicy,
  methodsFor,
} from '../policies/attestation-policy.js';

export interface CaExtensions {
  readonly methods: AttestationMethod[];
  readonly policy: EnrollmentPolicy | undefined;
}

export function loadCaExtensions(policyFile: string | undefined, log: Logger): Promise<CaExtensions> {
  // PUF devices are registered one by one (`ca puf import`), so the method needs no policy file.
  if (policyFile === undefined) return Promise.resolve({ methods: [createPufMethod()], policy: undefined });
  const policy = loadAttestationPolicy(policyFile);
  log.info({ policyFile, policy: describeAttestationPolicy(policy) }, 'attestation policy loaded');
  return Promise.resolve({
    methods: [createTpmMethod(policy), createPufMethod()],
    policy: { methodsFor: (identity) => methodsFor(policy, identity) },
  });
}
