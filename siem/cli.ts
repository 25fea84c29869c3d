// `edgeward siem serve` (and, in analyst-cli.ts, the analyst commands): enrolls the SIEM's identity on first start (join token), then runs the
// HTTPS service with the rule and playbook folders (the default pack unless told otherwise).
import { join } from 'node:path';
import { hostPort, optional, parseCommand, required, UsageError, usageLine } from '../common/args.js';
import { command } from '../common/commands.js';
import { parseDuration } from '../common/clock.js';
import { EdgewardError } from '../common/errors.js';
import { joinTokenFrom, refuseTokenInArgv } from '../common/join-token.js';
import { privateDir } from '../common/private-files.js';
import { createLogger } from '../common/log.js';
import { defaultPolicyPath, loadReporterPolicy, loadPlaybooks } from '../policies/index.js';
import { loadRules } from '../policies/rules/index.js';
import { readSecretFile } from '../common/private-files.js';
import { MAX_SHARDS, parseBusUrls } from './bus/index.js';
import { startSiemServer, type SiemBusOptions } from './server.js';
import { parsePostgresUrl } from '../common/postgres.js';
import { postgresStores } from './store/store-postgres.js';
import { ensureSiemIdentity } from './service/identity.js';
import { createDashboardApi } from './service/dashboard-api.js';
import { startDashboard } from './dashboard/server.js';
import { loadDashboardCertificate, type DashboardCertificate } from './dashboard/tls.js';
import { DashboardUsers } from './dashboard/users.js';

const USAGE = usageLine(command('siem serve'));

/** policies/default/<what>, found from the source tree or from dist/ (both under the repo root). */
export function defaultPolicyDir(what: 'rules' | 'playbooks'): string {
  return defaultPolicyPath(what);
}

export async function runSiemCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const [sub, ...rest] = argv;
  // The analyst commands (decisions, agents, alerts) are clients of a running SIEM.
  if (sub !== 'serve') return (await import('./analyst-cli.js')).runAnalystCommand(argv, out);
  const a = parseCommand(rest, command('siem serve'));
  if (a.token !== undefined) refuseTokenInArgv();
  // Read (and its mode checked) now, so a bad token file stops the start before anything runs.
  const token = joinTokenFrom({ file: optional(a['token-file']) });
  const dataDir = required(a.data, 'data', USAGE);
  const { host, port } = hostPort(required(a.listen, 'listen', USAGE), 'listen');
  const caUrl = a.ca as string[];
  const fingerprint = required(a.fingerprint, 'fingerprint', USAGE);
  const retention = optional(a['retention-days']);
  if (retention !== undefined && !/^[1-9][0-9]{0,4}$/.test(retention))
    throw new UsageError('--retention-days must be a whole number of days (1..99999)');
  const durability = optional(a.durability);
  if (durability !== undefined && durability !== 'full' && durability !== 'normal')
    throw new UsageError('--durability is full or normal');
  const crlInterval = optional(a['crl-interval']);
  let crlIntervalMs: number | undefined;
  if (crlInterval !== undefined) {
    try {
      crlIntervalMs = parseDuration(crlInterval);
    } catch {
      crlIntervalMs = NaN;
    }
    if (!(crlIntervalMs >= 1000 && crlIntervalMs <= 86_400_000))
      throw new UsageError('--crl-interval must be a duration from 1s to 24h, such as 60s');
  }
  const revokeRules = (optional(a['revoke-rules']) ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const dashListen = optional(a.dashboard);
  const dashAt = dashListen === undefined ? undefined : hostPort(dashListen, 'dashboard');
  // The browsers' certificate is checked before anything starts: a bad file is a refusal, not a
  // half-started service.
  const dashCert = dashboardCertificate(
    dashAt !== undefined,
    optional(a['dashboard-cert']),
    optional(a['dashboard-key']),
  );
  const bus = busOptions(a);
  // Checked before anything starts: a bad URL (or one with a password) is a refusal.
  const storeUrl = optional(a.store);
  const stores = storeUrl === undefined ? undefined : postgresStores(parsePostgresUrl(storeUrl));
  const log = createLogger('siem');
  privateDir(dataDir);
  const identityDir = join(dataDir, 'identity');
  const identity = await ensureSiemIdentity({
    dir: identityDir,
    caUrl,
    fingerprint,
    token,
    trustDomain: optional(a['trust-domain']),
    listenHost: host,
    print: (line) => log.info(line),
  });
  const rules = await loadRules(optional(a.rules) ?? defaultPolicyDir('rules'));
  const playbooks = await loadPlaybooks(optional(a.playbooks) ?? defaultPolicyDir('playbooks'));
  const reporterPolicy = loadReporterPolicy(
    optional(a['reporter-policy']) ?? defaultPolicyPath('reporter-policy.yaml'),
  );
  const siem = await startSiemServer({
    dataDir,
    ...(stores !== undefined ? { stores } : {}),
    host,
    port,
    identity,
    identityDir,
    caUrl,
    rules,
    playbooks,
    reporterPolicy,
    log,
    revokeRules,
    ...(crlIntervalMs !== undefined ? { crlIntervalMs } : {}),
    ...(retention !== undefined ? { retentionDays: Number(retention) } : {}),
    ...(durability !== undefined ? { synchronous: durability === 'full' ? 'FULL' : 'NORMAL' } : {}),
    ...(bus !== undefined ? { bus } : {}),
  });
  let dashboard: { url: string; close(): Promise<void> } | undefined;
  let api: ReturnType<typeof createDashboardApi> | undefined;
  if (dashAt !== undefined) {
    const { inventory, users, sessions } = siem.stores;
    // An inventory from an older version may hold what any reporter made up: rebuilt from evidence.
    if (await inventory.needsRebuild()) await inventory.rebuild(siem.store, siem.trustDomain);
    api = createDashboardApi(siem, { inventory, rules, log });
    // Without the operator's host-name certificate, the SIEM's own one (URI SAN
    // spiffe://TD/svc/siem only), which browsers refuse for a host name.
    const id = siem.identity();
    dashboard = await startDashboard({
      host: dashAt.host,
      port: dashAt.port,
      tls: dashCert ? { key: dashCert.keyPem, cert: dashCert.certPem } : { key: id.keyPem, cert: id.certPem },
      api,
      users: new DashboardUsers(users),
      sessions,
      log,
    });
  }
  out(`edgeward SIEM ${identity.identity} listening on ${siem.url}`);
  if (dashboard) {
    const shown = storeUrl === undefined ? '' : ` --store ${parsePostgresUrl(storeUrl).redacted}`;
    out(`dashboard on ${dashboard.url} (users: edgeward siem user add --data ${dataDir}${shown} ...)`);
    out(
      dashCert
        ? `dashboard certificate for ${dashCert.names.join(', ')}, valid until ${new Date(dashCert.notAfter).toISOString()}`
        : 'warning: the dashboard presents the SIEM’s own certificate (no host name in it): browsers ' +
            'will need a host-name certificate; give --dashboard-cert FILE --dashboard-key FILE',
    );
  }
  out(`decision revision ${siem.hub.revision}, signing key id ${siem.hub.kid}`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      void (async () => {
        await dashboard?.close();
        api?.close();
        await siem.close();
      })().then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}

/** The --bus flags, checked before anything starts; undefined without --bus. */
function busOptions(a: Record<string, string | boolean | string[] | undefined>): SiemBusOptions | undefined {
  const servers = optional(a.bus);
  const others = ['bus-token-file', 'bus-prefix', 'bus-shards', 'bus-group', 'correlate'].filter(
    (f) => a[f] !== undefined,
  );
  if (servers === undefined) {
    if (others.length > 0) throw new UsageError(`--${others[0]} needs --bus`);
    return undefined;
  }
  const shardsText = optional(a['bus-shards']) ?? '4';
  if (!/^[1-9][0-9]{0,2}$/.test(shardsText) || Number(shardsText) > MAX_SHARDS)
    throw new UsageError(`--bus-shards is a whole number from 1 to ${MAX_SHARDS}`);
  const shards = Number(shardsText);
  const prefix = optional(a['bus-prefix']) ?? 'edgeward';
  if (!/^[a-z][a-z0-9_]{0,31}$/.test(prefix))
    throw new UsageError('--bus-prefix is a lower-case name: [a-z][a-z0-9_]{0,31}');
  const group = optional(a['bus-group']) ?? 'siem';
  if (!/^[a-z][a-z0-9_-]{0,31}$/.test(group))
    throw new UsageError('--bus-group is a lower-case name: [a-z][a-z0-9_-]{0,31}');
  const which = optional(a.correlate) ?? 'all';
  let correlate: number[];
  if (which === 'all') correlate = Array.from({ length: shards }, (_, k) => k);
  else if (which === 'none') correlate = [];
  else {
    correlate = which.split(',').map((t) => (/^[0-9]{1,3}$/.test(t.trim()) ? Number(t.trim()) : NaN));
    if (correlate.some((k) => !(k >= 0 && k < shards)))
      throw new UsageError(`--correlate is all, none or shard numbers from 0 to ${shards - 1}`);
    correlate = [...new Set(correlate)];
  }
  const tokenFile = optional(a['bus-token-file']);
  const envToken = process.env['EDGEWARD_BUS_TOKEN'];
  const token =
    tokenFile !== undefined
      ? readSecretFile(tokenFile, 'bus token file')
      : envToken !== undefined && envToken !== ''
        ? envToken
        : undefined;
  return {
    servers: parseBusUrls(servers),
    prefix,
    shards,
    group,
    correlate,
    ...(token !== undefined ? { token } : {}),
  };
}

/** The operator's certificate for browsers, checked now; undefined when neither flag is given. */
function dashboardCertificate(
  dashboard: boolean,
  certFile: string | undefined,
  keyFile: string | undefined,
): DashboardCertificate | undefined {
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined)
    throw new EdgewardError(
      'ERR_DASH_CERT_FLAGS',
      certFile === undefined
        ? '--dashboard-key needs --dashboard-cert'
        : '--dashboard-cert needs --dashboard-key',
    );
  if (!dashboard)
    throw new EdgewardError(
      'ERR_DASH_CERT_FLAGS',
      '--dashboard-cert and --dashboard-key need --dashboard HOST:PORT',
    );
  return loadDashboardCertificate({ certFile, keyFile, now: Date.now() });
}
