// What the bus tests on the real nats-server share: a deployment prefix of their own, stored
// handshake-failure events under it, and a wait for a condition.
import { randomBytes } from 'node:crypto';
import { validateEvent, type EdgeEvent } from '../../../common/events.js';

export const NATS = process.env['EDGEWARD_TEST_NATS'] ?? 'nats://127.0.0.1:4222';

/** A fresh bus prefix (streams and buckets of one test file). */
export const testPrefix = (): string => `t${randomBytes(5).toString('hex')}`;

/** Stored `handshake.failure` events reported by node n1, with ids unique under `prefix`. */
export function failures(prefix: string): (ip: string, at?: number) => EdgeEvent {
  let seq = 0;
  return (ip, at = Date.now()) =>
    validateEvent(
      {
        '@timestamp': at,
        'event.action': 'handshake.failure',
        'observer.type': 'node',
        'observer.identity': 'spiffe://t.example/node/n1',
        'source.ip': ip,
        'event.id': `${prefix}-${seq++}`,
        'event.ingested': at,
      },
      { mode: 'stored' },
    );
}

export async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
