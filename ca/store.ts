// The CA's storage interface, owned by the domain. SQLite (ca/store-sqlite.ts) is the embedded
// adapter, PostgreSQL (ca/store-postgres.ts) the one for replicas; every state change and its
// audit record commit in one transaction.
import type { MethodStoreReader, MethodStoreWriter, TokenRecord } from '../attestation/index.js';
import type { AuditRecord } from './audit.js';
import type { CrlReason } from '../common/x509.js';
import type { RenewalHold } from './quarantine.js';
import { EdgewardError } from '../common/errors.js';

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

/**
 * What a renewal or an enrollment checks about an identity, read at once: the certificate
 * presented (when a serial is given), whether the identity is revoked, its first unreleased
 * hold, and the method its renewals follow (that of its latest certificate).
 */
export interface Standing {
  readonly certificate: CertRecord | undefined;
  readonly identityRevoked: boolean;
  readonly hold: RenewalHold | undefined;
  readonly enrolledMethod: string | undefined;
}

/** What runs inside one transaction: method commits, certificate insert, audit append. */
export interface StoreTx extends MethodStoreWriter {
  /**
   * Refuses (ERR_CA_SERIAL_TAKEN) a serial the store holds already, whichever process issued it.
   * An adapter may defer the write to the commit: the refusal then rejects the transaction.
   */
  insertCertificate(rec: Omit<CertRecord, 'revokedAt' | 'revocationReason'>): Promise<void>;
  /**
   * Appends to the hash chain when the transaction commits; the head is serialised across
   * processes, so the records of concurrent transactions form one chain.
   */
  audit(entry: AuditEntry, now: number): Promise<void>;
}

/**
 * Every operation is async; adapters may batch several transactions into one commit (SQLite's
 * group commit) as long as each settles only once it is durable and each one's writes stand or
 * fall together.
 */
export interface CaStore extends MethodStoreReader {
  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;
  /**
   * Runs fn in one transaction: its writes commit together when it resolves and are rolled back
   * when it throws. fn must only await the tx's own operations.
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  audit(entry: AuditEntry, now: number): Promise<AuditRecord>;
  getCertificate(serial: string): Promise<CertRecord | undefined>;
  /** The identity's standing, and the certificate of `serial` when given (one read). */
  standing(identity: string, serial?: string): Promise<Standing>;
  certificatesOf(identity: string): Promise<CertRecord[]>;
  /** Every identity with a certificate or a hardware binding, in name order. */
  identities(): Promise<string[]>;
  bindingsOf(identity: string): Promise<BindingSummary[]>;
  /** Latest issued certificate's method for an identity (which method renewals must follow). */
  enrolledMethod(identity: string): Promise<string | undefined>;
  revokeSerial(serial: string, reason: CrlReason, now: number, by: string): Promise<boolean>;
  /** Revokes all current certificates of the identity and refuses its future renewals. */
  revokeIdentity(identity: string, reason: CrlReason, now: number, by: string): Promise<string[]>;
  isIdentityRevoked(identity: string): Promise<boolean>;
  /** How many certificates are revoked: changes whenever the CRL must be re-signed. */
  revocationCount(): Promise<number>;
  revocations(now: number): Promise<Revocation[]>;
  /** The next CRL number: one increasing sequence for every process sharing the store. */
  nextCrlNumber(): Promise<number>;
  releaseBindings(identity: string, now: number, by: string): Promise<number>;
  /** Live certificates (not expired) of a public key, by SHA-256 of its SPKI. */
  certificatesBySpki(spkiSha256: string, now: number): Promise<CertRecord[]>;
  /** Places a renewal hold (audited) unless one exists for that identity and decision. */
  placeHold(hold: RenewalHold, now: number): Promise<boolean>;
  /** Every hold ever placed, released or not (one per identity and decision). */
  holds(): Promise<RenewalHold[]>;
  /** The identity's first unreleased hold. */
  activeHold(identity: string): Promise<RenewalHold | undefined>;
  /** Releases the identity's holds (audited, with who); returns how many. */
  releaseHolds(identity: string, now: number, by: string, decisionId?: string): Promise<number>;
  createToken(rec: TokenRecord, now: number): Promise<void>;
  getToken(hash: string): Promise<TokenRecord | undefined>;
  /** The audit log in order (seq 1, 2, ...), read in pages. */
  auditRecords(): AsyncIterable<AuditRecord>;
  purgeExpired(now: number): Promise<void>;
  close(): Promise<void>;
}

/** Opens the store of a CA (SQLite in its data folder, or a shared PostgreSQL database). */
export type CaStoreFactory = (opts: { readonly now: () => number }) => Promise<CaStore>;

/** The refusal every adapter gives for a serial it holds already. */
export function serialTaken(serial: string, cause: unknown): EdgewardError {
  return new EdgewardError('ERR_CA_SERIAL_TAKEN', `serial ${serial} is taken`, { cause });
}
