// `edgeward policy pcrs --tcti T`: reads a reference device's PCRs and prints them as the `tpm`
// section of an attestation policy rule, ready to paste under an identity pattern.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPcrValues } from './prover.js';
import { createToolRunner } from './tools.js';
import { optional, parseCommand, required, UsageError, usageLine } from '../../common/args.js';
import { command } from '../../common/commands.js';
import type { Logger } from '../../common/log.js';
import { PCR_BANKS, type PcrBank } from '../../policies/index.js';

export interface ReferencePcrsOptions {
  readonly tcti: string;
  readonly bank?: PcrBank;
  /** Defaults to PCRs 0-7 (firmware, boot loader and Secure Boot state). */
  readonly pcrs?: readonly number[];
  readonly log?: Logger;
  /** Used in the header comment; defaults to now. */
  readonly date?: Date;
}

export const DEFAULT_REFERENCE_PCRS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7];

export function formatPcrPolicy(bank: PcrBank, values: ReadonlyMap<number, Buffer>, comment: string): string {
  const lines = [`# ${comment}`, 'tpm:', `  pcrBank: ${bank}`, '  pcrs:'];
  for (const [i, v] of [...values].sort((a, b) => a[0] - b[0]))
    lines.push(`    ${i}: "${v.toString('hex')}"`);
  return `${lines.join('\n')}\n`;
}

export async function readReferencePcrs(opts: ReferencePcrsOptions): Promise<string> {
  const bank = opts.bank ?? 'sha256';
  if (!Object.hasOwn(PCR_BANKS, bank)) throw new TypeError(`unknown PCR bank ${bank}`);
  const pcrs = [...(opts.pcrs ?? DEFAULT_REFERENCE_PCRS)];
  if (pcrs.length === 0 || pcrs.some((p) => !Number.isInteger(p) || p < 0 || p > 23)) {
    throw new TypeError('PCR indices must be integers 0..23');
  }
  const dir = await mkdtemp(join(tmpdir(), 'edgeward-pcrs-'));
  try {
    const tools = createToolRunner({ tcti: opts.tcti, cwd: dir, ...(opts.log ? { log: opts.log } : {}) });
    const values = await readPcrValues(tools, dir, bank, pcrs);
    const when = (opts.date ?? new Date()).toISOString();
    return formatPcrPolicy(bank, values, `golden PCRs read from ${opts.tcti} at ${when}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const POLICY_PCRS_USAGE = usageLine(command('policy pcrs'));

/** `edgeward policy pcrs ...` (argv after `pcrs`): prints the `tpm` section on `out`. */
export async function runPolicyPcrsCommand(
  argv: string[],
  out: (s: string) => void,
  log?: Logger,
): Promise<number> {
  const a = parseCommand(argv, command('policy pcrs'));
  const tcti = required(a.tcti, 'tcti', POLICY_PCRS_USAGE);
  const bank = optional(a.bank) ?? 'sha256';
  if (!Object.hasOwn(PCR_BANKS, bank))
    throw new UsageError(`--bank must be sha256, sha384 or sha512\nusage: ${POLICY_PCRS_USAGE}`);
  const list = optional(a.pcrs);
  let pcrs: number[] | undefined;
  if (list !== undefined) {
    if (!/^\d{1,2}(,\d{1,2})*$/.test(list))
      throw new UsageError(`--pcrs must be a list like 0,1,7\nusage: ${POLICY_PCRS_USAGE}`);
    pcrs = [...new Set(list.split(',').map(Number))].sort((x, y) => x - y);
    if (pcrs.some((p) => p > 23)) throw new UsageError(`PCR indices are 0..23\nusage: ${POLICY_PCRS_USAGE}`);
  }
  const text = await readReferencePcrs({
    tcti,
    bank: bank as PcrBank,
    ...(pcrs ? { pcrs } : {}),
    ...(log ? { log } : {}),
  });
  out(text.trimEnd());
  return 0;
}
