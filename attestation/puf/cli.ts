// `edgeward puf provision` and `edgeward puf eval`; the dispatcher in cli/ calls runPufCommand.
import { parseArgs } from 'node:util';
import { EdgewardError } from '../../common/errors.js';
import { createPrivateFile } from '../../common/private-files.js';
import { runPufEval } from './eval.js';
import { provisionPuf } from './provision.js';
import { createSimPuf, parsePufSpec } from './simulator.js';

const USAGE = `usage:
  edgeward puf provision --id SPIFFE_ID --puf sim:SEED[,bias=X] [--ber 0.10] [--crps 32] --out FILE
  edgeward puf eval [--reads 3000000] [--devices 1000] [--ber 0.05,0.10,0.15] [--pipeline-reads 2000] [--hd-devices 40]`;

export interface PufCliIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

const defaultIo: PufCliIo = {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
};

class UsageError extends Error {}

/** node:util parseArgs over string options, its refusals turned into usage errors. */
function parse(args: string[], names: readonly string[]): Partial<Record<string, string>> {
  const options: Record<string, { type: 'string' }> = {};
  for (const n of names) options[n] = { type: 'string' };
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

function int(v: string | undefined, name: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d{1,10}$/.test(v) || Number(v) < min || Number(v) > max)
    throw new UsageError(`--${name} must be an integer in ${min}..${max}`);
  return Number(v);
}

function rate(v: string, name: string): number {
  if (!/^0?\.\d{1,6}$|^0$/.test(v)) throw new UsageError(`--${name} must be a fraction such as 0.10`);
  return Number(v);
}

function provision(args: string[], io: PufCliIo): number {
  const values = parse(args, ['id', 'puf', 'ber', 'crps', 'out']);
  if (!values.id || !values.puf || !values.out) throw new UsageError('--id, --puf and --out are required');
  let spec = parsePufSpec(values.puf);
  if (values.ber !== undefined) {
    if (spec.ber !== undefined)
      throw new UsageError('give the bit error rate either in --puf or with --ber, not both');
    spec = { ...spec, ber: rate(values.ber, 'ber') };
  }
  const puf = createSimPuf(spec);
  const { record, json } = provisionPuf({ id: values.id, puf, crps: int(values.crps, 'crps', 0, 1024, 32) });
  // The record holds CRP reference responses, which are secrets: owner-only, never overwritten.
  createPrivateFile(values.out, `${JSON.stringify(json, null, 2)}\n`);
  io.out(`provisioned ${record.id}`);
  io.out(`  PUF key   ${json.publicKey}`);
  io.out(`  profile   ${record.profile.name}; ${record.crps.length} challenge-response pairs`);
  io.out(`  record    ${values.out} (register it with: edgeward ca puf import --data DIR ${values.out})`);
  return 0;
}

function evaluate(args: string[], io: PufCliIo): number {
  const values = parse(args, ['reads', 'devices', 'ber', 'pipeline-reads', 'hd-devices']);
  const reads = int(values.reads, 'reads', 1, 100_000_000, 3_000_000);
  const devices = int(values.devices, 'devices', 1, 100_000, Math.min(1000, reads));
  if (reads % devices !== 0) throw new UsageError('--reads must be a multiple of --devices');
  const bers =
    values.ber === undefined ? [0.05, 0.1, 0.15] : values.ber.split(',').map((b) => rate(b, 'ber'));
  if (bers.length === 0 || bers.length > 10 || bers.some((b) => !(b > 0 && b <= 0.4)))
    throw new UsageError('--ber takes up to 10 rates in (0, 0.4]');
  runPufEval({
    bers,
    devices,
    readsPerDevice: reads / devices,
    pipelineReads: int(values['pipeline-reads'], 'pipeline-reads', 1, 1_000_000, 2000),
    hdDevices: int(values['hd-devices'], 'hd-devices', 2, 1000, 40),
    print: io.out,
  });
  return 0;
}

/** `argv` is what follows `edgeward puf` (a leading "puf" is accepted too). Returns the exit code. */
export function runPufCommand(argv: string[], io: PufCliIo = defaultIo): Promise<number> {
  const args = argv[0] === 'puf' ? argv.slice(1) : argv;
  const [sub, ...rest] = args;
  try {
    if (sub === 'provision') return Promise.resolve(provision(rest, io));
    if (sub === 'eval') return Promise.resolve(evaluate(rest, io));
    io.err(USAGE);
    return Promise.resolve(2);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`error: ${err.message}`);
      io.err(USAGE);
      return Promise.resolve(2);
    }
    if (err instanceof EdgewardError) {
      io.err(`error ${err.code}: ${err.message}`);
      return Promise.resolve(1);
    }
    if (err instanceof Error && 'code' in err && err.code === 'EEXIST') {
      io.err(`error: ${String((err as NodeJS.ErrnoException).path)} exists; refusing to overwrite`);
      return Promise.resolve(1);
    }
    throw err;
  }
}
