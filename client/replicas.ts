// Several URLs for one service (CA or SIEM replicas). A call goes to the replica that answered
// last; one that is down (connection refused or reset, timed out, or answering 502/503/504)
// costs one try and the call moves on to the next. Refusals (4xx, a wrong server identity) are
// answers, not outages: they are not retried elsewhere.
import { EdgewardError } from '../common/errors.js';

/** One URL or several, as a configuration gives them. */
export type ServiceUrls = string | readonly string[];

const DOWN_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EPIPE',
  'EAI_AGAIN',
]);
const DOWN_STATUS = new Set([502, 503, 504]);

/** Whether err says the replica is down or overloaded (worth trying another), not that it refused. */
export function replicaDown(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    if (e instanceof EdgewardError) {
      const status = e.detail?.['status'];
      if (typeof status === 'number') return DOWN_STATUS.has(status);
      if (e.detail?.['timeout'] === true) return true;
    }
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && DOWN_CODES.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

export class Replicas {
  readonly urls: readonly string[];
  private preferred = 0;

  constructor(urls: ServiceUrls) {
    const list = typeof urls === 'string' ? [urls] : [...urls];
    if (list.length === 0) throw new EdgewardError('ERR_CONFIG_INVALID', 'no URL given for the service');
    this.urls = list;
  }

  /** The replica calls go to first: the one that answered last. */
  get current(): string {
    return this.urls[this.preferred] as string;
  }

  /** The URLs in the order to try: the current one, then the others in their order after it. */
  order(): string[] {
    const n = this.urls.length;
    return Array.from({ length: n }, (_, i) => this.urls[(this.preferred + i) % n] as string);
  }

  /** `url` answered: calls go there first from now on. */
  worked(url: string): void {
    const i = this.urls.indexOf(url);
    if (i >= 0) this.preferred = i;
  }

  /** `url` is down: if it was the current one, the next replica becomes current. */
  failed(url: string): void {
    if (this.urls[this.preferred] === url) this.preferred = (this.preferred + 1) % this.urls.length;
  }

  /**
   * `fn` against each replica in order until one answers; an error that is not an outage
   * (replicaDown) is thrown at once. When every replica is down, the last error is thrown.
   */
  async call<T>(fn: (url: string) => Promise<T>): Promise<T> {
    let last: unknown;
    for (const url of this.order()) {
      try {
        const r = await fn(url);
        this.worked(url);
        return r;
      } catch (err) {
        if (!replicaDown(err)) throw err;
        this.failed(url);
        last = err;
      }
    }
    throw last;
  }
}

// One selector per list of URLs, so that what worked is remembered from one call to the next
// (a renewal, a CRL fetch) even where the caller makes a new endpoint each time.
const shared = new Map<string, Replicas>();

/** The process-wide selector for this list of URLs. */
export function replicasFor(urls: ServiceUrls): Replicas {
  const list = typeof urls === 'string' ? [urls] : urls;
  const key = list.join('\n');
  let r = shared.get(key);
  if (r === undefined) {
    r = new Replicas(list);
    if (shared.size < 256) shared.set(key, r);
  }
  return r;
}
