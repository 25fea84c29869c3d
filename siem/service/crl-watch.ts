// The SIEM's view of the CA's revocations: polls `GET /v1/crl` from the server proven to be
// spiffe://TD/svc/ca, verifies it against the intermediate of the SIEM's own chain (the agent's
// CRL parser), and hands the revoked serials over. A failed poll keeps the last good CRL. The CA
// serves a cached CRL that changes only with a revocation (made through its API or by
// `edgeward ca revoke` on its data folder), so a poll every few seconds costs little, and a CRL
// with the same bytes as the last one is not parsed again. Past the nextUpdate of the CRL in force
// (the CA unreachable that long) the watch says `stale` (/healthz, /metrics) and the serials it
// knows stay revoked: nothing is ever forgotten for want of a newer CRL.
import { readFile } from 'node:fs/promises';
import { caRequest, endpointFromBundle, parseVerifiedCrl, type ServiceUrls } from '../../client/index.js';
import type { LoadedIdentity } from '../../common/identity-dir.js';
import { EdgewardError } from '../../common/errors.js';
import { parseIdentity } from '../../common/identity.js';
import type { Logger } from '../../common/log.js';
import { fromPemAll, toPem } from '../../common/pem.js';
import { replacePrivateFile } from '../../common/private-files.js';

/** Default poll period: a revocation made by `edgeward ca revoke` is known within it. */
export const CRL_INTERVAL_MS = 5_000;

/** The last verified CRL in the SIEM's data folder. */
export const CRL_FILE = 'crl.der';

export interface CrlWatchOptions {
  readonly caUrl: ServiceUrls;
  readonly identity: () => LoadedIdentity;
  readonly intervalMs: number;
  readonly log: Logger;
  /** A verified CRL: its serials and thisUpdate; false when it is older than the one in force. */
  readonly onCrl: (serials: ReadonlySet<string>, thisUpdate: number) => boolean | void;
  readonly now?: () => number;
  /**
   * Where the last verified CRL (DER) is kept, 0600, and read back at the next start (checked
   * again) before the CA answers; undefined keeps nothing.
   */
  readonly file?: string;
}

/**
 * `current`: a verified CRL before its nextUpdate; `stale`: past it (its serials still enforced);
 * `none`: no CRL verified since the start (only the CA's revocation events are known).
 */
export type CrlWatchState = 'current' | 'stale' | 'none';

export interface CrlWatchStatus {
  readonly state: CrlWatchState;
  readonly thisUpdate: number | null;
  readonly nextUpdate: number | null;
  readonly polls: number;
  readonly failures: number;
  /** Where the CRL in force came from: `ca` (fetched since the start), `stored` (the file). */
  readonly source: 'ca' | 'stored' | null;
  /** The code of the last poll's failure, null after a success. */
  readonly error: string | null;
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
  private inForce: { thisUpdate: number; nextUpdate: number | null } | null = null;
  private source: 'ca' | 'stored' | null = null;
  polls = 0;
  failures = 0;
  lastError: unknown = null;

  constructor(o: CrlWatchOptions) {
    this.o = o;
  }

  status(): CrlWatchStatus {
    const f = this.inForce;
    const now = (this.o.now ?? Date.now)();
    const state: CrlWatchState =
      f === null ? 'none' : f.nextUpdate !== null && f.nextUpdate <= now ? 'stale' : 'current';
    const err = this.lastError;
    return {
      state,
      thisUpdate: f?.thisUpdate ?? null,
      nextUpdate: f?.nextUpdate ?? null,
      polls: this.polls,
      failures: this.failures,
      source: this.source,
      error: err === null ? null : err instanceof EdgewardError ? err.code : 'ERR_INTERNAL',
    };
  }

  /**
   * Before the SIEM serves: the stored CRL, verified like a fetched one, so that a restart while
   * the CA is unreachable forgets no revocation. One that does not verify is ignored (logged, and
   * its code in status()); the CA's next CRL replaces it.
   */
  async restore(): Promise<void> {
    const file = this.o.file;
    if (file === undefined) return;
    let raw: Buffer;
    try {
      raw = await readFile(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      this.lastError = err;
      this.o.log.error({ err, file }, 'cannot read the stored CRL');
      return;
    }
    try {
      const crl = await parseVerifiedCrl(new Uint8Array(raw), intermediatesOf(this.o.identity()));
      if (this.o.onCrl(crl.serials, crl.thisUpdate) === false) return;
      this.inForce = { thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate };
      this.source = 'stored';
      this.lastRaw = raw;
    } catch (err) {
      this.lastError = err;
      this.o.log.error({ err, file }, 'the stored CRL is refused; the CA’s next CRL replaces it');
    }
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
      if (r.status !== 200)
        throw new EdgewardError('ERR_ENROLL_RESPONSE', `the CA answered ${r.status} to GET /v1/crl`);
      const raw = Buffer.from(r.raw);
      if (this.lastRaw !== null && this.lastRaw.equals(raw)) {
        this.lastError = null;
        return true;
      }
      const crl = await parseVerifiedCrl(new Uint8Array(r.raw), intermediatesOf(id));
      if (this.inForce !== null && crl.thisUpdate < this.inForce.thisUpdate)
        throw new EdgewardError('ERR_AGENT_CRL_STALE');
      if (this.o.onCrl(crl.serials, crl.thisUpdate) === false) throw new EdgewardError('ERR_AGENT_CRL_STALE');
      this.inForce = { thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate };
      this.source = 'ca';
      this.lastRaw = raw;
      this.lastError = null;
      if (this.o.file !== undefined)
        await replacePrivateFile(this.o.file, raw).catch((err: unknown) =>
          this.o.log.error({ err, file: this.o.file }, 'CRL enforced but not stored'),
        );
      return true;
    } catch (err) {
      this.failures++;
      this.lastError = err;
      this.o.log.warn({ err }, 'CRL poll failed; the last good CRL stays in force');
      return false;
    }
  }
}
