// The `puf` method in the attestation registry. PUF devices are registered one by one (`ca puf
// import`), so the CA runs it without a policy file.
import { required } from '../../common/args.js';
import type { MethodEntry } from '../entry.js';
import { createPufMethod } from './method.js';
import { createPufProver } from './prover.js';

export const pufEntry: MethodEntry = {
  name: 'puf',
  signsIdentity: true,
  reattestOnRenewal: true,
  // The mode is a command-line choice only; an agent enrolls in the default (key) mode.
  options: { puf: { config: 'puf' }, 'puf-mode': {} },
  usage: { flags: '--puf sim:SEED [--puf-mode key|crp]', config: '{ attest: puf, puf: SPEC }' },
  server: () => createPufMethod(),
  prover: ({ options, usage }) =>
    createPufProver({
      puf: required(options['puf'], 'puf', usage),
      // The PUF signs the identity it enrolls.
      id: required(options['id'], 'id', usage),
      ...(options['puf-mode'] === 'crp' ? { mode: 'crp' } : {}),
    }),
};
