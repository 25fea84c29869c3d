// `edgeward demo` (npm start): the whole mesh on this machine with embedded defaults, as real
// processes — the CA, the SIEM with the analysts' dashboard, three edge agents — plus simulated
// PUF devices and, where swtpm is installed, a TPM device, then an attack: a cloned device
// credential used from a second address, and a rogue host scanning the agents. It prints the
// timeline (events, alerts, decisions, agents acknowledging, the live connection cut) and keeps
// running until Ctrl-C. The supervisor, the story and the TPM set-up live in cli/demo/.
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { optional, parseCommand, UsageError } from '../common/args.js';
import { command } from '../common/commands.js';
import { privateDir } from '../common/private-files.js';
import { LOCK_FILE, lockDemoFolder } from './demo/lock.js';
import { runScenario } from './demo/scenario.js';
import { checkPortsFree, Mesh, portsFrom } from './demo/supervisor.js';

const DEMO_MARKER = '.edgeward-demo';

export async function runDemo(argv: string[], out: (s: string) => void): Promise<number> {
  const a = parseCommand(argv, command('demo'));
  const base = Number(optional(a['port-base']) ?? '8443');
  if (!Number.isInteger(base) || base < 1024 || base > 65_000)
    throw new UsageError('--port-base is 1024 to 65000');
  const ports = portsFrom(base);
  await checkPortsFree(base, ports);
  const dir = resolve(optional(a['data']) ?? '.edgeward/demo');
  // The demo's own folder starts afresh each run, so the story is the same every time. Only a
  // folder the demo made (it holds the marker) is ever emptied: `--data ~` must not wipe a home.
  const marker = join(dir, DEMO_MARKER);
  if (
    existsSync(dir) &&
    readdirSync(dir).length > 0 &&
    !existsSync(marker) &&
    !existsSync(join(dir, LOCK_FILE))
  )
    throw new UsageError(
      `${dir} is not empty and was not made by edgeward demo; give an empty or new folder`,
    );
  privateDir(dir);
  // Held before anything in the folder is removed: a running demo's CA is never wiped.
  const lock = lockDemoFolder(dir);
  const mesh = new Mesh(dir, out);
  try {
    for (const name of readdirSync(dir))
      if (name !== LOCK_FILE) rmSync(join(dir, name), { recursive: true, force: true });
    writeFileSync(marker, 'made by edgeward demo; emptied and filled again at every run\n');
    await runScenario(mesh, ports, a['once'] === true);
    return 0;
  } finally {
    await mesh.stop();
    lock.release();
  }
}
