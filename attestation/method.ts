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

/** A check's outcome as the evidence records it. */
export type CheckVerdict = 'passed' | 'failed';

/**
 * What a method compared, check by check, for the events and the analysts' dashboard: the verdict
 * of each check it reached, with the values it compared. Every value is bounded (evidence comes
 * from the device): hex digests of at most 128 characters, lists of PCR indices, short names.
 */
export interface AttestationEvidence {
  /** TPM: the EK certificate's chain to a trusted manufacturer root, or the EK allow-list. */
  readonly ekChain?: CheckVerdict | 'allow-listed';
  /** TPM: the EK certificate's issuer (at most 256 characters), when one was sent. */
  readonly ekIssuer?: string;
  /** TPM: credential activation (the AK and the EK in one TPM). */
  readonly activation?: CheckVerdict;
  /** TPM: the quote's signature by the AK. */
  readonly quoteSignature?: CheckVerdict;
  /** TPM: the PCR bank and the PCRs compared with the golden values. */
  readonly pcrBank?: string;
  readonly pcrSelection?: readonly number[];
  /** TPM: the composite digest the golden values give, and the one the TPM quoted (hex). */
  readonly pcrExpectedDigest?: string;
  readonly pcrQuotedDigest?: string;
  /** TPM: the PCRs whose reported value is none of the golden ones. */
  readonly pcrMismatch?: readonly number[];
  readonly pcrs?: CheckVerdict;
  /** PUF: `crp` (challenge-response, the CA sees the distance) or `key` (fuzzy extractor). */
  readonly pufMode?: 'crp' | 'key';
  /** PUF (crp): Hamming distance of the response from the recorded one, and the largest accepted. */
  readonly pufDistance?: number;
  readonly pufThreshold?: number;
  readonly pufResponse?: CheckVerdict;
  /** PUF (key): the signature by the PUF-derived key over the nonce and the CSR key. */
  readonly pufSignature?: CheckVerdict;
}

const refusalEvidence = new WeakMap<Error, AttestationEvidence>();

/** Attaches the evidence gathered up to a refusal to its coded error; returns the error. */
export function withEvidence<E extends Error>(err: E, evidence: AttestationEvidence): E {
  refusalEvidence.set(err, { ...(refusalEvidence.get(err) ?? {}), ...evidence });
  return err;
}

/** The evidence a method attached to a refusal, if any. */
export function evidenceOf(err: unknown): AttestationEvidence | undefined {
  return err instanceof Error ? refusalEvidence.get(err) : undefined;
}

export interface Verdict {
  readonly method: string;
  readonly identity: string;
  /** Non-secret facts for the audit log, the events and the certificate record (e.g. EK hash). */
  readonly facts: Record<string, string | number | boolean>;
  /** Each check's verdict and the values compared, for the events (bounded; see AttestationEvidence). */
  readonly evidence?: AttestationEvidence;
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
