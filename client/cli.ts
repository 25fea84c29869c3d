// `edgeward enroll` and `edgeward renew`: the device side of enrollment.
import { methodEntry, proverFor } from '../attestation/index.js';
import { optional, parseCommand, required, usageLine } from '../common/args.js';
import { command } from '../common/commands.js';
import { refuseTokenInArgv } from '../common/join-token.js';
import { enroll } from './enroll.js';
import { renew } from './renew.js';
import { loadIdentity } from '../common/identity-dir.js';

const ENROLL_USAGE = usageLine(command('enroll'));
const RENEW_USAGE = usageLine(command('renew'));

export async function runEnrollCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const a = parseCommand(argv, command('enroll'));
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
  const a = parseCommand(argv, command('renew'));
  if (a.token !== undefined) refuseTokenInArgv();
  const dir = required(a.dir, 'dir', RENEW_USAGE);
  // A method that signs its identity signs the one the folder holds, unless given.
  const id =
    optional(a.id) ?? (methodEntry(a.attest)?.signsIdentity ? loadIdentity(dir).identity : undefined);
  const prover = optional(a.attest) ? proverFor({ ...a, id }, RENEW_USAGE, out) : undefined;
  try {
    await renew({
      ca: a.ca as string[],
      dir,
      ...(prover ? { prover } : {}),
      print: out,
    });
  } finally {
    await prover?.close?.();
  }
  return 0;
}
