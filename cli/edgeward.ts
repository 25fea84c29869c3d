#!/usr/bin/env node
// The `edgeward` command: a thin dispatcher over the parts. Subcommands load lazily, each a part's
// command module (its cli.ts) rather than its whole face, so that `edgeward enroll` on a small
// device loads neither the CA nor the SIEM, nor the client pieces it does not run.
import cluster from 'node:cluster';
import { EdgewardError } from '../common/errors.js';
import { UsageError } from '../common/args.js';

type Command = (argv: string[], out: (s: string) => void) => Promise<number>;

const COMMANDS: Record<string, { help: string; load: () => Promise<Command> }> = {
  ca: {
    help: 'the cloud CA: init, serve, token, revoke, release, audit verify',
    load: async () => (await import('../ca/cli.js')).runCaCommand,
  },
  enroll: {
    help: 'enroll this device or node with the CA',
    load: async () => (await import('../client/cli.js')).runEnrollCommand,
  },
  renew: {
    help: 'renew this identity over mTLS',
    load: async () => (await import('../client/cli.js')).runRenewCommand,
  },
  siem: {
    help: 'the SIEM: serve; user add (dashboard users)',
    load: async () => async (argv, out) =>
      argv[0] === 'user'
        ? (await import('../siem/dashboard/cli.js')).runUserCommand(argv.slice(1), out)
        : (await import('../siem/cli.js')).runSiemCommand(argv, out),
  },
  agent: {
    help: 'run the edge agent: mTLS sidecar with live enforcement',
    load: async () => (await import('../agent/index.js')).runAgentCommand,
  },
  puf: {
    help: 'PUF devices: provision (manufacture), eval (fuzzy extractor figures)',
    load: async () => {
      const { runPufCommand } = await import('../attestation/puf/cli.js');
      return (argv, out) => runPufCommand(argv, { out, err: (l) => void process.stderr.write(`${l}\n`) });
    },
  },
  policy: {
    help: 'check policy files; read reference PCRs',
    load: async () => (await import('./policy.js')).runPolicyCommand,
  },
  demo: {
    help: 'run the mesh on this machine with embedded defaults (npm start)',
    load: async () => (await import('./demo.js')).runDemo,
  },
};

const HELP = `edgeward — zero-trust identity and security mesh for devices and edge nodes

usage: edgeward <command> [options]

${Object.entries(COMMANDS)
  .map(([k, v]) => `  ${k.padEnd(10)} ${v.help}`)
  .join('\n')}

Run a command without options for its usage.`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const out = (s: string): void => void process.stdout.write(s + '\n');
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    out(HELP);
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`edgeward: unknown command ${name}\n\n${HELP}\n`);
    return 2;
  }
  try {
    return await (
      await cmd.load()
    )(rest, out);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`edgeward ${name}: ${err.message}\n`);
      return 2;
    }
    if (err instanceof EdgewardError) {
      process.stderr.write(`edgeward ${name}: ${err.code}: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`edgeward ${name}: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
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
  },
  (err: unknown) => {
    process.stderr.write(`edgeward: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
