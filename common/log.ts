// Structured logs (pino, as fastify uses). Level from EDGEWARD_LOG_LEVEL; logs go to stderr so
// that commands can print their results on stdout.
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export function createLogger(name: string, level = process.env['EDGEWARD_LOG_LEVEL'] ?? 'info'): Logger {
  return pino({ name, level, base: { svc: name } }, pino.destination({ dest: 2, sync: false }));
}

export const silentLogger: Logger = pino({ level: 'silent' });
