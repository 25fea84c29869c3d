// `edgeward agent --config FILE`: loads the YAML config, runs the agent until SIGTERM/SIGINT, and
// reloads on SIGHUP (a bad new config keeps the old one running and the log says why).
import type { EventEmitter } from 'node:events';
import { EdgewardError } from '../common/errors.js';
import { createLogger, type Logger } from '../common/log.js';
import { Agent, type AgentDeps } from './agent.js';
import { loadAgentConfig, type AgentConfig } from './config.js';
import type { DecisionVerifier } from '../client/index.js';
import type { IdentityRefresher } from './rotation.js';
import { defaultEnroll, defaultRenew, defaultVerifier } from './wiring.js';

export interface RunDeps {
  /** Builds the decision verifier from the config (the SIEM's signing key; common/decision-jws.ts). */
  readonly verifier?: (config: AgentConfig) => DecisionVerifier | Promise<DecisionVerifier>;
  readonly renew?: (config: AgentConfig) => IdentityRefresher;
  readonly enroll?: (config: AgentConfig) => IdentityRefresher;
  readonly log?: Logger;
  /** Where signals come from (default: process). */
  readonly signals?: EventEmitter;
  readonly extra?: Partial<AgentDeps>;
  /** Called once the agent is up (tests). */
  readonly onStarted?: (agent: Agent) => void;
}

const USAGE = 'usage: edgeward agent --config FILE';

export function parseAgentArgs(argv: readonly string[]): { config: string } {
  const args = argv[0] === 'agent' ? argv.slice(1) : [...argv];
  let config: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--config' || a === '-c') {
      const v = args[++i];
      if (v === undefined || v.startsWith('-'))
        throw new EdgewardError('ERR_AGENT_CLI_USAGE', `--config needs a file\n${USAGE}`);
      config = v;
    } else if (a.startsWith('--config=')) config = a.slice('--config='.length);
    else
      throw new EdgewardError(
        'ERR_AGENT_CLI_USAGE',
        `unknown argument ${JSON.stringify(a.slice(0, 64))}\n${USAGE}`,
      );
  }
  if (!config) throw new EdgewardError('ERR_AGENT_CLI_USAGE', USAGE);
  return { config };
}

function refusingVerifier(): DecisionVerifier {
  const no = (): Promise<never> =>
    Promise.reject(
      new EdgewardError('ERR_AGENT_DECISION_INVALID', 'no decision verifier is wired into this build'),
    );
  return { verifySet: no, verifyDelta: no };
}

function describe(err: unknown): string {
  if (err instanceof EdgewardError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Why the agent cannot run: a plain line on a terminal, a JSON log line otherwise (stderr is then
 * a log file or a journal, where every line is JSON).
 */
function fatal(log: Logger, what: string, err: unknown): void {
  if (process.stderr.isTTY) {
    process.stderr.write(`edgeward agent: ${what ? `${what}: ` : ''}${describe(err)}\n`);
    return;
  }
  log.fatal(
    { code: err instanceof EdgewardError ? err.code : undefined },
    `${what ? `${what}: ` : ''}${describe(err)}`,
  );
  log.flush();
}

/** The `agent` subcommand. The dispatcher may pass its `out` printer as the second argument; it is not needed. */
export async function runAgentCommand(
  argv: string[],
  depsOrOut: RunDeps | ((line: string) => void) = {},
): Promise<number> {
  const deps: RunDeps = typeof depsOrOut === 'function' ? {} : depsOrOut;
  const log = deps.log ?? createLogger('agent');
  let file: string;
  let config: AgentConfig;
  try {
    file = parseAgentArgs(argv).config;
    config = await loadAgentConfig(file);
  } catch (err) {
    fatal(log, '', err);
    return 2;
  }
  let agent: Agent;
  try {
    const verifier = deps.verifier ? await deps.verifier(config) : await defaultVerifier(config);
    if (!verifier) log.warn('no decisions.key configured: SIEM decisions will be refused');
    agent = await Agent.start(config, {
      verifier: verifier ?? refusingVerifier(),
      renew: (deps.renew ?? defaultRenew)(config),
      enroll: (deps.enroll ?? defaultEnroll)(config),
      log,
      ...deps.extra,
    });
  } catch (err) {
    fatal(log, 'cannot start', err);
    return 1;
  }
  log.info(
    { identity: config.identity.id, inbound: config.inbound.length, outbound: config.outbound.length },
    'agent running',
  );
  deps.onStarted?.(agent);
  const signals = deps.signals ?? process;
  return new Promise<number>((resolve) => {
    let reloading: Promise<void> = Promise.resolve();
    const onHup = (): void => {
      reloading = reloading.then(async () => {
        try {
          const next = await loadAgentConfig(file);
          await agent.reload(next);
          log.info('configuration reloaded');
        } catch (err) {
          log.error(
            { code: err instanceof EdgewardError ? err.code : undefined },
            `configuration reload refused, the old one keeps running: ${describe(err)}`,
          );
        }
      });
    };
    const onStop = (signal?: unknown): void => {
      log.info({ signal: typeof signal === 'string' ? signal : undefined }, 'agent stopping');
      signals.off('SIGHUP', onHup);
      signals.off('SIGTERM', onStop);
      signals.off('SIGINT', onStop);
      void reloading
        .then(() => agent.stop())
        .then(
          () => resolve(0),
          (err: unknown) => {
            log.error({ err }, 'error while stopping');
            resolve(1);
          },
        );
    };
    signals.on('SIGHUP', onHup);
    signals.on('SIGTERM', onStop);
    signals.on('SIGINT', onStop);
  });
}
