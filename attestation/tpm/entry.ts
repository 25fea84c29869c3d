// The `tpm` method in the attestation registry: the CA runs it only with an attestation policy
// (trusted EK roots, golden PCRs).
import { required } from '../../common/args.js';
import type { MethodEntry } from '../entry.js';
import { createTpmMethod } from './method.js';
import { createTpmProver } from './prover.js';

export const tpmEntry: MethodEntry = {
  name: 'tpm',
  signsIdentity: false,
  reattestOnRenewal: true,
  options: { tcti: { config: 'tcti' } },
  usage: { flags: '--tcti TCTI', config: '{ attest: tpm, tcti: TCTI }' },
  server: ({ policy }) => (policy ? createTpmMethod(policy) : undefined),
  prover: ({ options, usage, print }) =>
    createTpmProver({ tcti: required(options['tcti'], 'tcti', usage), ...(print ? { print } : {}) }),
};
