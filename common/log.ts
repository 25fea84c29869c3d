// Structured logs (pino, as fastify uses): one JSON object per line on stderr, so that commands
// can print their results on stdout. Every line carries `level`, `time` (Unix ms), `pid`,
// `hostname`, `name` (the part: ca, siem, agent) and `msg`; docs/logging.md lists the fields.
// Level from EDGEWARD_LOG_LEVEL (fatal, error, warn, info, debug, trace, silent; default info).
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The level EDGEWARD_LOG_LEVEL names, or `info` when it names none. */
export function logLevel(value = process.env['EDGEWARD_LOG_LEVEL']): string {
  const v = value?.trim().toLowerCase();
  return v && (LOG_LEVELS as readonly string[]).includes(v) ? v : 'info';
}

/**
 * Errors that say the outside is not there right now (the store is away, the process keeps
 * serving 503 and recovers by itself), not a fault of the code: logged by their code and
 * message, without a stack.
 */
const CONDITIONS: ReadonlySet<string> = new Set(['ERR_STORE_UNAVAILABLE']);

function errSerializer(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  if (err.name === 'EdgewardError' && typeof code === 'string' && CONDITIONS.has(code))
    return { type: 'EdgewardError', code, message: err.message };
  return pino.stdSerializers.err(err);
}

export function createLogger(name: string, level = logLevel()): Logger {
  const log = pino(
    { name, level, serializers: { err: errSerializer } },
    pino.destination({ dest: 2, sync: false }),
  );
  const asked = process.env['EDGEWARD_LOG_LEVEL'];
  if (asked !== undefined && asked.trim() !== '' && logLevel(asked) !== asked.trim().toLowerCase())
    log.warn(
      { value: asked.slice(0, 32), levels: LOG_LEVELS },
      'EDGEWARD_LOG_LEVEL names no level; logging at info',
    );
  return log;
}

export const silentLogger: Logger = pino({ level: 'silent' });
