// Argument parsing shared by the subcommands: node:util parseArgs, strict, with usage errors
// that say what is wrong.
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

export function parse<O extends Options>(
  argv: string[],
  options: O,
  usage: string,
): Record<keyof O, string | boolean | undefined> & { _: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
    return Object.assign(values as unknown as Record<keyof O, string | boolean | undefined>, {
      _: positionals,
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\nusage: ${usage}`);
  }
}

export function required(v: string | boolean | undefined, flag: string, usage: string): string {
  if (typeof v !== 'string' || v === '') throw new UsageError(`missing --${flag}\nusage: ${usage}`);
  return v;
}

export function optional(v: string | boolean | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** HOST:PORT, [IPv6]:PORT. */
export function hostPort(text: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new UsageError(`--${flag} must be HOST:PORT, got ${text}`);
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port };
}
