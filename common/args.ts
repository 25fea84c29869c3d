// Argument parsing shared by the subcommands: node:util parseArgs, strict, driven by the command
// table (common/commands.ts), with usage errors that say what is wrong and name the closest flag.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { refuseTokenInArgv } from './join-token.js';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** One option of a command: `value` is its placeholder (DIR, HOST:PORT); without it, a switch. */
export interface OptionSpec {
  readonly value?: string;
  readonly help: string;
  readonly required?: boolean;
  readonly multiple?: boolean;
  readonly short?: string;
  /** Parsed only to be refused with a pointer to the safe way; not shown in the help. */
  readonly hidden?: boolean;
}

/** A command or subcommand of `edgeward`, as `--help` shows it and as its parser reads it. */
export interface CommandSpec {
  /** The words after `edgeward`: `ca init`. */
  readonly path: string;
  readonly summary: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** The positional arguments as the usage line shows them (`FILE...`), when there are any. */
  readonly positionals?: { readonly usage: string; readonly help: string; readonly min: number };
  /** Further paragraphs: defaults, where secrets come from, what the command prints. */
  readonly notes?: readonly string[];
  readonly examples: readonly string[];
}

/** A group of subcommands (`ca`, `siem decisions`): what `edgeward ca --help` lists. */
export interface CommandGroup {
  readonly path: string;
  readonly summary: string;
}

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | string[] | undefined>;

/** `edgeward ca init --data DIR --trust-domain TD [--dns NAME]...` */
export function usageLine(spec: CommandSpec): string {
  const parts = [`edgeward ${spec.path}`];
  for (const [name, o] of Object.entries(spec.options)) {
    if (o.hidden) continue;
    const flag = o.value ? `--${name} ${o.value}` : `--${name}`;
    parts.push(o.required ? flag : `[${flag}]${o.multiple ? '...' : ''}`);
  }
  if (spec.positionals) parts.push(spec.positionals.usage);
  return parts.join(' ');
}

/** The full `--help` text: usage, what it does, every option explained, notes, examples. */
export function helpText(spec: CommandSpec): string {
  const lines = [`usage: ${usageLine(spec)}`, '', spec.summary];
  const shown = Object.entries(spec.options).filter(([, o]) => !o.hidden);
  const flags = shown.map(([name, o]) => {
    const short = o.short ? `-${o.short}, ` : '';
    return `${short}--${name}${o.value ? ` ${o.value}` : ''}`;
  });
  const width = Math.min(32, Math.max(0, ...flags.map((f) => f.length), spec.positionals?.usage.length ?? 0));
  if (spec.positionals) {
    lines.push('', 'arguments:', `  ${spec.positionals.usage.padEnd(width)}  ${spec.positionals.help}`);
  }
  if (shown.length > 0) {
    lines.push('', 'options:');
    shown.forEach(([, o], i) => {
      const f = flags[i] as string;
      const help = `${o.help}${o.required ? ' (required)' : ''}${o.multiple ? ' (may be repeated)' : ''}`;
      lines.push(
        f.length > width ? `  ${f}\n  ${''.padEnd(width)}  ${help}` : `  ${f.padEnd(width)}  ${help}`,
      );
    });
  }
  lines.push(`  ${'-h, --help'.padEnd(width)}  print this help`);
  for (const n of spec.notes ?? []) lines.push('', n);
  lines.push('', spec.examples.length > 1 ? 'examples:' : 'example:', ...spec.examples.map((e) => `  ${e}`));
  return lines.join('\n');
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] as number;
      row[j] = Math.min(cur + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length] as number;
}

/** The closest of `names` to `word`, when it is close enough to be a slip of the keyboard. */
export function closest(word: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const n of names) {
    const d = n.startsWith(word) || word.startsWith(n) ? 1 : distance(word, n);
    if (d < bestD) {
      best = n;
      bestD = d;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** `unknown option --trust-domian (did you mean --trust-domain?)` */
export function unknownOption(flag: string, spec: CommandSpec): UsageError {
  const names = Object.entries(spec.options)
    .filter(([, o]) => !o.hidden)
    .map(([n]) => n);
  const bare = flag.replace(/^-+/, '').split('=')[0] ?? '';
  const near = closest(bare, names);
  const shown = JSON.stringify(flag.slice(0, 64)).slice(1, -1);
  return new UsageError(`unknown option ${shown}${near ? ` (did you mean --${near}?)` : ''}`);
}

/** Whether argv asks for help (`-h` or `--help` before any `--`). */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

/**
 * Checks argv against the spec's options without interpreting it: an unknown flag is a usage
 * error naming the closest valid one. For commands that parse their own arguments.
 */
export function checkOptions(argv: readonly string[], spec: CommandSpec): void {
  const shorts = new Map(
    Object.entries(spec.options).flatMap(([n, o]) => (o.short ? [[o.short, n] as const] : [])),
  );
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') return;
    if (!a.startsWith('-') || a === '-') continue;
    const long = a.startsWith('--');
    const name = long ? (a.slice(2).split('=')[0] ?? '') : (shorts.get(a.slice(1, 2)) ?? '');
    const o = Object.hasOwn(spec.options, name) ? spec.options[name] : undefined;
    if (!o) throw unknownOption(a, spec);
    if (o.value && !a.includes('=') && (long || a.length === 2)) i++;
  }
}

/** Parses argv by the command's spec. Unknown flags name the closest valid one. */
export function parseCommand(argv: string[], spec: CommandSpec): Values & { _: string[] } {
  const options: Options = {};
  for (const [name, o] of Object.entries(spec.options)) {
    options[name] = {
      type: o.value ? 'string' : 'boolean',
      ...(o.multiple ? { multiple: true } : {}),
      ...(o.short ? { short: o.short } : {}),
    };
  }
  const usage = usageLine(spec);
  const values = parse(argv, options, usage, spec);
  // A join token on the command line is refused first, whatever else is wrong, so the message
  // that it is exposed is never hidden behind a usage error.
  if (spec.options['token']?.hidden === true && values['token'] !== undefined) refuseTokenInArgv();
  for (const [name, o] of Object.entries(spec.options)) {
    const v = values[name];
    if (o.required && !(Array.isArray(v) && v.length > 0 && v.every((x) => x !== '')))
      required(v, name, usage);
  }
  if (spec.positionals && values._.length < spec.positionals.min)
    throw new UsageError(`missing ${spec.positionals.usage}\nusage: ${usage}`);
  return values;
}

export function parse<O extends Options>(
  argv: string[],
  options: O,
  usage: string,
  spec?: CommandSpec,
): Record<keyof O, string | boolean | undefined> & { _: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
    return Object.assign(values as unknown as Record<keyof O, string | boolean | undefined>, {
      _: positionals,
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const flag = /'([^']*)'/.exec(e.message)?.[1] ?? '';
      const known: CommandSpec = spec ?? {
        path: '',
        summary: '',
        options: Object.fromEntries(Object.keys(options).map((k) => [k, { help: '' }])),
        examples: [],
      };
      throw new UsageError(`${unknownOption(flag, known).message}\nusage: ${usage}`);
    }
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const flag = /--[a-z0-9-]+/.exec(e.message)?.[0] ?? 'an option';
      throw new UsageError(`${flag} needs a value\nusage: ${usage}`);
    }
    throw new UsageError(`${e.message}\nusage: ${usage}`);
  }
}

export function required(v: string | boolean | string[] | undefined, flag: string, usage: string): string {
  if (typeof v !== 'string' || v === '') throw new UsageError(`missing --${flag}\nusage: ${usage}`);
  return v;
}

export function optional(v: string | boolean | string[] | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** HOST:PORT, [IPv6]:PORT. */
export function hostPort(text: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new UsageError(`--${flag} must be HOST:PORT, got ${text}`);
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port };
}
