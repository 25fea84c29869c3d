// `edgeward puf provision` and `edgeward puf eval`; the dispatcher in cli/ calls runPufCommand.
import { optional, parseCommand, UsageError, usageLine } from '../../common/args.js';
import { command } from '../../common/commands.js';
import { EdgewardError } from '../../common/errors.js';
import { createPrivateFile } from '../../common/private-files.js';
import { runPufEval } from './eval.js';
import { provisionPuf } from './provision.js';
import { createSimPuf, parsePufSpec } from './simulator.js';

export interface PufCliIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

const defaultIo: PufCliIo = {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
};

/** The command's string options by the command table, its refusals usage errors. */
function parse(args: string[], path: string): Partial<Record<string, string>> {
  const a = parseCommand(args, command(path));
  if (a._.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(a._[0]?.slice(0, 64))}`);
  const values: Partial<Record<string, string>> = {};
  for (const [k, v] of Object.entries(a)) if (k !== '_' && optional(v) !== undefined) values[k] = optional(v);
  return values;
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
  const values = parse(args, 'puf provision');
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
  const values = parse(args, 'puf eval');
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
    io.err(`edgeward puf: unknown command ${JSON.stringify(String(sub ?? '').slice(0, 64))}`);
    io.err(`usage: ${usageLine(command('puf provision'))}\n       ${usageLine(command('puf eval'))}`);
    return Promise.resolve(2);
  } catch (err) {
    const where = `edgeward puf ${String(sub)}`;
    if (err instanceof UsageError) {
      const usage = err.message.includes('\nusage: ')
        ? ''
        : `\nusage: ${usageLine(command(`puf ${String(sub)}`))}`;
      io.err(`${where}: ${err.message}${usage}`);
      return Promise.resolve(2);
    }
    if (err instanceof EdgewardError) {
      io.err(`${where}: ${err.code}: ${err.message}`);
      return Promise.resolve(1);
    }
    if (err instanceof Error && 'code' in err && err.code === 'EEXIST') {
      io.err(`${where}: ${String((err as NodeJS.ErrnoException).path)} exists; refusing to overwrite`);
      return Promise.resolve(1);
    }
    throw err;
  }
}
