// `edgeward enroll` and `edgeward renew`: the device side of enrollment.
import {
  ATTEST_OPTIONS,
  ENROLL_ATTEST_USAGE,
  methodEntry,
  proverFor,
  RENEW_ATTEST_USAGE,
} from '../attestation/index.js';
import { optional, parse, required } from '../common/args.js';
import { refuseTokenInArgv } from '../common/join-token.js';
import { enroll } from './enroll.js';
import { renew } from './renew.js';
import { loadIdentity } from '../common/identity-dir.js';

const ENROLL_USAGE = `edgeward enroll --ca URL --fingerprint HEX --id SPIFFE_ID ${ENROLL_ATTEST_USAGE} --out DIR`;
const RENEW_USAGE = `edgeward renew --ca URL --dir DIR ${RENEW_ATTEST_USAGE}`;

// The methods' flags come from the registry, so the options are a record of string flags.
type StringOptions = Record<string, { readonly type: 'string' }>;

export async function runEnrollCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const options: StringOptions = {
    ca: { type: 'string' },
    fingerprint: { type: 'string' },
    out: { type: 'string' },
    ...ATTEST_OPTIONS,
  };
  const a = parse(argv, options, ENROLL_USAGE);
  const prover = proverFor(a, ENROLL_USAGE, out);
  try {
    await enroll({
      ca: required(a.ca, 'ca', ENROLL_USAGE),
      fingerprint: required(a.fingerprint, 'fingerprint', ENROLL_USAGE),
      id: required(a.id, 'id', ENROLL_USAGE),
      out: required(a.out, 'out', ENROLL_USAGE),
      prover,
      print: out,
    });
  } finally {
    await prover.close?.();
  }
  return 0;
}

export async function runRenewCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const options: StringOptions = { ca: { type: 'string' }, dir: { type: 'string' }, ...ATTEST_OPTIONS };
  const a = parse(argv, options, RENEW_USAGE);
  if (a.token !== undefined) refuseTokenInArgv();
  const dir = required(a.dir, 'dir', RENEW_USAGE);
  // A method that signs its identity signs the one the folder holds, unless given.
  const id =
    optional(a.id) ?? (methodEntry(a.attest)?.signsIdentity ? loadIdentity(dir).identity : undefined);
  const prover = optional(a.attest) ? proverFor({ ...a, id }, RENEW_USAGE, out) : undefined;
  try {
    await renew({
      ca: required(a.ca, 'ca', RENEW_USAGE),
      dir,
      ...(prover ? { prover } : {}),
      print: out,
    });
  } finally {
    await prover?.close?.();
  }
  return 0;
}
