// Polls the CA's CRL (`GET /v1/crl`, DER), verifies it with the intermediate and hands the revoked
// serials to the enforcement index, which cuts live connections of newly revoked certificates.
import type { Logger } from '../common/log.js';
import { EdgewardError } from '../common/errors.js';
import type { Enforcer } from './enforcement.js';
import { httpsCall } from './https-client.js';
import { MAX_CRL_BYTES, parseVerifiedCrl, type VerifiedCrl } from './crl.js';
import type { IdentityMaterial } from './rotation.js';

export type CrlFetcher = () => Promise<Uint8Array>;

export function httpsCrlFetcher(caUrl: string, identity: () => IdentityMaterial): CrlFetcher {
  return async () => {
    const r = await httpsCall({
      url: `${caUrl}/v1/crl`,
      context: identity().context,
      expect: null,
      maxBytes: MAX_CRL_BYTES,
      code: 'ERR_AGENT_CRL_MALFORMED',
    });
    if (r.status !== 200) throw new EdgewardError('ERR_AGENT_CRL_MALFORMED', `CA answered ${r.status}`);
    return r.body;
  };
}

export class CrlPoller {
  private timer: NodeJS.Timeout | null = null;
  private last: VerifiedCrl | null = null;
  lastError: unknown = null;

  constructor(
    private readonly fetch: CrlFetcher,
    private readonly enforcer: Enforcer,
    private readonly identity: () => IdentityMaterial,
    private readonly interval: number,
    private readonly log: Logger,
    private readonly onKill: (n: number) => void = () => undefined,
  ) {}

  get revokedCount(): number {
    return this.last?.serials.size ?? 0;
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

  /** One poll; failures keep the last good CRL in force. Returns the serials applied, or null. */
  async pollOnce(): Promise<VerifiedCrl | null> {
    try {
      const der = await this.fetch();
      const crl = await parseVerifiedCrl(der, this.identity().intermediates);
      if (this.last && crl.thisUpdate < this.last.thisUpdate) throw new EdgewardError('ERR_AGENT_CRL_STALE');
      this.last = crl;
      const killed = this.enforcer.applyRevoked(crl.serials);
      if (killed.length > 0) this.onKill(killed.length);
      this.lastError = null;
      return crl;
    } catch (err) {
      this.lastError = err;
      this.log.warn({ err }, 'CRL poll failed; the last good CRL stays in force');
      return null;
    }
  }
}
