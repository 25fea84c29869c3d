// The agent's own identity (identity folder: key.pem, cert.pem = leaf + intermediate, bundle.pem)
// and its rotation: renew at about 2/3 of the lifetime through the injected renew function, swap
// the TLS context atomically (live connections keep theirs), re-enroll when the cert has expired.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tls from 'node:tls';
import type { SecureContext, SecureContextOptions } from 'node:tls';
import type { Clock } from '../common/clock.js';
import { EdgewardError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { normalizeSerial } from '../common/x509.js';
import { singleUriSan } from './tls-identity.js';

/** Re-attests and writes fresh identity files into `dir` (agent/wiring.ts: client enroll / renew). */
export type IdentityRefresher = (dir: string) => Promise<void>;

export interface IdentityMaterial {
  readonly id: string;
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
  /** PEM blocks after the leaf in cert.pem, plus those kept from before a CA rotation. */
  readonly intermediates: readonly string[];
  /** Root PEMs accepted for peers: the current bundle plus, during CA rotation, the previous one. */
  readonly roots: readonly string[];
  readonly contextOptions: Readonly<SecureContextOptions>;
  readonly context: SecureContext;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const MAX_FILE = 1024 * 1024;
const MAX_TIMER = 2 ** 31 - 1;

export function splitPemCerts(text: string): string[] {
  return Array.from(text.matchAll(PEM_CERT), (m) => m[0] + '\n');
}

async function readSmall(file: string): Promise<string> {
  const text = await readFile(file, 'utf8');
  if (text.length > MAX_FILE)
    throw new EdgewardError('ERR_AGENT_IDENTITY_FILES', `${file} is larger than 1 MiB`);
  return text;
}

/** True when the folder has no identity yet (first start: enroll). */
export async function identityMissing(dir: string): Promise<boolean> {
  try {
    await readFile(join(dir, 'cert.pem'));
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** Loads and checks the identity folder; `previous` lends its roots and intermediates during a CA rotation. */
export async function loadIdentityMaterial(
  dir: string,
  expectId: string,
  previous?: IdentityMaterial,
): Promise<IdentityMaterial> {
  let key: string, certText: string, bundleText: string;
  try {
    [key, certText, bundleText] = await Promise.all([
      readSmall(join(dir, 'key.pem')),
      readSmall(join(dir, 'cert.pem')),
      readSmall(join(dir, 'bundle.pem')),
    ]);
  } catch (cause) {
    if (cause instanceof EdgewardError) throw cause;
    throw new EdgewardError('ERR_AGENT_IDENTITY_FILES', `cannot read identity files in ${dir}`, { cause });
  }
  const chain = splitPemCerts(certText);
  const roots = splitPemCerts(bundleText);
  if (chain.length === 0 || roots.length === 0)
    throw new EdgewardError('ERR_AGENT_IDENTITY_FILES', 'cert.pem or bundle.pem holds no certificate');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(chain[0]!);
  } catch (cause) {
    throw new EdgewardError('ERR_AGENT_IDENTITY_FILES', 'cert.pem does not parse', { cause });
  }
  const id = singleUriSan(leaf.subjectAltName);
  if (id !== expectId)
    throw new EdgewardError(
      'ERR_AGENT_IDENTITY_FILES',
      `cert.pem is for ${id ?? 'no single URI SAN'}, config says ${expectId}`,
    );
  const allRoots = [...new Set([...roots, ...(previous?.roots ?? [])])];
  const intermediates = [...new Set([...chain.slice(1), ...(previous?.intermediates ?? [])])];
  const contextOptions: SecureContextOptions = Object.freeze({
    key,
    cert: certText,
    // The intermediates complete the chain of a peer that sends only its leaf. They are not trust
    // anchors: without X509_V_FLAG_PARTIAL_CHAIN (Node never sets it) OpenSSL trusts only a
    // self-signed certificate of the store, so every chain must still reach one of the roots.
    ca: [...allRoots, ...intermediates.filter((i) => !allRoots.includes(i))],
    minVersion: 'TLSv1.3' as const,
    maxVersion: 'TLSv1.3' as const,
  });
  let context: SecureContext;
  try {
    context = tls.createSecureContext(contextOptions);
  } catch (cause) {
    // "key values mismatch" and friends: a half-written renewal must never replace a good identity.
    throw new EdgewardError(
      'ERR_AGENT_IDENTITY_FILES',
      'key.pem and cert.pem do not make a usable TLS identity',
      { cause },
    );
  }
  return Object.freeze({
    id,
    serial: normalizeSerial(leaf.serialNumber),
    notBefore: Date.parse(leaf.validFrom),
    notAfter: Date.parse(leaf.validTo),
    intermediates,
    roots: allRoots,
    contextOptions,
    context,
  });
}

export interface RotationOptions {
  readonly dir: string;
  readonly id: string;
  readonly clock: Clock;
  readonly log: Logger;
  /** Renewal over mTLS with the current certificate (TPM identities re-attest inside it). */
  readonly renew: IdentityRefresher;
  /** Enrollment from scratch (empty folder, or expired certificate). */
  readonly enroll: IdentityRefresher;
  /** Fraction of the lifetime after which to renew (default 2/3). */
  readonly renewAt?: number;
  readonly onSwap: (m: IdentityMaterial, why: 'renewed' | 'enrolled' | 'reloaded') => void;
  readonly onFailure?: (err: unknown, what: 'renew' | 'enroll') => void;
}

export class Rotation {
  private cur: IdentityMaterial | null = null;
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private stopped = false;
  private busy: Promise<void> | null = null;

  constructor(private readonly o: RotationOptions) {}

  get current(): IdentityMaterial {
    if (!this.cur) throw new TypeError('identity not loaded yet');
    return this.cur;
  }

  /** Loads the identity, enrolling first if the folder is empty or the certificate has expired. */
  async start(): Promise<IdentityMaterial> {
    if (await identityMissing(this.o.dir)) {
      this.o.log.info({ dir: this.o.dir }, 'no identity yet: enrolling');
      await this.o.enroll(this.o.dir);
      this.cur = await loadIdentityMaterial(this.o.dir, this.o.id);
    } else {
      this.cur = await loadIdentityMaterial(this.o.dir, this.o.id);
      if (this.cur.notAfter <= this.o.clock.now()) {
        this.o.log.warn(
          { notAfter: this.cur.notAfter },
          'certificate expired: re-enrolling through attestation',
        );
        await this.o.enroll(this.o.dir);
        this.cur = await loadIdentityMaterial(this.o.dir, this.o.id);
      }
    }
    this.schedule();
    return this.cur;
  }

  /** When the next renewal is due (epoch ms). */
  dueAt(m: IdentityMaterial = this.current): number {
    const frac = this.o.renewAt ?? 2 / 3;
    return m.notBefore + Math.floor((m.notAfter - m.notBefore) * frac);
  }

  /** Renews now (or re-enrolls if expired) and swaps the context; one at a time. */
  rotateNow(): Promise<void> {
    if (!this.busy) {
      this.busy = this.rotate().finally(() => {
        this.busy = null;
      });
    }
    return this.busy;
  }

  /** Re-reads the folder (SIGHUP, or a renewal done by someone else). */
  async reload(): Promise<void> {
    const next = await loadIdentityMaterial(this.o.dir, this.o.id, this.cur ?? undefined);
    const cur = this.cur;
    // Nothing new on disk: keep the context (and say nothing) rather than swap for nothing.
    if (cur && next.serial === cur.serial && next.roots.length === cur.roots.length) return;
    this.swap(next, 'reloaded');
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private swap(next: IdentityMaterial, why: 'renewed' | 'enrolled' | 'reloaded'): void {
    this.cur = next;
    this.failures = 0;
    this.o.onSwap(next, why);
    this.schedule();
  }

  private async rotate(): Promise<void> {
    const expired = this.current.notAfter <= this.o.clock.now();
    const what = expired ? 'enroll' : 'renew';
    try {
      await (expired ? this.o.enroll : this.o.renew)(this.o.dir);
      const next = await loadIdentityMaterial(this.o.dir, this.o.id, this.current);
      if (next.serial === this.current.serial)
        throw new EdgewardError('ERR_AGENT_ROTATION', 'renewal left the same certificate in place');
      this.swap(next, expired ? 'enrolled' : 'renewed');
    } catch (err) {
      this.failures += 1;
      this.o.log.error({ err, failures: this.failures }, `certificate ${what} failed`);
      this.o.onFailure?.(err, what);
      this.scheduleRetry();
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    const delay = Math.max(0, this.dueAt() - this.o.clock.now());
    this.arm(delay);
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    const left = this.current.notAfter - this.o.clock.now();
    // Back off, but retry well before expiry; past expiry keep trying to re-enroll every minute or so.
    const base = Math.min(
      60_000 * 2 ** Math.min(this.failures, 5),
      left > 0 ? Math.max(1000, left / 10) : 60_000,
    );
    this.arm(base);
  }

  private arm(delay: number): void {
    this.timer = setTimeout(
      () => {
        if (this.o.clock.now() >= this.dueAt() || this.failures > 0) void this.rotateNow();
        else this.schedule(); // woke early (timer clamp or clock change)
      },
      Math.min(delay, MAX_TIMER),
    );
    this.timer.unref();
  }
}
