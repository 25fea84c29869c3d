// Fixed ports for tests that need to name them before anything listens (the demo's --port-base,
// the agent's configuration file). Below the ephemeral range (32768+), so no port-0 listener of a
// parallel test takes one; and checked free, because the machine's own services listen in that
// range too (RabbitMQ's inter-node port is 25672).
import { listenError } from '../../common/ports.js';

/** A first port such that it and the `span - 1` after it are all free now. */
export async function freePortRange(span = 1): Promise<number> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * (12_000 - span));
    let free = true;
    for (let p = base; p < base + span && free; p++) free = (await listenError(p)) === undefined;
    if (free) return base;
  }
}
