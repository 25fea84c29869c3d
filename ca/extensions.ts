// Which attestation methods besides `token` a CA serves, and the enrollment policy, from the
// attestation policy file. The TPM and PUF methods register here.
import type { AttestationMethod } from './attestation-method.js';
import type { EnrollmentPolicy } from './service.js';
import { EdgewardError } from '../common/errors.js';
import type { Logger } from '../common/log.js';

export interface CaExtensions {
  readonly methods: AttestationMethod[];
  readonly policy: EnrollmentPolicy | undefined;
}

export function loadCaExtensions(policyFile: string | undefined, _log: Logger): Promise<CaExtensions> {
  if (policyFile !== undefined) {
    throw new EdgewardError('ERR_CONFIG_INVALID', 'attestation policies are not supported by this build');
  }
  return Promise.resolve({ methods: [], policy: undefined });
}
