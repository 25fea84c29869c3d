// Polls the CA's CRL (`GET /v1/crl`, DER, from a server proven to be spiffe://TD/svc/ca), verifies
// it with the intermediate and hands the revoked serials to the enforcement index, which cuts live
// connections of newly revoked certificates. The last verified CRL is kept on disk and enforced
// again at the next start, before any connection, whether or not the CA answers.
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/log.js';
import { EdgewardError } from '../common/errors.js';
import { privateDir, replacePrivateFile } from '../common/private-files.js';
import type { Enforcer } from './enforcement.js';
import {
  httpsCall,
  MAX_CRL_BYTES,
  parseVerifiedCrl,
  replicasFor,
  type ServiceUrls,
  type VerifiedCrl,
} from '../client/index.js';
import type { IdentityMaterial } from './rotation.js';

export type CrlFetcher = () => Promise<Uint8Array>;

/** `caId`: the CA's SPIFFE ID (spiffe://TD/svc/ca); a server without it is not asked for the CRL. */
export function httpsCrlFetcher(
  caUrls: ServiceUrls,
  caId: string,
  identity: () => IdentityMaterial,
): CrlFetcher {
  const replicas = replicasFor(caUrls);
  return () =>
    replicas.call(async (caUrl) => {
      const r = await httpsCall({
        url: `${caUrl}/v1/crl`,
        context: identity().context,
        expect: caId,
        maxBytes: MAX_CRL_BYTES,
        code: 'ERR_AGENT_CRL_FETCH',
      });
      if (r.status !== 200)
        throw new EdgewardError('ERR_AGENT_CRL_FETCH', `CA answered ${r.status}`, {
          detail: { status: r.status },
        });
      return r.body;
    });
}

/**
 * What /healthz says of the CRL. `current`: a verified CRL before its nextUpdate; `stale`: past it
 * (still enforced, the CA has not given a newer one); `none`: none held yet; `refused`: the stored
 * one did not verify (the agent fails closed until the CA gives a good one).
 */
export type CrlState = 'current' | 'stale' | 'none' | 'refused';

export interface CrlStatus {
  readonly state: CrlState;
  /** Where the CRL in force came from: `ca` (fetched since start) or `stored` (from state.dir). */
  readonly source: 'ca' | 'stored' | null;
  readonly thisUpdate: number | null;
  readonly nextUpdate: number | null;
  readonly revoked: number;
  /** The code of the last failure (fetch, verification or store), null after a success. */
  readonly error: string | null;
  /** Why the stored CRL was refused at start (state `refused`), null otherwise. */
  readonly storeError: string | null;
}

export interface CrlPollerOptions {
  readonly fetch: CrlFetcher;
  readonly enforcer: Enforcer;
  readonly identity: () => IdentityMaterial;
  readonly interval: number;
  readonly log: Logger;
  readonly clock: Clock;
  /** Where the last verified CRL (DER) is kept, 0600; null keeps nothing. */
  readonly file: string | null;
  readonly onKill?: (n: number) => void;
}

const codeOf = (err: unknown): string => (err instanceof EdgewardError ? err.code : 'ERR_AGENT_CRL_FETCH');

export class CrlPoller {
  private timer: NodeJS.Timeout | null = null;
  private last: VerifiedCrl | null = null;
  private source: 'ca' | 'stored' | null = null;
  private storeError: string | null = null;
  private error: string | null = null;
  private fetch: CrlFetcher;
  private interval: number;
  lastError: unknown = null;

  constructor(private readonly o: CrlPollerOptions) {
    this.fetch = o.fetch;
    this.interval = o.interval;
  }

  get revokedCount(): number {
    return this.last?.serials.size ?? 0;
  }

  status(): CrlStatus {
    const l = this.last;
    let state: CrlState = 'none';
    if (l) state = l.nextUpdate !== null && l.nextUpdate <= this.o.clock.now() ? 'stale' : 'current';
    else if (this.storeError !== null) state = 'refused';
    return {
      state,
      source: this.source,
      thisUpdate: l?.thisUpdate ?? null,
      nextUpdate: l?.nextUpdate ?? null,
      revoked: this.revokedCount,
      error: this.error,
      storeError: this.storeError,
    };
  }

  /**
   * Before any listener opens: enforces the stored CRL, checked like a fetched one (framing and the
   * intermediate's signature). One that is there but does not verify makes the agent fail closed.
   */
  async restore(): Promise<void> {
    if (this.o.file === null) return;
    let der: Buffer;
    try {
      der = await readFile(this.o.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      return this.refuse(
        new EdgewardError('ERR_AGENT_CRL_STORE', `cannot read ${this.o.file}`, { cause: err }),
      );
    }
    try {
      const crl = await parseVerifiedCrl(der, this.o.identity().intermediates);
      this.apply(crl, 'stored');
    } catch (err) {
      this.refuse(err);
    }
  }

  private refuse(err: unknown): void {
    this.storeError = this.error = codeOf(err);
    this.lastError = err;
    this.o.log.error(
      { err, file: this.o.file },
      'the stored CRL is refused: every connection is refused until the CA gives a verified one',
    );
    this.o.enforcer.failClosed('crl', `the stored CRL is refused (${this.storeError})`);
  }

  start(): void {
    const tick = (): void => {
      void this.pollOnce().finally(() => {
        if (this.timer !== null) {
          this.timer = setTimeout(tick, this.interval);
          this.timer.unref();
        }
      });
    };
    this.timer = setTimeout(tick, 0);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** A reloaded `ca` section: the new fetch and interval, the CRL in force kept. */
  reconfigure(fetch: CrlFetcher, interval: number): void {
    const running = this.timer !== null;
    this.stop();
    this.fetch = fetch;
    this.interval = interval;
    if (running) this.start();
  }

  /** One poll; failures keep the last good CRL in force. Returns the CRL applied, or null. */
  async pollOnce(): Promise<VerifiedCrl | null> {
    let crl: VerifiedCrl;
    let der: Uint8Array;
    try {
      der = await this.fetch();
      crl = await parseVerifiedCrl(der, this.o.identity().intermediates);
      if (this.last && crl.thisUpdate < this.last.thisUpdate) throw new EdgewardError('ERR_AGENT_CRL_STALE');
    } catch (err) {
      this.lastError = err;
      this.error = codeOf(err);
      this.o.log.warn({ err }, 'CRL poll failed; the last good CRL stays in force');
      return null;
    }
    const changed = this.last === null || crl.thisUpdate !== this.last.thisUpdate || this.source !== 'ca';
    this.apply(crl, 'ca');
    this.lastError = null;
    this.error = null;
    if (changed && this.o.file !== null) {
      try {
        privateDir(dirname(this.o.file));
        await replacePrivateFile(this.o.file, der);
      } catch (err) {
        this.error = 'ERR_AGENT_CRL_STORE';
        this.o.log.error(
          { err, file: this.o.file },
          'CRL enforced but not stored; a restart cut off from the CA would not have it',
        );
      }
    }
    return crl;
  }

  private apply(crl: VerifiedCrl, source: 'ca' | 'stored'): void {
    this.last = crl;
    this.source = source;
    this.storeError = null;
    const killed = this.o.enforcer.applyRevoked(crl.serials);
    if (killed.length > 0) this.o.onKill?.(killed.length);
  }
}
