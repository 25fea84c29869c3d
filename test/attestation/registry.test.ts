// The attestation registry: one list names every method, and from it come the CA's methods, the
// provers of `enroll`, `renew` and the agent, their options and usage lines, and the names the
// attestation policy accepts.
import { describe, expect, it } from 'vitest';
import {
  ATTEST_OPTIONS,
  attestOptionsOf,
  CONFIG_ATTEST_USAGE,
  ENROLL_ATTEST_USAGE,
  METHOD_NAMES,
  METHODS,
  proverFor,
  RENEW_ATTEST_USAGE,
  serverMethods,
} from '../../attestation/index.js';
import { checkAttestationPolicy } from '../../policies/index.js';

const noTokens = (): Promise<undefined> => Promise.resolve(undefined);

describe('attestation registry', () => {
  it('names token, tpm and puf, each once', () => {
    expect(METHOD_NAMES).toEqual(['token', 'tpm', 'puf']);
    expect(new Set(METHOD_NAMES).size).toBe(METHODS.length);
  });

  it('runs tpm only with an attestation policy, and agrees with each method on re-attestation', () => {
    expect(serverMethods({ tokens: noTokens, policy: undefined }).map((m) => m.name)).toEqual([
      'token',
      'puf',
    ]);
    const policy = checkAttestationPolicy('version: 1\n', { methods: METHOD_NAMES });
    const methods = serverMethods({ tokens: noTokens, policy });
    expect(methods.map((m) => m.name)).toEqual(['token', 'tpm', 'puf']);
    for (const m of methods)
      expect(m.reattestOnRenewal).toBe(METHODS.find((e) => e.name === m.name)?.reattestOnRenewal);
  });

  it('gives the command line and the agent configuration their options and usage', () => {
    expect(Object.keys(ATTEST_OPTIONS).sort()).toEqual(
      ['attest', 'id', 'puf', 'puf-mode', 'tcti', 'token', 'token-file'].sort(),
    );
    expect(ENROLL_ATTEST_USAGE).toBe(
      '--attest token|tpm|puf [--token-file FILE (or EDGEWARD_JOIN_TOKEN) | --tcti TCTI | --puf sim:SEED [--puf-mode key|crp]]',
    );
    expect(RENEW_ATTEST_USAGE).toBe(
      '[--attest tpm --tcti TCTI | --attest puf --puf sim:SEED [--puf-mode key|crp]]',
    );
    expect(CONFIG_ATTEST_USAGE).toBe(
      'agent config: enroll: { attest: token, tokenFile: FILE } (or EDGEWARD_JOIN_TOKEN) | { attest: tpm, tcti: TCTI } | { attest: puf, puf: SPEC }',
    );
    const id = 'spiffe://factory.example/node/n1';
    expect(
      attestOptionsOf(
        { attest: 'tpm', tokenFile: '/t', tcti: 'swtpm:port=2321', puf: 'sim:1', mode: 'crp' },
        id,
      ),
    ).toEqual({ id, attest: 'tpm', 'token-file': '/t', tcti: 'swtpm:port=2321', puf: 'sim:1' });
  });

  it('refuses a token on the command line, a missing or unknown method, and missing options', () => {
    const usage = 'edgeward enroll ...';
    expect(() => proverFor({ attest: 'token', token: 'ewt_x' }, usage)).toThrow(
      expect.objectContaining({ code: 'ERR_SECRET_ARGV' }),
    );
    expect(() => proverFor({}, usage)).toThrow('missing --attest\nusage: edgeward enroll ...');
    expect(() => proverFor({ attest: 'sgx' }, usage)).toThrow('unknown --attest sgx (token, tpm, puf)');
    expect(() => proverFor({ attest: 'tpm' }, usage)).toThrow('missing --tcti');
    expect(() => proverFor({ attest: 'puf', puf: 'sim:1' }, usage)).toThrow('missing --id');
    const prover = proverFor(
      { attest: 'puf', puf: 'sim:1', id: 'spiffe://factory.example/device/d1' },
      usage,
    );
    expect(prover.method).toBe('puf');
  });
});
