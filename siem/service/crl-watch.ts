// The SIEM's view of the CA's revocations: polls `GET /v1/crl` from the server proven to be
// spiffe://TD/svc/ca, verifies it against the intermediate of the SIEM's own chain (the agent's
// CRL parser), and hands the revoked serials over. A failed poll keeps the last good CRL. The CA
// serves a cached CRL that changes only with a revocation (made through its API or by
// `edgeward ca revoke` on its data folder), so a poll every few seconds costs little, and a CRL
// with the same bytes as the last one is not parsed again.
import { caRequest, endpointFromBundle, parseVerifiedCrl, type ServiceUrls } from '../../client/index.js';
import type { LoadedIdentity } from '../../common/identity-dir.js';
import { parseIdentity } from '../../common/identity.js';
import type { Logger } from '../../common/log.js';
import { fromPemAll, toPem } from '../../common/pem.js';

/** Default poll period: a revocation made by `edgeward ca revoke` is known within it. */
export const CRL_INTERVAL_MS = 5_000;

export interface CrlWatchOptions {
  readonly caUrl: ServiceUrls;
  readonly identity: () => LoadedIdentity;
  readonly intervalMs: number;
  readonly log: Logger;
  /** A verified CRL: its serials and thisUpdate. */
  readonly onCrl: (serials: ReadonlySet<string>, thisUpdate: number) => void;
}

/** The certificates after the leaf in the identity's cert.pem: the CA's intermediate. */
export function intermediatesOf(id: LoadedIdentity): string[] {
  return fromPemAll(id.certPem, 'CERTIFICATE')
    .slice(1)
    .map((der) => toPem('CERTIFICATE', der));
}

export class CrlWatch {
  private readonly o: CrlWatchOptions;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private lastRaw: Buffer | null = null;
  polls = 0;
  failures = 0;
  lastError: unknown = null;

  constructor(o: CrlWatchOptions) {
    this.o = o;
  }

  start(): void {
    const tick = (): void => {
      void this.pollOnce().finally(() => {
        if (this.stopped) return;
        this.timer = setTimeout(tick, this.o.intervalMs);
        this.timer.unref();
      });
    };
    this.timer = setTimeout(tick, 0);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** One poll: true when a verified CRL was handed over. */
  async pollOnce(): Promise<boolean> {
    this.polls++;
    try {
      const id = this.o.identity();
      const ep = endpointFromBundle(this.o.caUrl, id.bundlePem, parseIdentity(id.identity).trustDomain);
      const r = await caRequest<unknown>(ep, 'GET', '/v1/crl');
      if (r.status !== 200) throw new Error(`the CA answered ${r.status}`);
      const raw = Buffer.from(r.raw);
      if (this.lastRaw !== null && this.lastRaw.equals(raw)) {
        this.lastError = null;
        return true;
      }
      const crl = await parseVerifiedCrl(new Uint8Array(r.raw), intermediatesOf(id));
      this.o.onCrl(crl.serials, crl.thisUpdate);
      this.lastRaw = raw;
      this.lastError = null;
      return true;
    } catch (err) {
      this.failures++;
      this.lastError = err;
      this.o.log.warn({ err }, 'CRL poll failed; the last good CRL stays in force');
      return false;
    }
  }
}
