// Every attestation method the mesh knows, by name, in one list: the CA runs their server sides,
// `enroll`, `renew` and the agent build their provers from it, and the attestation policy accepts
// its names. A new method is a folder of its own (method, prover, entry) and one line in METHODS.
import { required, UsageError } from '../common/args.js';
import { refuseTokenInArgv } from '../common/join-token.js';
import type { MethodEntry, MethodServerDeps } from './entry.js';
import type { AttestationMethod, Prover } from './method.js';
import { pufEntry } from './puf/entry.js';
import { tokenEntry } from './token/entry.js';
import { tpmEntry } from './tpm/entry.js';

export const METHODS: readonly MethodEntry[] = [tokenEntry, tpmEntry, pufEntry];

export const METHOD_NAMES: readonly string[] = METHODS.map((m) => m.name);

/** The method of that name, if there is one. */
export function methodEntry(name: unknown): MethodEntry | undefined {
  return METHODS.find((m) => m.name === name);
}

/** The command-line options that choose and configure a prover (node:util parseArgs). */
export const ATTEST_OPTIONS: Readonly<Record<string, { readonly type: 'string' }>> = Object.fromEntries([
  ['attest', { type: 'string' }],
  // Parsed only to be refused with a pointer to the safe ways (refuseTokenInArgv).
  ['token', { type: 'string' }],
  ['id', { type: 'string' }],
  ...METHODS.flatMap((m) => Object.keys(m.options).map((flag) => [flag, { type: 'string' }] as const)),
]);

/** `--attest token|tpm|puf [FLAGS | ...]` for `enroll`'s usage line. */
export const ENROLL_ATTEST_USAGE = `--attest ${METHOD_NAMES.join('|')} [${METHODS.map((m) => m.usage.flags).join(' | ')}]`;

/** `[--attest tpm FLAGS | ...]` for `renew`'s usage line: the methods that re-attest. */
export const RENEW_ATTEST_USAGE = `[${METHODS.filter((m) => m.reattestOnRenewal)
  .map((m) => `--attest ${m.name} ${m.usage.flags}`)
  .join(' | ')}]`;

/** The `enroll` section of an agent's configuration, one form per method. */
export const CONFIG_ATTEST_USAGE = `agent config: enroll: ${METHODS.map((m) => m.usage.config).join(' | ')}`;

/** Every method this CA's configuration runs (tpm only with an attestation policy). */
export function serverMethods(deps: MethodServerDeps): AttestationMethod[] {
  return METHODS.flatMap((m) => m.server(deps) ?? []);
}

const stringOf = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The device-side prover that `--attest` names, with its options. */
export function proverFor(
  values: Readonly<Record<string, unknown>>,
  usage: string,
  print?: (line: string) => void,
): Prover {
  if (values['token'] !== undefined) refuseTokenInArgv();
  const attest = required(stringOf(values['attest']), 'attest', usage);
  const entry = methodEntry(attest);
  if (!entry)
    throw new UsageError(`unknown --attest ${attest} (${METHOD_NAMES.join(', ')})\nusage: ${usage}`);
  const options: Record<string, string | undefined> = { id: stringOf(values['id']) };
  for (const flag of Object.keys(entry.options)) options[flag] = stringOf(values[flag]);
  return entry.prover({ options, usage, print });
}

/** The prover options of an agent's `enroll` section (keys as the entries name them), with its identity. */
export function attestOptionsOf(
  enroll: Readonly<Record<string, unknown>>,
  id: string,
): Record<string, string> {
  const out: Record<string, string> = { id };
  if (typeof enroll['attest'] === 'string') out['attest'] = enroll['attest'];
  for (const m of METHODS)
    for (const [flag, { config }] of Object.entries(m.options)) {
      const v = config === undefined ? undefined : enroll[config];
      if (typeof v === 'string') out[flag] = v;
    }
  return out;
}
