// The one interface every attestation method implements (token, tpm, puf). The CA's enrollment
// endpoints look a method up by name in a registry; adding a method touches no other method.
//
// Flow: begin(evidence) -> { challenge for the client, state kept by the CA for one session }
//       finish(state, response, csr) -> Verdict, or throw an EdgewardError with a coded reason.
// A verdict's `commit` runs inside the issuance transaction, so single-use markers and hardware
// bindings are written if and only if the certificate is issued.
import type { Clock } from '../common/clock.js';
import type { Identity } from '../common/identity.js';
import type { Logger } from '../common/log.js';

/** What a method may learn of the CSR: its verified public key, DER SubjectPublicKeyInfo. */
export interface CsrKey {
  readonly spkiDer: Buffer;
  /** SHA-256 of spkiDer: what attestation evidence binds to. */
  readonly spkiSha256: Buffer;
}

/** Read side of the CA store available to methods outside the issuance transaction. */
export interface MethodStoreReader {
  /** The record bound to (identity, method), e.g. a TPM's EK/AK hashes or a PUF registration. */
  getBinding(identity: string, method: string): Promise<unknown>;
  /** The identity (if any) already bound to a hardware key (EK hash, PUF public key) for a method. */
  findBindingByHardware(method: string, hardwareId: string): Promise<string | undefined>;
  /** Whether a single-use key (nonce, quote digest, CRP index) has been used in a namespace. */
  wasUsed(namespace: string, key: string): Promise<boolean>;
}

/** Write side, only inside the issuance transaction (Verdict.commit). */
export interface MethodStoreWriter extends MethodStoreReader {
  putBinding(identity: string, method: string, hardwareId: string, record: unknown): Promise<void>;
  /** Marks a key used; resolves false (and marks nothing) when it was used already. */
  useOnce(namespace: string, key: string, expiresAt: number): Promise<boolean>;
}

export interface MethodContext {
  readonly clock: Clock;
  readonly log: Logger;
  readonly trustDomain: string;
  readonly store: MethodStoreReader;
  /** Whether this is a renewal over mTLS (the identity already holds a valid certificate). */
  readonly renewal: boolean;
  /**
   * The request's source address. Budgets of unauthenticated attempts key on it, so that a
   * stranger naming an identity cannot spend that identity's own budget.
   */
  readonly source: string;
}

export interface BeginResult {
  /** Sent to the client as `challenge`; JSON only. */
  readonly challenge: Record<string, unknown>;
  /** Kept by the CA for the session; never sent. */
  readonly state: unknown;
}

export interface Verdict {
  readonly method: string;
  readonly identity: string;
  /** Non-secret facts for the audit log, the events and the certificate record (e.g. EK hash). */
  readonly facts: Record<string, string | number | boolean>;
  /** Writes single-use markers and bindings inside the issuance transaction; throw to refuse. */
  commit?(tx: MethodStoreWriter): Promise<void>;
}

export interface AttestationMethod {
  readonly name: string;
  /** Whether renewal of an identity enrolled with this method needs a fresh begin/finish. */
  readonly reattestOnRenewal: boolean;
  begin(ctx: MethodContext, identity: Identity, evidence: unknown): Promise<BeginResult> | BeginResult;
  finish(
    ctx: MethodContext,
    identity: Identity,
    state: unknown,
    response: unknown,
    csr: CsrKey,
  ): Promise<Verdict> | Verdict;
}

/**
 * The device side of a method, used by `edgeward enroll`: it produces the evidence for begin and
 * the response to the CA's challenge, bound to the CSR's public key.
 */
export interface Prover {
  readonly method: string;
  evidence(): Promise<Record<string, unknown>>;
  respond(challenge: Record<string, unknown>, csr: CsrKey): Promise<Record<string, unknown>>;
  /** Releases hardware handles (TPM contexts, simulators). */
  close?(): Promise<void>;
}
