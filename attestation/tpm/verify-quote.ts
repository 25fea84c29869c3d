// Quote verification (pure): the AK's signature over the raw TPMS_ATTEST first, then magic and
// type, replay, the nonce/CSR-key binding, the PCR digest recomputed from the supplied values,
// and the values against the golden ones. Each failure has its own code.
import { constants, createHash, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { EdgewardError } from '../../common/errors.js';
import { checkQualifyingData } from './binding.js';
import { hashInfo } from './names.js';
import { CURVES, TPM_ALG } from './structures/constants.js';
import { parseQuoteAttest, type QuoteAttest } from './structures/attest.js';
import { publicKeyOf, type TpmPublic } from './structures/public.js';
import { parseTpmtSignature, type TpmSignature } from './structures/signature.js';

export interface PcrValues {
  readonly hashAlg: number;
  readonly values: ReadonlyMap<number, Buffer>;
}

export interface GoldenPcrs {
  readonly hashAlg: number;
  /** For each PCR the policy requires, the acceptable values. */
  readonly values: ReadonlyMap<number, readonly Buffer[]>;
}

export interface QuoteInput {
  readonly akPublic: TpmPublic;
  /** Optional pre-built key, so hot paths do not rebuild it. */
  readonly akKey?: KeyObject;
  readonly attest: Buffer;
  readonly signature: Buffer;
  readonly nonce: Buffer;
  readonly csrSpkiSha256: Buffer;
  readonly pcrs: PcrValues;
  readonly golden: GoldenPcrs;
  /** Consulted after the signature verifies and before the binding is checked. */
  readonly isReplayed?: (quoteSha256: Buffer) => boolean;
  /** Filled in as verification goes, so that a refusal still says what was compared. */
  readonly report?: QuoteReport;
}

/** What quote verification compared, step by step (hex digests, PCR indices). */
export interface QuoteReport {
  signature?: 'passed' | 'failed';
  /** The policy's PCRs, compared in this order. */
  pcrSelection?: number[];
  /** The digest the golden values give (for each PCR, the golden value reported, else the first). */
  expectedDigest?: string;
  /** The digest the TPM signed in the quote. */
  quotedDigest?: string;
  /** The PCRs whose reported value is none of the golden ones. */
  mismatch?: number[];
  pcrs?: 'passed' | 'failed';
}

/** Longest digest reported (SHA-512, hex). */
const MAX_DIGEST_HEX = 128;

export interface QuoteResult {
  readonly attest: QuoteAttest;
  readonly quoteSha256: Buffer;
  readonly sigHashAlg: number;
}

function pad(b: Buffer, size: number): Buffer | undefined {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const t = b.subarray(i);
  if (t.length > size) return undefined;
  return Buffer.concat([Buffer.alloc(size - t.length), t]);
}

function badSig(reason: string): EdgewardError {
  return new EdgewardError('ERR_ATT_TPM_QUOTE_SIGNATURE', undefined, { detail: { reason } });
}

/** Verifies a TPMT_SIGNATURE over `data` with the AK; returns the signature's hash algorithm. */
export function verifyTpmSignature(ak: TpmPublic, key: KeyObject, data: Buffer, sig: TpmSignature): number {
  const h = hashInfo(sig.hashAlg, 'signature');
  if (
    ak.scheme.scheme !== TPM_ALG.NULL &&
    (ak.scheme.scheme !== sig.sigAlg || ak.scheme.hashAlg !== sig.hashAlg)
  ) {
    throw badSig('signature scheme differs from the AK scheme');
  }
  let ok: boolean;
  if (sig.sigAlg === TPM_ALG.ECDSA) {
    if (ak.type !== 'ecc') throw badSig('ECDSA signature from a non-ECC key');
    const size = CURVES.get(ak.curveId)?.size ?? 0;
    const r = pad(sig.r, size);
    const s = pad(sig.s, size);
    if (!r || !s) throw badSig('ECDSA r or s too long');
    ok = verify(h.name, data, { key, dsaEncoding: 'ieee-p1363' }, Buffer.concat([r, s]));
  } else {
    if (ak.type !== 'rsa') throw badSig('RSA signature from a non-RSA key');
    if (sig.sig.length !== ak.modulus.length) throw badSig('RSA signature of the wrong size');
    const padding =
      sig.sigAlg === TPM_ALG.RSAPSS ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING;
    ok = verify(
      h.name,
      data,
      sig.sigAlg === TPM_ALG.RSAPSS
        ? { key, padding, saltLength: constants.RSA_PSS_SALTLEN_AUTO }
        : { key, padding },
      sig.sig,
    );
  }
  if (!ok) throw badSig('signature does not verify');
  return sig.hashAlg;
}

const sameBytes = (a: Buffer, b: Buffer): boolean => a.length === b.length && timingSafeEqual(a, b);

/** Recomputes the quote's PCR digest and compares the values with the golden ones. */
export function checkQuotePcrs(
  attest: QuoteAttest,
  sigHashAlg: number,
  pcrs: PcrValues,
  golden: GoldenPcrs,
  report?: QuoteReport,
): void {
  try {
    comparePcrs(attest, sigHashAlg, pcrs, golden, report);
  } catch (err) {
    if (report) report.pcrs = 'failed';
    throw err;
  }
  if (report) report.pcrs = 'passed';
}

function comparePcrs(
  attest: QuoteAttest,
  sigHashAlg: number,
  pcrs: PcrValues,
  golden: GoldenPcrs,
  report: QuoteReport | undefined,
): void {
  const quoted = new Map<number, readonly number[]>(attest.pcrSelect.map((s) => [s.hashAlg, s.pcrs]));
  const quotedBank = quoted.get(pcrs.hashAlg);
  for (const idx of pcrs.values.keys()) {
    if (!quotedBank?.includes(idx)) {
      throw new EdgewardError('ERR_ATT_TPM_PCR_NOT_QUOTED', undefined, {
        detail: { pcr: idx, hashAlg: pcrs.hashAlg },
      });
    }
  }
  // The quote must select exactly the policy's PCRs in the policy's bank, nothing more or less.
  const wanted = [...golden.values.keys()].sort((a, b) => a - b);
  const bank = quoted.get(golden.hashAlg);
  if (
    attest.pcrSelect.some((s) => s.hashAlg !== golden.hashAlg && s.pcrs.length > 0) ||
    !bank ||
    bank.length !== wanted.length ||
    bank.some((p, i) => p !== wanted[i]) ||
    pcrs.hashAlg !== golden.hashAlg
  ) {
    throw new EdgewardError('ERR_ATT_TPM_PCR_SELECTION', undefined, {
      detail: { wanted, quoted: attest.pcrSelect.map((s) => ({ hashAlg: s.hashAlg, pcrs: s.pcrs })) },
    });
  }
  const h = hashInfo(sigHashAlg, 'PCR digest');
  const bankSize = hashInfo(golden.hashAlg, 'PCR bank').size;
  if (report) {
    report.pcrSelection = wanted;
    report.quotedDigest = attest.pcrDigest.toString('hex').slice(0, MAX_DIGEST_HEX);
    const expected = createHash(h.name);
    const mismatch: number[] = [];
    for (const idx of wanted) {
      const allowed = golden.values.get(idx) ?? [];
      const v = pcrs.values.get(idx);
      const hit = v === undefined ? undefined : allowed.find((g) => sameBytes(g, v));
      if (hit === undefined) mismatch.push(idx);
      const use = hit ?? allowed[0];
      if (use !== undefined) expected.update(use);
    }
    report.expectedDigest = expected.digest('hex').slice(0, MAX_DIGEST_HEX);
    report.mismatch = mismatch;
  }
  const digest = createHash(h.name);
  for (const sel of attest.pcrSelect) {
    for (const idx of sel.pcrs) {
      const v = pcrs.values.get(idx);
      if (!v) throw new EdgewardError('ERR_ATT_TPM_PCR_DIGEST', undefined, { detail: { missing: idx } });
      if (v.length !== bankSize)
        throw new EdgewardError('ERR_ATT_TPM_RESPONSE_MALFORMED', 'PCR value of the wrong size');
      digest.update(v);
    }
  }
  const computed = digest.digest();
  if (computed.length !== attest.pcrDigest.length || !timingSafeEqual(computed, attest.pcrDigest)) {
    throw new EdgewardError('ERR_ATT_TPM_PCR_DIGEST');
  }
  for (const idx of wanted) {
    const v = pcrs.values.get(idx) as Buffer;
    const allowed = golden.values.get(idx) ?? [];
    if (!allowed.some((g) => g.length === v.length && timingSafeEqual(g, v))) {
      throw new EdgewardError('ERR_ATT_TPM_PCR_MISMATCH', undefined, {
        detail: { pcr: idx, value: v.toString('hex') },
      });
    }
  }
}

export function verifyQuote(input: QuoteInput): QuoteResult {
  const key = input.akKey ?? publicKeyOf(input.akPublic);
  // The signature covers the raw bytes: verify before parsing, so a flipped byte anywhere is a
  // signature failure rather than whatever the parser happens to trip on.
  let sigHashAlg: number;
  try {
    const sig = parseTpmtSignature(input.signature);
    sigHashAlg = verifyTpmSignature(input.akPublic, key, input.attest, sig);
  } catch (err) {
    if (input.report) input.report.signature = 'failed';
    throw err;
  }
  if (input.report) input.report.signature = 'passed';
  const attest = parseQuoteAttest(input.attest);
  const quoteSha256 = createHash('sha256').update(input.attest).digest();
  if (input.isReplayed?.(quoteSha256)) throw new EdgewardError('ERR_ATT_TPM_QUOTE_REPLAYED');
  checkQualifyingData(attest.extraData, input.nonce, input.csrSpkiSha256);
  checkQuotePcrs(attest, sigHashAlg, input.pcrs, input.golden, input.report);
  return { attest, quoteSha256, sigHashAlg };
}
