// A feed of things that happened (committed events, alerts, revoked serials) to the pieces that
// sit on a running SIEM; a listener that throws is logged and the others still hear.
import type { Logger } from '../../common/log.js';

export class Feed<T> {
  private readonly listeners = new Set<(x: T) => void>();
  private readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
  }

  /** Adds a listener; the function returned removes it. */
  subscribe(fn: (x: T) => void): () => void {
    this.listeners.add(fn);
    return () => void this.listeners.delete(fn);
  }

  notify(x: T): void {
    for (const fn of this.listeners) {
      try {
        fn(x);
      } catch (err) {
        this.log.error({ err }, 'a listener failed');
      }
    }
  }
}
