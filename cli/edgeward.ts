#!/usr/bin/env node
// The `edgeward` command: a thin dispatcher over the parts. It finds the command in the command
// table (common/commands.ts), answers `--help` and `--version` itself, refuses unknown flags
// naming the closest valid one, and prints every error in one style: `edgeward <command>: ...`,
// exit 2 for usage errors and 1 for refusals. Subcommands load lazily, each a part's command
// module (its cli.ts), so that `edgeward enroll` on a small device loads neither the CA nor the SIEM.
import cluster from 'node:cluster';
import { edgewardVersion } from '../common/version.js';
import { EdgewardError } from '../common/errors.js';
import {
  checkOptions,
  closest,
  helpText,
  UsageError,
  usageLine,
  wantsHelp,
  type CommandSpec,
} from '../common/args.js';
import { COMMANDS, GROUPS } from '../common/commands.js';
import { takeJoinTokenFromEnv } from '../common/join-token.js';

type Command = (argv: string[], out: (s: string) => void) => Promise<number>;

/** The module that runs each top-level command; it gets the words after the command's name. */
const LOADERS: Record<string, () => Promise<Command>> = {
  ca: async () => (await import('../ca/cli.js')).runCaCommand,
  enroll: async () => (await import('../client/cli.js')).runEnrollCommand,
  renew: async () => (await import('../client/cli.js')).runRenewCommand,
  siem: async () => async (argv, out) => {
    if (argv[0] === 'user')
      return (await import('../siem/dashboard/cli.js')).runUserCommand(argv.slice(1), out);
    return (await import('../siem/cli.js')).runSiemCommand(argv, out);
  },
  agent: async () => async (argv, out) =>
    argv.includes('--check')
      ? (await import('./agent-check.js')).runAgentCheck(argv, out)
      : (await import('../agent/index.js')).runAgentCommand(argv, out),
  puf: async () => {
    const { runPufCommand } = await import('../attestation/puf/cli.js');
    return (argv, out) => runPufCommand(argv, { out, err: (l) => void process.stderr.write(`${l}\n`) });
  },
  policy: async () => (await import('./policy.js')).runPolicyCommand,
  demo: async () => (await import('./demo.js')).runDemo,
};

const HELP_WORDS = new Set(['--help', '-h', 'help']);

const isGroup = (path: string): boolean => path === '' || GROUPS.some((g) => g.path === path);
const leaf = (path: string): CommandSpec | undefined => COMMANDS.find((c) => c.path === path);

/** The words that may follow `path`: its subcommands and subgroups. */
function children(path: string): string[] {
  const prefix = path === '' ? '' : `${path} `;
  const words = [...COMMANDS.map((c) => c.path), ...GROUPS.map((g) => g.path)]
    .filter((p) => p.startsWith(prefix) && p.length > prefix.length)
    .map((p) => p.slice(prefix.length).split(' ')[0] as string);
  return [...new Set(words)];
}

function summaryOf(path: string): string {
  const g = GROUPS.find((x) => x.path === path);
  if (g) return g.summary;
  const s = leaf(path)?.summary ?? '';
  // The first sentence, lower case, for a one-line list.
  const first = /^[^.:]*/.exec(s)?.[0] ?? s;
  return first.charAt(0).toLowerCase() + first.slice(1);
}

/** What `edgeward`, `edgeward ca` or `edgeward siem user` lists. */
function groupHelp(path: string): string {
  const names = children(path);
  const width = Math.max(...names.map((n) => n.length));
  const full = (n: string): string => (path === '' ? n : `${path} ${n}`);
  const head =
    path === ''
      ? 'edgeward — zero-trust identity and security mesh for devices and edge nodes\n\nusage: edgeward <command> [options]'
      : `edgeward ${path} — ${summaryOf(path)}\n\nusage: edgeward ${path} <command> [options]`;
  const list = names.map((n) => `  ${n.padEnd(width)}  ${summaryOf(full(n))}`).join('\n');
  const tail =
    path === ''
      ? '\nRun `edgeward <command> --help` for its options; `edgeward --version` for the version.'
      : `\nRun \`edgeward ${path} <command> --help\` for its options.`;
  return `${head}\n\ncommands:\n${list}\n${tail}`;
}

function describeFailure(err: unknown): { text: string; code: number } {
  if (err instanceof UsageError) return { text: err.message, code: 2 };
  if (err instanceof EdgewardError) return { text: `${err.code}: ${err.message}`, code: 1 };
  const e = err as NodeJS.ErrnoException;
  // A file the user named that cannot be read, an address in use: the system's reason, not a stack.
  if (typeof e?.code === 'string' && typeof e.syscall === 'string') return { text: e.message, code: 1 };
  const debug = process.env['EDGEWARD_LOG_LEVEL'] === 'debug';
  return { text: debug ? String(e?.stack ?? err) : String(e?.message ?? err), code: 1 };
}

export async function main(argv: string[]): Promise<number> {
  // Before anything can spawn a process that would inherit it.
  takeJoinTokenFromEnv();
  const out = (s: string): void => void process.stdout.write(s + '\n');
  const err = (s: string): void => void process.stderr.write(s + '\n');
  if (argv[0] === '--version' || argv[0] === '-V') {
    out(`edgeward ${edgewardVersion()}`);
    return 0;
  }
  let path = '';
  let i = 0;
  while (i < argv.length && isGroup(path)) {
    const next = path === '' ? (argv[i] as string) : `${path} ${argv[i] as string}`;
    if (!isGroup(next) && !leaf(next)) break;
    path = next;
    i++;
  }
  const rest = argv.slice(i);
  const spec = leaf(path);
  if (!spec) {
    if (rest.length === 0) {
      err(groupHelp(path));
      return 2;
    }
    if (HELP_WORDS.has(rest[0] as string)) {
      out(groupHelp(path));
      return 0;
    }
    const word = rest[0] as string;
    const where = path === '' ? 'edgeward' : `edgeward ${path}`;
    const shown = JSON.stringify(word.slice(0, 64)).slice(1, -1);
    if (word.startsWith('-')) {
      err(`${where}: ${shown} needs a command first\n\n${groupHelp(path)}`);
      return 2;
    }
    const near = closest(word, children(path));
    err(`${where}: unknown command ${shown}${near ? ` (did you mean ${near}?)` : ''}\n\n${groupHelp(path)}`);
    return 2;
  }
  if (wantsHelp(rest)) {
    out(helpText(spec));
    return 0;
  }
  const top = path.split(' ')[0] as string;
  try {
    checkOptions(rest, spec);
    const run = await (LOADERS[top] as () => Promise<Command>)();
    return await run(argv.slice(1), out);
  } catch (e) {
    const f = describeFailure(e);
    const usage = f.code === 2 && !f.text.includes('\nusage: ') ? `\nusage: ${usageLine(spec)}` : '';
    err(
      `edgeward ${path}: ${f.text}${usage}${f.code === 2 ? `\n(edgeward ${path} --help explains every option)` : ''}`,
    );
    return f.code;
  }
}

// Started by `edgeward demo` with an IPC channel: when that parent goes away, however it ended
// (Ctrl-C, a closed terminal, kill -9), stop as on SIGTERM, so no server is left orphaned.
// Cluster workers (`ca serve --workers N`) also have a channel, to their primary: not this one.
if (process.send !== undefined && !cluster.isWorker) {
  process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  process.channel?.unref();
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // A cluster worker's channel to its primary would keep a worker that failed to start alive.
    if (cluster.isWorker) process.exit(code);
  },
  (e: unknown) => {
    process.stderr.write(`edgeward: ${String(e)}\n`);
    process.exitCode = 1;
  },
);
