// The SIEM's own identity (spiffe://TD/svc/siem): enrolled once with a join token into
// DATA/identity, then renewed over mTLS at 2/3 of each certificate's lifetime.
import { request } from 'node:https';
import { createTokenProver } from '../../attestation/index.js';
import { enroll, renew, replicasFor, type ServiceUrls } from '../../client/index.js';
import {
  listenHostNames,
  NO_SERVICE_NAMES,
  permittedHostNames,
  serviceNamesFromJson,
  type ServiceNames,
} from '../../ca/index.js';
import { NO_HOST_NAMES } from '../../common/csr.js';
import { EdgewardError } from '../../common/errors.js';
import { hasIdentity, loadIdentity, type LoadedIdentity } from '../../common/identity-dir.js';
import { isTrustDomain, parseIdentity, serviceId } from '../../common/identity.js';
import type { Logger } from '../../common/log.js';

export interface SiemIdentityOptions {
  readonly dir: string;
  readonly caUrl: ServiceUrls;
  readonly fingerprint: string;
  readonly token?: string | undefined;
  /** Asked from the CA's /healthz when absent (the enrollment then proves it against the pinned root). */
  readonly trustDomain?: string | undefined;
  /** Where the SIEM listens: its certificate carries the names of it the CA permits (for curl). */
  readonly listenHost?: string | undefined;
  readonly print?: (line: string) => void;
}

/**
 * Reads the CA's advertised trust domain and declared service names (unauthenticated: enrollment
 * checks the trust domain against the pin, and the CA checks every name it is asked for).
 */
export function caHealth(caUrl: string): Promise<{ trustDomain: string; serviceNames: ServiceNames }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL('/healthz', caUrl), { rejectUnauthorized: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (n > 4096) req.destroy(new Error('answer too large'));
        else chunks.push(c);
      });
      res.on('end', () => {
        try {
          const h = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
            trustDomain?: unknown;
            serviceNames?: unknown;
          };
          if (typeof h.trustDomain !== 'string' || !isTrustDomain(h.trustDomain))
            throw new Error('no trust domain');
          resolve({ trustDomain: h.trustDomain, serviceNames: namesOf(h.serviceNames) });
        } catch (err) {
          reject(
            new EdgewardError('ERR_SIEM_IDENTITY', 'the CA did not say its trust domain', { cause: err }),
          );
        }
      });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', (err) =>
      reject(new EdgewardError('ERR_SIEM_IDENTITY', `cannot reach the CA at ${caUrl}`, { cause: err })),
    );
    req.end();
  });
}

/** The CA's declared names; unreadable ones count as none (the CA checks what is asked anyway). */
function namesOf(v: unknown): ServiceNames {
  try {
    return v === undefined ? NO_SERVICE_NAMES : serviceNamesFromJson(JSON.stringify(v));
  } catch {
    return NO_SERVICE_NAMES;
  }
}

/** Loads the SIEM identity, enrolling it first with the join token if the folder is empty. */
export async function ensureSiemIdentity(o: SiemIdentityOptions): Promise<LoadedIdentity> {
  if (!hasIdentity(o.dir)) {
    if (o.token === undefined)
      throw new EdgewardError(
        'ERR_SIEM_IDENTITY',
        `no identity in ${o.dir}: give --token-file FILE or EDGEWARD_JOIN_TOKEN for the first start`,
      );
    const health =
      o.trustDomain === undefined || o.listenHost !== undefined
        ? await replicasFor(o.caUrl).call((url) => caHealth(url))
        : { trustDomain: o.trustDomain, serviceNames: NO_SERVICE_NAMES };
    const td = o.trustDomain ?? health.trustDomain;
    // Renewals keep these names (client/renew.ts asks for the names the certificate has).
    const hosts =
      o.listenHost === undefined
        ? NO_HOST_NAMES
        : permittedHostNames(health.serviceNames, listenHostNames(o.listenHost));
    await enroll({
      ca: o.caUrl,
      fingerprint: o.fingerprint,
      id: serviceId(td, 'siem'),
      prover: createTokenProver(o.token),
      out: o.dir,
      hosts,
      ...(o.print ? { print: o.print } : {}),
    });
  }
  const id = loadIdentity(o.dir);
  const parsed = parseIdentity(id.identity);
  if (id.identity !== serviceId(parsed.trustDomain, 'siem'))
    throw new EdgewardError('ERR_SIEM_IDENTITY', `${o.dir} holds ${id.identity}, not the SIEM's identity`);
  if (o.trustDomain !== undefined && parsed.trustDomain !== o.trustDomain)
    throw new EdgewardError('ERR_SIEM_IDENTITY', `${o.dir} is for trust domain ${parsed.trustDomain}`);
  return id;
}

/** When to renew: 2/3 into the certificate's lifetime. */
export function renewalDue(id: Pick<LoadedIdentity, 'notBefore' | 'notAfter'>): number {
  return id.notBefore + Math.floor(((id.notAfter - id.notBefore) * 2) / 3);
}

const MAX_TIMER = 2 ** 31 - 1;

/** Renews on schedule; on failure retries every minute (or sooner near expiry) until it works. */
export class IdentityRenewer {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly o: {
      readonly dir: string;
      readonly caUrl: ServiceUrls;
      readonly now: () => number;
      readonly log: Logger;
      readonly onRenewed: (id: LoadedIdentity) => void;
    },
  ) {}

  start(current: LoadedIdentity): void {
    this.arm(renewalDue(current) - this.o.now(), current);
  }

  private arm(ms: number, current: LoadedIdentity): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.run(current), Math.max(0, Math.min(MAX_TIMER, ms)));
    this.timer.unref();
  }

  private async run(current: LoadedIdentity): Promise<void> {
    if (this.o.now() < renewalDue(current)) return this.arm(renewalDue(current) - this.o.now(), current);
    try {
      await this.renewNow();
    } catch (err) {
      const left = current.notAfter - this.o.now();
      this.o.log.error({ err, msLeft: left }, 'SIEM identity renewal failed; retrying');
      this.arm(Math.max(1000, Math.min(60_000, left / 10)), current);
    }
  }

  /** Renews now (operators, tests), hands the new identity over and re-arms the schedule. */
  async renewNow(): Promise<LoadedIdentity> {
    await renew({ ca: this.o.caUrl, dir: this.o.dir });
    const next = loadIdentity(this.o.dir);
    this.o.log.info(
      { serial: next.serial, notAfter: new Date(next.notAfter).toISOString() },
      'SIEM identity renewed',
    );
    this.o.onRenewed(next);
    if (this.timer) clearTimeout(this.timer);
    this.start(next);
    return next;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
