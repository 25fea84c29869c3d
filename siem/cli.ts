// `edgeward siem serve`: enrolls the SIEM's identity on first start (join token), then runs the
// HTTPS service with the rule and playbook folders (the default pack unless told otherwise).
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostPort, optional, parse, required, UsageError } from '../cli/args.js';
import { createLogger } from '../common/log.js';
import { loadRules } from '../policies/rules/index.js';
import { loadPlaybooks } from './playbooks/index.js';
import { startSiemServer } from './server.js';
import { ensureSiemIdentity } from './service/identity.js';

const USAGE =
  'edgeward siem serve --data DIR --listen HOST:PORT --ca URL --fingerprint HEX [--token T] [--trust-domain TD] [--rules DIR] [--playbooks DIR] [--retention-days N] [--revoke-rules ID,ID] [--durability full|normal]';

/** policies/default/<what>, found from the source tree or from dist/ (both under the repo root). */
export function defaultPolicyDir(what: 'rules' | 'playbooks'): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const p = join(dir, 'policies', 'default', what);
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  return join('policies', 'default', what);
}

export async function runSiemCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'serve') throw new UsageError(`usage: ${USAGE}`);
  const a = parse(
    rest,
    {
      data: { type: 'string' },
      listen: { type: 'string' },
      ca: { type: 'string' },
      fingerprint: { type: 'string' },
      token: { type: 'string' },
      'trust-domain': { type: 'string' },
      rules: { type: 'string' },
      playbooks: { type: 'string' },
      'retention-days': { type: 'string' },
      'revoke-rules': { type: 'string' },
      durability: { type: 'string' },
    },
    USAGE,
  );
  const dataDir = required(a.data, 'data', USAGE);
  const { host, port } = hostPort(required(a.listen, 'listen', USAGE), 'listen');
  const caUrl = required(a.ca, 'ca', USAGE);
  const fingerprint = required(a.fingerprint, 'fingerprint', USAGE);
  const retention = optional(a['retention-days']);
  if (retention !== undefined && !/^[1-9][0-9]{0,4}$/.test(retention))
    throw new UsageError('--retention-days must be a whole number of days (1..99999)');
  const durability = optional(a.durability);
  if (durability !== undefined && durability !== 'full' && durability !== 'normal')
    throw new UsageError('--durability is full or normal');
  const revokeRules = (optional(a['revoke-rules']) ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const log = createLogger('siem');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const identityDir = join(dataDir, 'identity');
  const identity = await ensureSiemIdentity({
    dir: identityDir,
    caUrl,
    fingerprint,
    token: optional(a.token),
    trustDomain: optional(a['trust-domain']),
    print: (line) => log.info(line),
  });
  const rules = await loadRules(optional(a.rules) ?? defaultPolicyDir('rules'));
  const playbooks = await loadPlaybooks(optional(a.playbooks) ?? defaultPolicyDir('playbooks'));
  const siem = await startSiemServer({
    dataDir,
    host,
    port,
    identity,
    identityDir,
    caUrl,
    rules,
    playbooks,
    log,
    revokeRules,
    ...(retention !== undefined ? { retentionDays: Number(retention) } : {}),
    ...(durability !== undefined ? { synchronous: durability === 'full' ? 'FULL' : 'NORMAL' } : {}),
  });
  out(`edgeward SIEM ${identity.identity} listening on ${siem.url}`);
  out(`decision revision ${siem.hub.revision}, signing key id ${siem.hub.kid}`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      void siem.close().then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
