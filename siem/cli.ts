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
import { createDashboardApi } from './service/dashboard-api.js';
import { openDashboardDb } from './dashboard/cli.js';
import { Inventory } from './dashboard/inventory.js';
import { startDashboard } from './dashboard/server.js';
import { UserStore } from './dashboard/users.js';

const USAGE =
  'edgeward siem serve --data DIR --listen HOST:PORT --ca URL --fingerprint HEX [--token T] [--trust-domain TD] [--rules DIR] [--playbooks DIR] [--retention-days N] [--revoke-rules ID,ID] [--durability full|normal] [--dashboard HOST:PORT]';

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
      dashboard: { type: 'string' },
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
  const dashListen = optional(a.dashboard);
  let dashboard: { url: string; close(): Promise<void> } | undefined;
  let dashDb: ReturnType<typeof openDashboardDb> | undefined;
  let api: ReturnType<typeof createDashboardApi> | undefined;
  if (dashListen !== undefined) {
    const d = hostPort(dashListen, 'dashboard');
    dashDb = openDashboardDb(dataDir);
    api = createDashboardApi(siem, { inventory: new Inventory(dashDb) });
    // Served with the SIEM's own certificate (URI SAN spiffe://TD/svc/siem); put a reverse proxy
    // with a host-name certificate in front of it for analysts' browsers.
    const id = siem.identity();
    dashboard = await startDashboard({
      host: d.host,
      port: d.port,
      tls: { key: id.keyPem, cert: id.certPem },
      api,
      users: new UserStore(dashDb),
      log,
    });
  }
  out(`edgeward SIEM ${identity.identity} listening on ${siem.url}`);
  if (dashboard) out(`dashboard on ${dashboard.url} (users: edgeward siem user add --data ${dataDir} ...)`);
  out(`decision revision ${siem.hub.revision}, signing key id ${siem.hub.kid}`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      void (async () => {
        await dashboard?.close();
        api?.close();
        await siem.close();
        dashDb?.close();
      })().then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
