// The `token` method in the attestation registry.
import { UsageError } from '../../common/args.js';
import { JOIN_TOKEN_ENV, joinTokenFrom } from '../../common/join-token.js';
import type { MethodEntry } from '../entry.js';
import { createTokenMethod, createTokenProver } from './method.js';

export const tokenEntry: MethodEntry = {
  name: 'token',
  signsIdentity: false,
  reattestOnRenewal: false,
  options: { 'token-file': { config: 'tokenFile' } },
  usage: {
    flags: `--token-file FILE (or ${JOIN_TOKEN_ENV})`,
    config: `{ attest: token, tokenFile: FILE } (or ${JOIN_TOKEN_ENV})`,
  },
  server: ({ tokens }) => createTokenMethod(tokens),
  prover({ options, usage }) {
    const token = joinTokenFrom({ file: options['token-file'] });
    if (token === undefined)
      throw new UsageError(`--attest token needs --token-file FILE or ${JOIN_TOKEN_ENV}\nusage: ${usage}`);
    return createTokenProver(token);
  },
};
