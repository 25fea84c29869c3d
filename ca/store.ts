// The CA's storage interface, owned by the domain. SQLite (ca/store-sqlite.ts) is the embedded
// adapter; every state change and its audit record commit in one transaction.
import type { MethodStoreReader, MethodStoreWriter, TokenRecord } from '../attestation/index.js';
import type { AuditRecord } from './audit.js';
import type { CrlReason } from '../common/x509.js';
import type { RenewalHold } from './quarantine.js';

export interface CertRecord {
  readonly serial: string;
  readonly identity: string;
  readonly spkiSha256: string;
  readonly method: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly issuedAt: number;
  readonly der: Buffer;
  readonly revokedAt: number | null;
  readonly revocationReason: string | null;
}

/** A hardware binding as `ca show` lists it (the method's record itself stays inside the CA). */
export interface BindingSummary {
  readonly method: string;
  readonly hardwareId: string;
  readonly createdAt: number;
}

export interface AuditEntry {
  readonly kind: string;
  readonly data: Record<string, unknown>;
}

export interface Revocation {
  readonly serial: string;
  readonly revokedAt: number;
  readonly reason: CrlReason;
}

/** What runs inside one transaction: method commits, certificate insert, audit append. */
export interface StoreTx extends MethodStoreWriter {
  insertCertificate(rec: Omit<CertRecord, 'revokedAt' | 'revocationReason'>): void;
  audit(entry: AuditEntry, now: number): AuditRecord;
}

export interface CaStore extends MethodStoreReader {
  getMeta(key: string): string | undefined;
  setMeta(key: string, value: string): void;
  /** Runs fn in one transaction; throwing rolls everything back. */
  transaction<T>(fn: (tx: StoreTx) => T): T;
  /**
   * Group commit: fn runs in a transaction shared with the other calls made in the same turn of
   * the event loop, each in its own savepoint (one throwing rolls back only its own writes); the
   * promise settles once that transaction has committed.
   */
  grouped<T>(fn: (tx: StoreTx) => T): Promise<T>;
  audit(entry: AuditEntry, now: number): AuditRecord;
  getCertificate(serial: string): CertRecord | undefined;
  certificatesOf(identity: string): CertRecord[];
  /** Every identity with a certificate or a hardware binding, in name order. */
  identities(): string[];
  bindingsOf(identity: string): BindingSummary[];
  /** Latest issued certificate's method for an identity (which method renewals must follow). */
  enrolledMethod(identity: string): string | undefined;
  revokeSerial(serial: string, reason: CrlReason, now: number, by: string): boolean;
  /** Revokes all current certificates of the identity and refuses its future renewals. */
  revokeIdentity(identity: string, reason: CrlReason, now: number, by: string): string[];
  isIdentityRevoked(identity: string): boolean;
  /** How many certificates are revoked: changes whenever the CRL must be re-signed. */
  revocationCount(): number;
  revocations(now: number): Revocation[];
  releaseBindings(identity: string, now: number, by: string): number;
  /** Live certificates (not expired) of a public key, by SHA-256 of its SPKI. */
  certificatesBySpki(spkiSha256: string, now: number): CertRecord[];
  /** Places a renewal hold (audited) unless one exists for that identity and decision. */
  placeHold(hold: RenewalHold, now: number): boolean;
  /** Every hold ever placed, released or not (one per identity and decision). */
  holds(): RenewalHold[];
  /** The identity's first unreleased hold. */
  activeHold(identity: string): RenewalHold | undefined;
  /** Releases the identity's holds (audited, with who); returns how many. */
  releaseHolds(identity: string, now: number, by: string, decisionId?: string): number;
  createToken(rec: TokenRecord, now: number): void;
  getToken(hash: string): TokenRecord | undefined;
  auditRecords(): Iterable<AuditRecord>;
  purgeExpired(now: number): void;
  close(): void;
}
