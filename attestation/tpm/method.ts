// The `tpm` attestation method (docs/architecture.md, flow 1), server side. begin: check the EK
// (certificate chain or allow-list) and the AK's attributes, answer with a credential only that TPM
// can activate for that AK, and a nonce. finish: the activated secret, then a quote by the AK over the policy's
// PCRs whose qualifying data binds the nonce and the CSR key. commit records the EK binding and
// the single-use markers inside the issuance transaction.
import { createHash, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import {
  withEvidence,
  type AttestationEvidence,
  type AttestationMethod,
  type BeginResult,
  type CsrKey,
  type MethodContext,
  type MethodStoreReader,
  type MethodStoreWriter,
  type Verdict,
} from '../method.js';
import { EdgewardError } from '../../common/errors.js';
import type { Identity } from '../../common/identity.js';
import {
  ruleFor,
  type AttestationPolicy,
  type IdentityRule,
  type TpmPatternPolicy,
} from '../../policies/index.js';
import { NONCE_BYTES } from './binding.js';
import {
  parseEkCertificate,
  readEkCertificate,
  sameKey,
  sha256Hex,
  verifyEkChain,
  type EkTrustAnchors,
} from './ek-chain.js';
import { checkAkPublic, checkEkPublic } from './key-checks.js';
import { makeCredential } from './make-credential.js';
import { objectName } from './names.js';
import { hashByLabel } from './structures/constants.js';
import { parseTpm2bPublic, spkiDerOf, type TpmPublic } from './structures/public.js';
import type { ClockInfo } from './structures/attest.js';
import { verifyQuote, type QuoteReport } from './verify-quote.js';
import { encodeChallenge, parseEvidence, parseResponse } from './wire.js';

export const TPM_METHOD = 'tpm';
export const NONCE_NAMESPACE = 'tpm-nonce';
export const QUOTE_NAMESPACE = 'tpm-quote';
/** Quote markers outlive their nonce so a replay is reported as such, not as a stale nonce. */
const QUOTE_MARKER_EXTRA_MS = 24 * 3_600_000;
const SECRET_BYTES = 32;

/** What the CA stores per identity for this method (putBinding record); JSON only. */
export interface TpmBindingRecord {
  readonly ekSha256: string;
  readonly ekTrust: 'certificate' | 'allow-list';
  readonly akName: string;
  readonly resetCount: number;
  readonly restartCount: number;
  /** TPM clock in ms as a decimal string (a uint64). */
  readonly clock: string;
  readonly firmwareVersion: string;
}

/** Kept by the CA for the session, never sent; JSON only so any session store can hold it. */
interface TpmState {
  readonly v: 1;
  readonly identity: string;
  readonly nonce: string;
  readonly secret: string;
  readonly expiresAt: number;
  readonly ekSha256: string;
  readonly ekTrust: 'certificate' | 'allow-list';
  readonly akPublic: string;
  readonly akName: string;
  /** The EK certificate's issuer, for the evidence (absent without a certificate). */
  readonly ekIssuer?: string;
}

/** Longest EK issuer name carried in the evidence (the certificate is the device's). */
const MAX_ISSUER = 256;

/** Runs a step; a coded refusal leaves with the evidence gathered so far. */
async function gathering<T>(evidence: AttestationEvidence, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    throw err instanceof EdgewardError ? withEvidence(err, evidence) : err;
  }
}

function quoteEvidence(r: QuoteReport): AttestationEvidence {
  return {
    ...(r.signature !== undefined ? { quoteSignature: r.signature } : {}),
    ...(r.pcrSelection !== undefined ? { pcrSelection: r.pcrSelection } : {}),
    ...(r.expectedDigest !== undefined ? { pcrExpectedDigest: r.expectedDigest } : {}),
    ...(r.quotedDigest !== undefined ? { pcrQuotedDigest: r.quotedDigest } : {}),
    ...(r.mismatch !== undefined ? { pcrMismatch: r.mismatch } : {}),
    ...(r.pcrs !== undefined ? { pcrs: r.pcrs } : {}),
  };
}

export interface TpmMethodOptions {
  /** How many validated EK certificate chains and parsed EKs to remember; 0 disables both. */
  readonly chainCacheSize?: number;
}

function asState(v: unknown, identity: string): TpmState {
  const s = v as Partial<TpmState> | null;
  if (
    !s ||
    s.v !== 1 ||
    typeof s.nonce !== 'string' ||
    typeof s.secret !== 'string' ||
    typeof s.akPublic !== 'string'
  ) {
    throw new TypeError('tpm method: session state is not one this method produced');
  }
  if (s.identity !== identity) throw new TypeError('tpm method: session state belongs to another identity');
  return s as TpmState;
}

function tpmRule(policy: AttestationPolicy, identity: string): { rule: IdentityRule; tpm: TpmPatternPolicy } {
  const rule = ruleFor(policy, identity);
  if (!rule?.tpm || !rule.methods.includes(TPM_METHOD)) {
    throw new EdgewardError('ERR_ATT_TPM_NO_POLICY', undefined, { detail: { identity } });
  }
  return { rule, tpm: rule.tpm };
}

function asRecord(v: unknown): TpmBindingRecord | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const r = v as Partial<TpmBindingRecord>;
  return typeof r.ekSha256 === 'string' ? (r as TpmBindingRecord) : undefined;
}

/** Refuses another TPM for a bound identity, and this TPM for another identity. */
async function checkBindings(
  store: MethodStoreReader,
  identity: string,
  ekSha256: string,
  renewal: boolean,
): Promise<TpmBindingRecord | undefined> {
  const existing = asRecord(await store.getBinding(identity, TPM_METHOD));
  if (existing && existing.ekSha256 !== ekSha256) {
    throw new EdgewardError('ERR_ATT_TPM_IDENTITY_BOUND', undefined, {
      detail: { identity, boundEk: existing.ekSha256, offeredEk: ekSha256 },
    });
  }
  const owner = await store.findBindingByHardware(TPM_METHOD, ekSha256);
  if (owner !== undefined && owner !== identity) {
    throw new EdgewardError('ERR_ATT_TPM_EK_BOUND', undefined, { detail: { identity, ekSha256, owner } });
  }
  if (renewal && !existing)
    throw new EdgewardError('ERR_ATT_TPM_NOT_ENROLLED', undefined, { detail: { identity } });
  return existing;
}

/** resetCount, then restartCount, then clock must move forward from the last accepted quote. */
function checkMonotonic(prev: TpmBindingRecord | undefined, now: ClockInfo): void {
  if (!prev) return;
  const prevClock = BigInt(prev.clock);
  let forward: boolean;
  if (now.resetCount !== prev.resetCount) forward = now.resetCount > prev.resetCount;
  else if (now.restartCount !== prev.restartCount) forward = now.restartCount > prev.restartCount;
  else forward = now.clock > prevClock;
  if (!forward) {
    throw new EdgewardError('ERR_ATT_TPM_CLOCK_ROLLBACK', undefined, {
      detail: {
        previous: { resetCount: prev.resetCount, restartCount: prev.restartCount, clock: prev.clock },
        quoted: { resetCount: now.resetCount, restartCount: now.restartCount, clock: now.clock.toString() },
      },
    });
  }
}

export function createTpmMethod(
  policy: AttestationPolicy,
  options: TpmMethodOptions = {},
): AttestationMethod {
  const anchors: EkTrustAnchors = { roots: policy.ekRoots, intermediates: policy.ekIntermediates };
  const cacheSize = options.chainCacheSize ?? 4096;
  // A validated chain is cached by certificate hash with the window in which it stays valid
  // (the policy's anchors are fixed for this method instance).
  const chainCache = new Map<string, { from: number; to: number; spki: Buffer }>();

  function ekCertSpki(cert: Buffer, now: number): Buffer {
    const key = sha256Hex(cert);
    const hit = chainCache.get(key);
    if (hit && hit.from <= now && now <= hit.to) return hit.spki;
    const res = verifyEkChain(cert, anchors, now);
    const spki = res.spkiDer;
    if (cacheSize > 0) {
      if (chainCache.size >= cacheSize) chainCache.clear();
      chainCache.set(key, { from: res.validFrom, to: res.validTo, spki });
    }
    return spki;
  }

  /** The issuer an EK certificate names, bounded; undefined when it does not parse. */
  function issuerOf(cert: Buffer): string | undefined {
    try {
      return parseEkCertificate(cert).issuer.replace(/\n/g, ', ').slice(0, MAX_ISSUER);
    } catch {
      return undefined;
    }
  }

  // Parsed and checked EKs by their TPM2B_PUBLIC bytes: importing a P-384 point costs more than
  // the rest of begin, and the same TPMs come back at every renewal.
  const ekCache = new Map<string, { ek: TpmPublic; ekKey: KeyObject; ekSpki: Buffer; ekSha256: string }>();

  function endorsementKey(raw: Buffer): {
    ek: TpmPublic;
    ekKey: KeyObject;
    ekSpki: Buffer;
    ekSha256: string;
  } {
    const key = raw.toString('base64');
    const hit = ekCache.get(key);
    if (hit) return hit;
    const ek = parseTpm2bPublic(raw);
    const ekKey = checkEkPublic(ek);
    const ekSpki = ekKey.export({ format: 'der', type: 'spki' });
    const entry = { ek, ekKey, ekSpki, ekSha256: sha256Hex(ekSpki) };
    if (cacheSize > 0) {
      if (ekCache.size >= cacheSize) ekCache.clear();
      ekCache.set(key, entry);
    }
    return entry;
  }

  async function begin(ctx: MethodContext, identity: Identity, evidence: unknown): Promise<BeginResult> {
    const ev = parseEvidence(evidence);
    const { rule, tpm } = tpmRule(policy, identity.uri);
    const { ek, ekKey, ekSpki, ekSha256 } = endorsementKey(ev.ekPublic);
    const ak = parseTpm2bPublic(ev.akPublic);
    checkAkPublic(ak);
    const now = ctx.clock.now();
    const allowListed = policy.ekAllowList.has(ekSha256);
    const ekIssuer = ev.ekCertificate ? issuerOf(ev.ekCertificate) : undefined;
    const failedChain: AttestationEvidence = {
      ekChain: 'failed',
      ...(ekIssuer !== undefined ? { ekIssuer } : {}),
    };
    await gathering(failedChain, async () => {
      if (ev.ekCertificate) {
        // A certificate is checked against the EK even for allow-listed TPMs: a mismatch means tampering.
        let certSpki: Buffer;
        if (allowListed) {
          parseEkCertificate(ev.ekCertificate);
          certSpki = readEkCertificate(ev.ekCertificate).spki.raw;
        } else {
          certSpki = ekCertSpki(ev.ekCertificate, now);
        }
        if (!sameKey(certSpki, ekSpki))
          throw new EdgewardError('ERR_ATT_TPM_EK_CERT_MISMATCH', undefined, { detail: { ekSha256 } });
      } else if (!allowListed) {
        throw new EdgewardError(
          'ERR_ATT_TPM_EK_UNTRUSTED',
          'no EK certificate and the EK is not allow-listed',
          {
            detail: { reason: 'no certificate', ekSha256 },
          },
        );
      }
    });
    const ekTrust: TpmState['ekTrust'] = allowListed ? 'allow-list' : 'certificate';
    await gathering({ ekChain: allowListed ? 'allow-listed' : 'passed' }, () =>
      checkBindings(ctx.store, identity.uri, ekSha256, ctx.renewal),
    );
    const akName = objectName(ak);
    const nonce = randomBytes(NONCE_BYTES);
    const secret = randomBytes(SECRET_BYTES);
    const cred = makeCredential(ek, akName, secret, ekKey);
    const expiresAt = now + rule.nonceTtlMs;
    const pcrs = [...tpm.pcrs.keys()].sort((a, b) => a - b);
    const state: TpmState = {
      v: 1,
      identity: identity.uri,
      nonce: nonce.toString('base64'),
      secret: secret.toString('base64'),
      expiresAt,
      ekSha256,
      ekTrust,
      akPublic: ev.akPublic.toString('base64'),
      akName: akName.toString('hex'),
      ...(ekIssuer !== undefined ? { ekIssuer } : {}),
    };
    return {
      challenge: encodeChallenge({
        credentialBlob: cred.credentialBlob,
        encryptedSecret: cred.encryptedSecret,
        nonce,
        pcrBank: tpm.pcrBank,
        pcrs,
        expiresAt: new Date(expiresAt).toISOString(),
      }),
      state,
    };
  }

  async function finish(
    ctx: MethodContext,
    identity: Identity,
    rawState: unknown,
    response: unknown,
    csr: CsrKey,
  ): Promise<Verdict> {
    const state = asState(rawState, identity.uri);
    // The evidence so far, carried by a refusal at any later step.
    let evidence: AttestationEvidence = {
      ekChain: state.ekTrust === 'allow-list' ? 'allow-listed' : 'passed',
      ...(typeof state.ekIssuer === 'string' ? { ekIssuer: state.ekIssuer.slice(0, MAX_ISSUER) } : {}),
    };
    const report: QuoteReport = {};
    try {
      return await finishing(ctx, identity, state, response, csr, report, (more) => {
        evidence = { ...evidence, ...more };
        return evidence;
      });
    } catch (err) {
      throw err instanceof EdgewardError ? withEvidence(err, { ...evidence, ...quoteEvidence(report) }) : err;
    }
  }

  async function finishing(
    ctx: MethodContext,
    identity: Identity,
    state: TpmState,
    response: unknown,
    csr: CsrKey,
    report: QuoteReport,
    passed: (more: AttestationEvidence) => AttestationEvidence,
  ): Promise<Verdict> {
    const res = parseResponse(response);
    if (ctx.clock.now() > state.expiresAt) {
      throw new EdgewardError('ERR_ATT_TPM_NONCE_EXPIRED', undefined, {
        detail: { expiresAt: state.expiresAt },
      });
    }
    if (await ctx.store.wasUsed(NONCE_NAMESPACE, state.nonce))
      throw new EdgewardError('ERR_ATT_TPM_NONCE_REPLAYED');
    const secret = Buffer.from(state.secret, 'base64');
    if (res.secret.length !== secret.length || !timingSafeEqual(res.secret, secret)) {
      passed({ activation: 'failed' });
      throw new EdgewardError('ERR_ATT_TPM_ACTIVATION_FAILED', undefined, {
        detail: { ekSha256: state.ekSha256 },
      });
    }
    passed({ activation: 'passed' });
    const { tpm } = tpmRule(policy, identity.uri);
    passed({ pcrBank: tpm.pcrBank });
    const akPublic = parseTpm2bPublic(Buffer.from(state.akPublic, 'base64'));
    const bankAlg = hashByLabel(tpm.pcrBank);
    const valuesAlg = hashByLabel(res.pcrBank);
    if (bankAlg === undefined || valuesAlg === undefined)
      throw new TypeError('policy bank without a hash algorithm');
    // Looked up before the (synchronous) verification, which consults it after the signature.
    const quoteReplayed = await ctx.store.wasUsed(
      QUOTE_NAMESPACE,
      createHash('sha256').update(res.quote).digest('hex'),
    );
    const q = verifyQuote({
      akPublic,
      attest: res.quote,
      signature: res.signature,
      nonce: Buffer.from(state.nonce, 'base64'),
      csrSpkiSha256: csr.spkiSha256,
      pcrs: { hashAlg: valuesAlg, values: res.pcrValues },
      golden: { hashAlg: bankAlg, values: tpm.pcrs },
      isReplayed: () => quoteReplayed,
      report,
    });
    const evidence = passed(quoteEvidence(report));
    const prev = await checkBindings(ctx.store, identity.uri, state.ekSha256, ctx.renewal);
    checkMonotonic(prev, q.attest.clockInfo);
    const ci = q.attest.clockInfo;
    const record: TpmBindingRecord = {
      ekSha256: state.ekSha256,
      ekTrust: state.ekTrust,
      akName: state.akName,
      resetCount: ci.resetCount,
      restartCount: ci.restartCount,
      clock: ci.clock.toString(),
      firmwareVersion: q.attest.firmwareVersion.toString(16),
    };
    const quoteKey = q.quoteSha256.toString('hex');
    return {
      method: TPM_METHOD,
      identity: identity.uri,
      facts: {
        ekSha256: state.ekSha256,
        ekTrust: state.ekTrust,
        akName: state.akName,
        akType: akPublic.type,
        pcrBank: tpm.pcrBank,
        pcrs: [...tpm.pcrs.keys()].sort((a, b) => a - b).join(','),
        quoteSha256: quoteKey,
        resetCount: ci.resetCount,
        restartCount: ci.restartCount,
        firmwareVersion: record.firmwareVersion,
        renewal: ctx.renewal,
      },
      evidence,
      async commit(tx: MethodStoreWriter): Promise<void> {
        // Re-checked inside the transaction: a concurrent enrollment may have won the race.
        const current = await checkBindings(tx, identity.uri, state.ekSha256, ctx.renewal);
        checkMonotonic(current, ci);
        if (!(await tx.useOnce(NONCE_NAMESPACE, state.nonce, state.expiresAt)))
          throw new EdgewardError('ERR_ATT_TPM_NONCE_REPLAYED');
        if (!(await tx.useOnce(QUOTE_NAMESPACE, quoteKey, state.expiresAt + QUOTE_MARKER_EXTRA_MS))) {
          throw new EdgewardError('ERR_ATT_TPM_QUOTE_REPLAYED');
        }
        await tx.putBinding(identity.uri, TPM_METHOD, state.ekSha256, record);
      },
    };
  }

  return { name: TPM_METHOD, reattestOnRenewal: true, begin, finish };
}

/** The EK hash the CA binds (hex SHA-256 of the EK's SubjectPublicKeyInfo DER), for allow-lists. */
export function ekSha256Of(tpm2bPublic: Buffer): string {
  return createHash('sha256')
    .update(spkiDerOf(parseTpm2bPublic(tpm2bPublic)))
    .digest('hex');
}
