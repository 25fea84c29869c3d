// The CA's operations, independent of HTTP: enrollment sessions over the method registry,
// issuance, renewal, revocation, the CRL and the bundle. Every refusal is audited with its code.
import {
  evidenceOf,
  type AttestationEvidence,
  type AttestationMethod,
  type MethodContext,
  type Verdict,
} from '../attestation/index.js';
import type { Authority } from './authority.js';
import { adminId, DEFAULT_LEAF_TTL_MS, newSerial, type IssuedCert } from './authority.js';
import type { StoreTx } from './store.js';
import type { CaStore, Standing } from './store.js';
import type { Clock } from '../common/clock.js';
import {
  DEFAULT_KEY_POLICY,
  csrDerFromText,
  parseCsr,
  type HostNames,
  type KeyPolicy,
  type ParsedCsr,
} from '../common/csr.js';
import { EdgewardError } from '../common/errors.js';
import { parseIdentity, serviceId, type Identity } from '../common/identity.js';
import type { Logger } from '../common/log.js';
import { Registry } from '../common/metrics.js';
import { RateLimiter, type BucketSpec } from '../common/rate-limit.js';
import type { Decision, DecisionScope, DecisionSet } from '../common/decisions.js';
import { CRL_REASONS, isCrlReason, normalizeSerial, spkiSha256Hex, type CrlReason } from '../common/x509.js';
import { planHolds, type CredentialSubject } from './quarantine.js';
import { SESSION_NAMESPACE, openSealedSession, sealSession } from './sessions.js';
import { dnsWithin, ipWithin, NO_SERVICE_NAMES, type ServiceNames } from './service-names.js';

export interface AuthenticatedPeer {
  readonly identity: string;
  readonly serial: string;
}

export interface EnrollmentPolicy {
  /** Methods allowed for an identity; undefined means every registered method. */
  methodsFor(identity: string): readonly string[] | undefined;
}

export interface CaServiceOptions {
  readonly clock: Clock;
  readonly log: Logger;
  readonly methods: readonly AttestationMethod[];
  readonly policy?: EnrollmentPolicy;
  readonly leafTtlMs?: number;
  readonly keyPolicy?: KeyPolicy;
  readonly sessionTtlMs?: number;
  readonly crlValidityMs?: number;
  readonly rateLimits?: CaRateLimits;
  /**
   * The SIEM's live decision covering a credential (identity, node, serial or key), if any:
   * renewals and enrollments it covers are refused.
   */
  readonly quarantineOf?: (subject: CredentialSubject) => Decision | undefined;
  /** The DNS names and IP ranges declared at `ca init`: the only host names a certificate may carry. */
  readonly serviceNames?: ServiceNames;
  /** Security events for the SIEM (enrollments, refusals, revocations). */
  readonly onEvent?: (event: CaEvent) => void;
  /** Where certificate serials come from: 16 random bytes each by default. */
  readonly serials?: () => Buffer;
}

/**
 * Signings per issuance: a serial another process stored first (ERR_CA_SERIAL_TAKEN) costs a
 * fresh serial and a new signature, not the request.
 */
export const SERIAL_TRIES = 3;

/** The CRL's validity (nextUpdate - signing time) by default, and the bounds of `--crl-validity`. */
export const CRL_VALIDITY_MS = 3_600_000;
export const CRL_VALIDITY_MIN_MS = 5_000;
export const CRL_VALIDITY_MAX_MS = 30 * 86_400_000;

/**
 * Separate buckets, so that no one spends another's: every request per source address; renewals
 * per identity its certificate proves; enrollments (which prove nothing until they succeed) per
 * source address, never per the identity they claim.
 */
export interface CaRateLimits {
  readonly perIp?: BucketSpec;
  /** Authenticated renewals, keyed by the client certificate's identity. */
  readonly perIdentity?: BucketSpec;
  /** Unauthenticated enrollments (`/v1/enroll/begin`), keyed by source address. */
  readonly perEnrollSource?: BucketSpec;
}

export const DEFAULT_RATE_LIMITS = {
  perIp: { rate: 50, burst: 200 },
  perIdentity: { rate: 0.5, burst: 20 },
  perEnrollSource: { rate: 1, burst: 60 },
} as const satisfies Required<CaRateLimits>;

export interface CaEvent {
  readonly action: string;
  readonly outcome: 'success' | 'failure';
  /** The identity the request proved (a client certificate, an issuance); never a claim. */
  readonly identity?: string | undefined;
  /** The identity an unauthenticated request named: evidence about its source, not about it. */
  readonly claimedIdentity?: string | undefined;
  readonly ip?: string | undefined;
  readonly method?: string | undefined;
  readonly code?: string | undefined;
  readonly serial?: string | undefined;
  readonly spkiSha256?: string | undefined;
  readonly notAfter?: number | undefined;
  /** What the attestation method checked and compared (its verdict's, or its refusal's). */
  readonly evidence?: AttestationEvidence | undefined;
}

/**
 * Who a refused request was about: `id` only when it proved that identity (a client certificate);
 * `claimed` when it only named one (an enrollment), so the refusal never counts against it.
 */
export interface RefusalHint {
  id?: unknown;
  claimed?: unknown;
  method?: unknown;
}

interface Session {
  readonly id: string;
  readonly identity: Identity;
  readonly method: AttestationMethod;
  readonly state: unknown;
  readonly expiresAt: number;
  /** Set on renewal sessions: the serial of the certificate that opened it. */
  readonly renewalOf: string | undefined;
}

export interface IssueResult {
  readonly serial: string;
  readonly certificate: string;
  readonly bundle: string;
  readonly notAfter: number;
  readonly identity: string;
}

export class CaService {
  readonly metrics = new Registry().withRuntime();
  /** Revocations in the store as last read (by renderMetrics): every process sharing it counts. */
  private revocationsSeen = 0;
  private readonly m = {
    enroll: this.metrics.counter('edgeward_ca_enrollments_total', 'Enrollments by method and outcome'),
    renew: this.metrics.counter('edgeward_ca_renewals_total', 'Renewals by outcome'),
    refused: this.metrics.counter('edgeward_ca_refusals_total', 'Refused requests by code'),
    issue: this.metrics.histogram('edgeward_ca_issue_seconds', 'Time to sign and record a certificate'),
    serialRetries: this.metrics.counter(
      'edgeward_ca_serial_retries_total',
      'Signings again because another process stored the serial first',
    ),
  };
  private readonly sessionKey: Buffer;
  private readonly methods = new Map<string, AttestationMethod>();
  private readonly ipLimiter: RateLimiter;
  private readonly renewLimiter: RateLimiter;
  private readonly enrollLimiter: RateLimiter;
  private readonly leafTtlMs: number;
  private readonly sessionTtlMs: number;
  private crlCache: { der: Buffer; until: number; revoked: number } | undefined;

  constructor(
    readonly store: CaStore,
    readonly authority: Authority,
    private readonly opts: CaServiceOptions,
  ) {
    for (const m of opts.methods) {
      if (this.methods.has(m.name)) throw new TypeError(`attestation method ${m.name} registered twice`);
      this.methods.set(m.name, m);
    }
    this.leafTtlMs = opts.leafTtlMs ?? DEFAULT_LEAF_TTL_MS;
    this.sessionTtlMs = opts.sessionTtlMs ?? 60_000;
    this.sessionKey = authority.deriveKey('enrollment sessions v1');
    const now = (): number => opts.clock.now();
    const limits = { ...DEFAULT_RATE_LIMITS, ...opts.rateLimits };
    this.ipLimiter = new RateLimiter(limits.perIp, now);
    this.renewLimiter = new RateLimiter(limits.perIdentity, now);
    this.enrollLimiter = new RateLimiter(limits.perEnrollSource, now);
    // From the store, so revocations by `edgeward ca revoke` (another process) count as well;
    // certificates are never deleted, so the count only grows.
    this.metrics.collected(
      'edgeward_ca_revocations_total',
      'Certificates revoked (API, SIEM and the ca revoke command)',
      'counter',
      () => [[{}, this.revocationsSeen]],
    );
    this.metrics.collected(
      'edgeward_ca_intermediate_expiry_timestamp_seconds',
      'When the issuing intermediate expires (notAfter), seconds since the Unix epoch',
      'gauge',
      () => [[{}, Math.floor(this.authority.intNotAfter / 1000)]],
    );
  }

  get trustDomain(): string {
    return this.authority.trustDomain;
  }

  /** Per-IP limit for the enrollment and renewal endpoints; called before parsing bodies. */
  checkIpRate(ip: string): void {
    if (!this.ipLimiter.take(ip)) {
      throw new EdgewardError('ERR_RATE_LIMITED', undefined, {
        detail: { ip, retryAfter: this.ipLimiter.retryAfter(ip) },
      });
    }
  }

  retryAfter(ip: string): number {
    return Math.max(1, this.ipLimiter.retryAfter(ip));
  }

  private ctx(renewal: boolean, source: string): MethodContext {
    return {
      clock: this.opts.clock,
      log: this.opts.log,
      trustDomain: this.trustDomain,
      store: this.store,
      renewal,
      source,
    };
  }

  private inDomain(uri: unknown): Identity {
    const id = parseIdentity(uri);
    if (id.trustDomain !== this.trustDomain) throw foreignTrustDomain(id.trustDomain, this.trustDomain);
    return id;
  }

  private openSession(
    identity: Identity,
    method: AttestationMethod,
    state: unknown,
    renewalOf?: string,
  ): { session: string; expiresAt: number } {
    const expiresAt = this.opts.clock.now() + this.sessionTtlMs;
    // Method state is plain JSON by contract, so any CA process can finish the session.
    const { token } = sealSession(this.sessionKey, {
      identity: identity.uri,
      method: method.name,
      state: state ?? null,
      expiresAt,
      renewalOf: renewalOf ?? null,
    });
    return { session: token, expiresAt };
  }

  /** Opens a session for its one finish; see `finishing` for how it is used up. */
  private async takeSession(session: unknown): Promise<Session> {
    const c = openSealedSession(this.sessionKey, session);
    const method = this.methods.get(c.method);
    if (
      !method ||
      c.expiresAt <= this.opts.clock.now() ||
      (await this.store.wasUsed(SESSION_NAMESPACE, c.id))
    )
      throw new EdgewardError('ERR_CA_SESSION_UNKNOWN');
    return {
      id: c.id,
      identity: parseIdentity(c.identity),
      method,
      state: c.state,
      expiresAt: c.expiresAt,
      renewalOf: c.renewalOf ?? undefined,
    };
  }

  /**
   * Runs a finish with its session: the session is used up by the issuance transaction when the
   * finish succeeds, and on its own when it is refused, so it serves exactly one finish.
   */
  private async finishing<T>(s: Session, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      try {
        await this.store.transaction((tx) => tx.useOnce(SESSION_NAMESPACE, s.id, s.expiresAt));
      } catch (burn) {
        this.opts.log.error({ err: burn }, 'could not mark a refused session used');
      }
      throw err;
    }
  }

  /** Refuses a revoked identity, a credential the SIEM quarantines, and an identity on hold. */
  private async refuseIfBlocked(subject: CredentialSubject): Promise<void> {
    this.refuseBlocked(subject, await this.store.standing(subject.identity));
  }

  /** refuseIfBlocked on a standing just read. */
  private refuseBlocked(subject: CredentialSubject, standing: Standing): void {
    if (standing.identityRevoked) throw new EdgewardError('ERR_CA_IDENTITY_REVOKED');
    const d = this.opts.quarantineOf?.(subject);
    if (d) {
      const byIdentity = d.scope.type === 'identity' || d.scope.type === 'node';
      throw new EdgewardError(
        byIdentity ? 'ERR_CA_IDENTITY_QUARANTINED' : 'ERR_CA_CERT_QUARANTINED',
        undefined,
        {
          detail: { decision: d.id, scope: d.scope },
          clientMessage:
            `${byIdentity ? 'identity' : `certificate ${d.scope.type === 'spki' ? 'key' : 'serial'}`} quarantined by the SIEM ` +
            `until ${new Date(d.expiresAt).toISOString()} (decision ${d.id}); an analyst can lift it earlier ` +
            `(the dashboard, or edgeward siem decisions lift ${d.id} with the admin identity)`,
        },
      );
    }
    const hold = standing.hold;
    if (hold) {
      throw new EdgewardError('ERR_CA_IDENTITY_HELD', undefined, {
        detail: { decision: hold.decisionId, scope: hold.scope },
        clientMessage: `renewal and enrollment held since ${new Date(hold.placedAt).toISOString()}, after the SIEM quarantined one of this identity's certificates, until an analyst releases it (lifting the decision, or edgeward ca release --hold)`,
      });
    }
  }

  /**
   * Follows a verified decision set: a quarantined serial or key holds its identity's renewals
   * and enrollments (audited) until released; a hold whose decision was lifted is released.
   */
  async applyDecisions(set: DecisionSet): Promise<void> {
    const now = this.opts.clock.now();
    // Owners of every serial and key the set names, looked up first (planHolds is pure).
    const owners = new Map<string, string[]>();
    for (const d of set.decisions) {
      if (d.expiresAt <= now) continue;
      const key = `${d.scope.type}:${d.scope.value}`;
      if (!owners.has(key)) owners.set(key, await this.ownersOf(d.scope, now));
    }
    const plan = planHolds(
      set,
      await this.store.holds(),
      (scope) => owners.get(`${scope.type}:${scope.value}`) ?? [],
      now,
    );
    for (const h of plan.place) {
      if (await this.store.placeHold(h, now))
        this.opts.log.warn(
          { identity: h.identity, decision: h.decisionId, scope: h.scope },
          'renewal hold placed',
        );
    }
    for (const h of plan.lifted) {
      if (
        (await this.store.releaseHolds(
          h.identity,
          now,
          `siem (decision ${h.decisionId} lifted)`,
          h.decisionId,
        )) > 0
      )
        this.opts.log.info(
          { identity: h.identity, decision: h.decisionId },
          'renewal hold released by a lift',
        );
    }
  }

  private async ownersOf(scope: DecisionScope, now: number): Promise<string[]> {
    if (scope.type === 'serial') {
      const rec = await this.store.getCertificate(normalizeSerial(scope.value));
      return rec ? [rec.identity] : [];
    }
    if (scope.type === 'spki')
      return (await this.store.certificatesBySpki(scope.value.toLowerCase(), now)).map((c) => c.identity);
    return [];
  }

  private pickMethod(identity: Identity, name: unknown): AttestationMethod {
    const method = typeof name === 'string' ? this.methods.get(name) : undefined;
    if (!method) throw new EdgewardError('ERR_CA_METHOD_UNKNOWN');
    const allowed = this.opts.policy?.methodsFor(identity.uri);
    if (allowed && !allowed.includes(method.name))
      throw new EdgewardError('ERR_CA_METHOD_NOT_ALLOWED', undefined, {
        clientMessage: `attestation method ${method.name} is not allowed for ${identity.uri}; the attestation policy allows ${allowed.length > 0 ? allowed.join(', ') : 'no method'} for it`,
      });
    // Control-plane identities are made by operators with join tokens, never by device evidence.
    if (identity.kind === 'svc' && method.name !== 'token')
      throw new EdgewardError('ERR_CA_METHOD_NOT_ALLOWED', undefined, {
        clientMessage: `attestation method ${method.name} is not allowed for ${identity.uri}; control-plane identities (svc/...) enroll with token only`,
      });
    return method;
  }

  async begin(
    ip: string,
    body: { id: unknown; method: unknown; evidence?: unknown },
  ): Promise<{ session: string; expiresAt: number; challenge: Record<string, unknown> }> {
    return this.audited('enroll.begin', ip, { claimed: body.id, method: body.method }, async () => {
      // Before anything else: an enrollment proves nothing yet, so it spends its address's budget.
      if (!this.enrollLimiter.take(ip))
        throw new EdgewardError('ERR_RATE_LIMITED', 'too many enrollment attempts from this address');
      const identity = this.inDomain(body.id);
      await this.refuseIfBlocked({ identity: identity.uri });
      const method = this.pickMethod(identity, body.method);
      const { challenge, state } = await method.begin(this.ctx(false, ip), identity, body.evidence);
      return { ...this.openSession(identity, method, state), challenge };
    });
  }

  async finish(
    ip: string,
    body: { session: unknown; csr: unknown; response?: unknown },
  ): Promise<IssueResult> {
    // Filled in once the session is known, so a refusal is audited with the identity it claimed.
    const hint: RefusalHint = {};
    return this.audited('enroll', ip, hint, async () => {
      const s = await this.takeSession(body.session);
      if (s.renewalOf !== undefined)
        throw new EdgewardError('ERR_CA_SESSION_UNKNOWN', 'renewal sessions finish at /v1/renew');
      hint.claimed = s.identity.uri;
      hint.method = s.method.name;
      return this.finishing(s, async () => {
        const csr = this.csrFor(s.identity, body.csr);
        const verdict = await s.method.finish(this.ctx(false, ip), s.identity, s.state, body.response, csr);
        await this.refuseIfBlocked({ identity: s.identity.uri, spkis: [csr.spkiSha256.toString('hex')] });
        return this.issue(s.identity, csr, verdict, 'enroll.success', ip, s);
      });
    });
  }

  /** Renewal over mTLS; re-attesting methods need a session from renewBegin. */
  async renewBegin(
    ip: string,
    peer: AuthenticatedPeer,
    body: { evidence?: unknown },
  ): Promise<{ session: string; expiresAt: number; challenge: Record<string, unknown> }> {
    // The method is filled in once known, so a refusal's event names it (and carries its evidence).
    const hint: RefusalHint = { id: peer.identity };
    return this.audited('renew.begin', ip, hint, async () => {
      const { identity, method } = await this.renewalSubject(peer);
      hint.method = method.name;
      const { challenge, state } = await method.begin(this.ctx(true, ip), identity, body.evidence);
      return { ...this.openSession(identity, method, state, peer.serial), challenge };
    });
  }

  async renew(
    ip: string,
    peer: AuthenticatedPeer,
    body: { csr: unknown; session?: unknown; response?: unknown },
  ): Promise<IssueResult> {
    const hint: RefusalHint = { id: peer.identity };
    return this.audited('renew', ip, hint, async () => {
      const { identity, method, credentials, standing } = await this.renewalSubject(peer);
      hint.method = method.name;
      const csr = this.csrFor(identity, body.csr);
      // A quarantined key stays quarantined in a new certificate.
      const subject = { ...credentials, spkis: [...credentials.spkis, csr.spkiSha256.toString('hex')] };
      if (method.reattestOnRenewal || body.session !== undefined) {
        if (body.session === undefined) throw new EdgewardError('ERR_CA_REATTEST_REQUIRED');
        const s = await this.takeSession(body.session);
        if (s.renewalOf !== peer.serial || s.identity.uri !== identity.uri)
          throw new EdgewardError('ERR_CA_SESSION_UNKNOWN');
        return this.finishing(s, async () => {
          const verdict = await method.finish(this.ctx(true, ip), identity, s.state, body.response, csr);
          await this.refuseIfBlocked(subject);
          return this.issue(identity, csr, verdict, 'renew.success', ip, s);
        });
      }
      const verdict: Verdict = {
        method: method.name,
        identity: identity.uri,
        facts: { renewedFrom: peer.serial },
      };
      // Nothing was awaited since the standing was read: the CSR's key is checked against it.
      this.refuseBlocked(subject, standing);
      return this.issue(identity, csr, verdict, 'renew.success', ip);
    });
  }

  private async renewalSubject(peer: AuthenticatedPeer): Promise<{
    identity: Identity;
    method: AttestationMethod;
    credentials: { identity: string; serials: string[]; spkis: string[] };
    standing: Standing;
  }> {
    const identity = this.inDomain(peer.identity);
    if (!this.renewLimiter.take(identity.uri))
      throw new EdgewardError('ERR_RATE_LIMITED', 'too many renewals for this identity');
    // One read: the certificate presented, the identity's standing and its method.
    const standing = await this.store.standing(identity.uri, peer.serial);
    const rec = standing.certificate;
    if (!rec || rec.identity !== identity.uri) throw new EdgewardError('ERR_CA_CERT_UNKNOWN');
    if (rec.revokedAt !== null) throw new EdgewardError('ERR_CA_CERT_REVOKED');
    if (rec.notAfter <= this.opts.clock.now()) throw new EdgewardError('ERR_CA_CERT_EXPIRED');
    const credentials = { identity: identity.uri, serials: [rec.serial], spkis: [rec.spkiSha256] };
    this.refuseBlocked(credentials, standing);
    const name = standing.enrolledMethod ?? 'token';
    const method = this.methods.get(name);
    if (!method) {
      // Enrolled by a method this server does not run (e.g. 'admin', 'service'): plain renewal.
      return {
        identity,
        credentials,
        standing,
        method: {
          name,
          reattestOnRenewal: false,
          begin: () => {
            throw new EdgewardError('ERR_CA_METHOD_UNKNOWN');
          },
          finish: () => {
            throw new EdgewardError('ERR_CA_METHOD_UNKNOWN');
          },
        },
      };
    }
    return { identity, method, credentials, standing };
  }

  private csrFor(identity: Identity, csrText: unknown): ParsedCsr {
    if (typeof csrText !== 'string') throw new EdgewardError('ERR_CA_CSR_MALFORMED', 'csr must be a string');
    const csr = parseCsr(csrDerFromText(csrText), this.opts.keyPolicy ?? DEFAULT_KEY_POLICY);
    if (csr.uri !== undefined && csr.uri !== identity.uri) {
      let reason = 'CSR names another identity';
      try {
        const td = parseIdentity(csr.uri).trustDomain;
        if (td !== this.trustDomain) throw foreignTrustDomain(td, this.trustDomain);
      } catch (err) {
        if (err instanceof EdgewardError && err.code === 'ERR_CA_FOREIGN_TRUST_DOMAIN') throw err;
        reason = 'CSR URI SAN is not a valid identity';
      }
      throw new EdgewardError('ERR_CA_CSR_IDENTITY', reason);
    }
    this.checkHostNames(identity, csr);
    return csr;
  }

  /**
   * Host names are for our own services only (where they listen, so clients such as curl can
   * verify them), and only within the names the intermediate permits: a device or node keeps
   * exactly its URI.
   */
  private checkHostNames(identity: Identity, csr: ParsedCsr): void {
    if (csr.dnsNames.length + csr.ipAddresses.length === 0) return;
    if (identity.kind !== 'svc')
      throw new EdgewardError('ERR_CA_CSR_SANS', 'only service identities may ask for DNS or IP names');
    const names = this.opts.serviceNames ?? NO_SERVICE_NAMES;
    const outside = [
      ...csr.dnsNames.filter((d) => !dnsWithin(names, d)),
      ...csr.ipAddresses.filter((ip) => !ipWithin(names, ip)),
    ];
    if (outside.length > 0)
      throw new EdgewardError('ERR_CA_CSR_NAME_NOT_PERMITTED', undefined, {
        detail: { outside: outside.slice(0, 4).map((n) => n.slice(0, 64)) },
      });
  }

  private async issue(
    identity: Identity,
    csr: ParsedCsr,
    verdict: Verdict,
    kind: string,
    ip: string,
    session?: Session,
  ): Promise<IssueResult> {
    if (verdict.identity !== identity.uri)
      throw new EdgewardError('ERR_CA_CSR_IDENTITY', 'verdict for another identity');
    const t0 = process.hrtime.bigint();
    const now = this.opts.clock.now();
    const spki = csr.spkiSha256.toString('hex');
    const sign = (serial: Buffer): IssuedCert =>
      this.authority.issue({
        identity: identity.uri,
        spkiDer: csr.spkiDer,
        lifetimeMs: this.leafTtlMs,
        now,
        // Checked by csrFor: only service identities, within the declared names.
        dnsNames: csr.dnsNames.map((d) => d.toLowerCase()),
        ipAddresses: csr.ipAddresses,
        serial,
      });
    const cert = await this.signAndStore(sign, async (tx, cert) => {
      // A concurrent finish with the same session lost the race: nothing is issued twice.
      if (session && !(await tx.useOnce(SESSION_NAMESPACE, session.id, session.expiresAt)))
        throw new EdgewardError('ERR_CA_SESSION_UNKNOWN', 'session already used');
      await verdict.commit?.(tx);
      await tx.insertCertificate({
        serial: cert.serial,
        identity: identity.uri,
        spkiSha256: spki,
        method: verdict.method,
        notBefore: cert.notBefore,
        notAfter: cert.notAfter,
        issuedAt: now,
        der: cert.der,
      });
      await tx.audit(
        {
          kind,
          data: {
            identity: identity.uri,
            serial: cert.serial,
            spki,
            method: verdict.method,
            ip,
            facts: verdict.facts,
          },
        },
        now,
      );
    });
    this.m.issue.observe(Number(process.hrtime.bigint() - t0) / 1e9);
    (kind === 'renew.success' ? this.m.renew : this.m.enroll).inc(
      kind === 'renew.success' ? { outcome: 'success' } : { method: verdict.method, outcome: 'success' },
    );
    this.opts.onEvent?.({
      action: kind.replace('.success', ''),
      outcome: 'success',
      identity: identity.uri,
      ip,
      method: verdict.method,
      serial: cert.serial,
      spkiSha256: spki,
      notAfter: cert.notAfter,
      evidence: verdict.evidence,
    });
    return {
      serial: cert.serial,
      certificate: this.authority.chainPem(cert.der),
      bundle: this.authority.bundlePem,
      notAfter: cert.notAfter,
      identity: identity.uri,
    };
  }

  /** Runs an operation; a coded refusal is audited (kind.refused), counted and re-thrown. */
  private async audited<T>(kind: string, ip: string, hint: RefusalHint, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const e =
        err instanceof EdgewardError ? err : new EdgewardError('ERR_INTERNAL', undefined, { cause: err });
      if (!(err instanceof EdgewardError)) this.opts.log.error({ err }, `${kind} failed`);
      await this.recordRefusal(kind, ip, e, hint);
      throw e;
    }
  }

  async recordRefusal(kind: string, ip: string, e: EdgewardError, hint: RefusalHint = {}): Promise<void> {
    const identity = typeof hint.id === 'string' ? hint.id.slice(0, 256) : undefined;
    const claimedIdentity = typeof hint.claimed === 'string' ? hint.claimed.slice(0, 256) : undefined;
    const method = typeof hint.method === 'string' ? hint.method.slice(0, 32) : undefined;
    this.m.refused.inc({ code: e.code });
    if (kind.startsWith('renew')) this.m.renew.inc({ outcome: 'failure' });
    else if (kind.startsWith('enroll'))
      this.m.enroll.inc({ method: method ?? 'unknown', outcome: 'failure' });
    // Rate-limited floods are counted, not audited: auditing them would let a flood grow the log.
    // A store that is down cannot take the record; the refusal itself still stands and is logged.
    if (
      e.code !== 'ERR_RATE_LIMITED' &&
      e.code !== 'ERR_STORE_UNAVAILABLE' &&
      e.code !== 'ERR_CA_UNAVAILABLE'
    ) {
      try {
        await this.store.audit(
          {
            kind: `${kind}.refused`,
            data: { code: e.code, reason: e.message.slice(0, 300), identity, claimedIdentity, method, ip },
          },
          this.opts.clock.now(),
        );
      } catch (err) {
        this.opts.log.error({ err, kind, code: e.code }, 'could not audit a refusal');
      }
    }
    this.opts.onEvent?.({
      action: kind,
      outcome: 'failure',
      identity,
      claimedIdentity,
      ip,
      method,
      code: e.code,
      evidence: evidenceOf(e),
    });
    this.opts.log.info({ code: e.code, kind, identity, claimedIdentity, ip, reason: e.message }, 'refused');
  }

  /** Revocation by an admin or the SIEM: by serial or by identity (the latter refuses renewals too). */
  async revoke(
    ip: string,
    peer: AuthenticatedPeer,
    body: { serial?: unknown; id?: unknown; reason?: unknown },
  ): Promise<{ revoked: string[] }> {
    try {
      const allowed = [adminId(this.trustDomain), serviceId(this.trustDomain, 'siem')];
      if (!allowed.includes(peer.identity)) throw new EdgewardError('ERR_CA_FORBIDDEN');
      return await this.revokeLocal(body, peer.identity);
    } catch (err) {
      const e =
        err instanceof EdgewardError ? err : new EdgewardError('ERR_INTERNAL', undefined, { cause: err });
      await this.recordRefusal('revoke', ip, e, { id: peer.identity });
      throw e;
    }
  }

  /** Also used by `edgeward ca revoke` on the data folder. */
  async revokeLocal(
    body: { serial?: unknown; id?: unknown; reason?: unknown },
    by: string,
  ): Promise<{ revoked: string[] }> {
    const reason: CrlReason = body.reason === undefined ? 'unspecified' : isCrlReasonValue(body.reason);
    const now = this.opts.clock.now();
    let revoked: string[];
    if (typeof body.serial === 'string' && body.id === undefined) {
      let serial: string;
      try {
        serial = normalizeSerial(body.serial);
      } catch (cause) {
        throw new EdgewardError('ERR_INPUT_MALFORMED', 'serial must be hex', { cause });
      }
      const rec = await this.store.getCertificate(serial);
      if (!rec) throw new EdgewardError('ERR_CA_SERIAL_UNKNOWN');
      revoked = (await this.store.revokeSerial(serial, reason, now, by)) ? [serial] : [];
    } else if (typeof body.id === 'string' && body.serial === undefined) {
      const identity = this.inDomain(body.id);
      revoked = await this.store.revokeIdentity(identity.uri, reason, now, by);
    } else {
      throw new EdgewardError('ERR_INPUT_MALFORMED', 'give exactly one of serial or id');
    }
    this.crlCache = undefined;
    for (const serial of revoked)
      this.opts.onEvent?.({
        action: 'revocation',
        outcome: 'success',
        serial,
        identity: typeof body.id === 'string' ? body.id : undefined,
      });
    return { revoked };
  }

  /** The Prometheus text, with the revocation count read from the store just before. */
  async renderMetrics(): Promise<string> {
    this.revocationsSeen = await this.store.revocationCount();
    return this.metrics.render();
  }

  /** DER CRL, regenerated on revocation and when half its validity has passed. */
  async crl(): Promise<Buffer> {
    const now = this.opts.clock.now();
    // Revocations made elsewhere (`edgeward ca revoke`, another replica) show up in the count.
    const revoked = await this.store.revocationCount();
    if (this.crlCache && this.crlCache.until > now && this.crlCache.revoked === revoked)
      return this.crlCache.der;
    const validity = this.opts.crlValidityMs ?? CRL_VALIDITY_MS;
    const number = await this.store.nextCrlNumber();
    const entries = (await this.store.revocations(now)).map((r) => ({
      serialHex: r.serial,
      revokedAt: r.revokedAt,
      reason: r.reason,
    }));
    const der = this.authority.signCrl(entries, number, now - 60_000, now + validity);
    this.crlCache = { der, until: now + validity / 2, revoked };
    return der;
  }

  bundlePem(): string {
    return this.authority.bundlePem;
  }

  /** SPIFFE-style JWKS trust bundle: the X.509 authorities with use x509-svid. */
  async bundleJwks(): Promise<Record<string, unknown>> {
    const jwk = this.authority.rootPublicJwk();
    return {
      keys: [{ ...jwk, use: 'x509-svid', x5c: [this.authority.rootDer.toString('base64')] }],
      spiffe_sequence: Number((await this.store.getMeta('bundle_sequence')) ?? '1'),
      spiffe_refresh_hint: 3600,
    };
  }

  async purge(): Promise<void> {
    const now = this.opts.clock.now();
    await this.store.purgeExpired(now);
  }

  /** Issues a certificate for one of our own services without attestation (internal only). */
  async issueService(
    name: string,
    spkiDer: Buffer,
    names: HostNames,
    lifetimeMs: number,
  ): Promise<{ serial: string; der: Buffer; notAfter: number }> {
    const identity = serviceId(this.trustDomain, name);
    const declared = this.opts.serviceNames ?? NO_SERVICE_NAMES;
    if (!names.dns.every((d) => dnsWithin(declared, d)) || !names.ips.every((ip) => ipWithin(declared, ip)))
      throw new TypeError('issueService: a host name outside the declared service names');
    const now = this.opts.clock.now();
    const sign = (serial: Buffer): IssuedCert =>
      this.authority.issue({
        identity,
        spkiDer,
        lifetimeMs,
        now,
        dnsNames: names.dns,
        ipAddresses: names.ips,
        serial,
      });
    return this.signAndStore(sign, async (tx, cert) => {
      await tx.insertCertificate({
        serial: cert.serial,
        identity,
        spkiSha256: spkiSha256Hex(spkiDer),
        method: 'service',
        notBefore: cert.notBefore,
        notAfter: cert.notAfter,
        issuedAt: now,
        der: cert.der,
      });
      await tx.audit({ kind: 'service.issue', data: { identity, serial: cert.serial } }, now);
    });
  }

  /** Signs with a fresh serial and stores in one transaction, again while the serial is taken. */
  private async signAndStore(
    sign: (serial: Buffer) => IssuedCert,
    write: (tx: StoreTx, cert: IssuedCert) => Promise<void>,
  ): Promise<IssuedCert> {
    for (let attempt = 1; ; attempt++) {
      const cert = sign((this.opts.serials ?? newSerial)());
      try {
        await this.store.transaction((tx) => write(tx, cert));
        return cert;
      } catch (err) {
        if (!(err instanceof EdgewardError && err.code === 'ERR_CA_SERIAL_TAKEN') || attempt >= SERIAL_TRIES)
          throw err;
        this.m.serialRetries.inc();
        this.opts.log.warn({ serial: cert.serial, attempt }, 'serial taken, signing again with a new serial');
      }
    }
  }
}

function isCrlReasonValue(r: unknown): CrlReason {
  if (typeof r === 'string' && isCrlReason(r)) return r;
  const text = `unknown revocation reason; the reasons are ${Object.keys(CRL_REASONS).join(', ')}`;
  throw new EdgewardError('ERR_INPUT_MALFORMED', text, { clientMessage: text });
}

/** An identity of another trust domain than this CA's: the message names both. */
export function foreignTrustDomain(theirs: string, ours: string): EdgewardError {
  const text = `the identity is in trust domain ${theirs}, this CA's trust domain is ${ours}`;
  return new EdgewardError('ERR_CA_FOREIGN_TRUST_DOMAIN', text, { clientMessage: text });
}
