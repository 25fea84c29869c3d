// `edgeward enroll` and `edgeward renew`: the device side of enrollment.
import { optional, parse, required, UsageError } from '../common/args.js';
import { JOIN_TOKEN_ENV, joinTokenFrom, refuseTokenInArgv } from '../common/join-token.js';
import { createTokenProver } from '../attestation/token/method.js';
import { createTpmProver } from '../attestation/tpm/index.js';
import { createPufProver } from '../attestation/puf/index.js';
import type { Prover } from '../attestation/method.js';
import { enroll } from './enroll.js';
import { renew } from './renew.js';
import { loadIdentity } from '../common/identity-dir.js';

const ENROLL_USAGE = `edgeward enroll --ca URL --fingerprint HEX --id SPIFFE_ID --attest token|tpm|puf [--token-file FILE (or ${JOIN_TOKEN_ENV}) | --tcti TCTI | --puf sim:SEED [--puf-mode key|crp]] --out DIR`;
const RENEW_USAGE =
  'edgeward renew --ca URL --dir DIR [--attest tpm --tcti TCTI | --attest puf --puf sim:SEED [--puf-mode key|crp]]';

const ATTEST_OPTIONS = {
  attest: { type: 'string' },
  // Parsed only to be refused with a pointer to the safe ways (refuseTokenInArgv).
  token: { type: 'string' },
  'token-file': { type: 'string' },
  tcti: { type: 'string' },
  puf: { type: 'string' },
  'puf-mode': { type: 'string' },
  id: { type: 'string' },
} as const;

/** The device-side prover for --attest, with its options. */
export function proverFor(
  a: Partial<Record<keyof typeof ATTEST_OPTIONS, string | boolean | undefined>>,
  usage: string,
  print?: (line: string) => void,
): Prover {
  if (a['token'] !== undefined) refuseTokenInArgv();
  const attest = required(a['attest'], 'attest', usage);
  switch (attest) {
    case 'token': {
      const token = joinTokenFrom({ file: optional(a['token-file']) });
      if (token === undefined)
        throw new UsageError(`--attest token needs --token-file FILE or ${JOIN_TOKEN_ENV}\nusage: ${usage}`);
      return createTokenProver(token);
    }
    case 'puf':
      return createPufProver({
        puf: required(a['puf'], 'puf', usage),
        id: required(a['id'], 'id', usage),
        ...(a['puf-mode'] === 'crp' ? { mode: 'crp' } : {}),
      });
    case 'tpm':
      return createTpmProver({ tcti: required(a['tcti'], 'tcti', usage), ...(print ? { print } : {}) });
    default:
      throw new UsageError(`unknown --attest ${attest} (token, tpm, puf)\nusage: ${usage}`);
  }
}

export async function runEnrollCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const a = parse(
    argv,
    {
      ca: { type: 'string' },
      fingerprint: { type: 'string' },
      out: { type: 'string' },
      ...ATTEST_OPTIONS,
    },
    ENROLL_USAGE,
  );
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
  const a = parse(argv, { ca: { type: 'string' }, dir: { type: 'string' }, ...ATTEST_OPTIONS }, RENEW_USAGE);
  if (a.token !== undefined) refuseTokenInArgv();
  const dir = required(a.dir, 'dir', RENEW_USAGE);
  // The PUF signs its identity: the one the folder holds, unless given.
  const id = optional(a.id) ?? (a.attest === 'puf' ? loadIdentity(dir).identity : undefined);
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
