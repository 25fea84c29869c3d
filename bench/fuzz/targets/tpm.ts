// TPM 2.0 structures and the whole quote verification, seeded with the recorded swtpm vectors.
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import {
  TPM_ALG,
  TPMA_OBJECT,
  checkAkPublic,
  encodePcrSelection,
  objectName,
  parsePcrSelection,
  parseQuoteAttest,
  parseTpm2bPublic,
  parseTpmtSignature,
  publicKeyOf,
  tpm2b,
  verifyQuote,
  type PcrSelection,
  type QuoteResult,
  type TpmSignature,
} from '../../../attestation/tpm/index.js';
import { EdgewardError } from '../../../common/errors.js';
import { OracleFailure, type FuzzTarget } from '../engine.js';
import { loadCorpus, repoFile, repoRoot } from '../corpus.js';

const TPM_DICT = [
  Buffer.from([0xff, 0x54, 0x43, 0x47]),
  Buffer.from([0x80, 0x18]),
  Buffer.from([0x00, 0x23]),
  Buffer.from([0x00, 0x01]),
  Buffer.from([0x00, 0x0b]),
  Buffer.from([0x00, 0x10]),
  Buffer.from([0x00, 0x18]),
  Buffer.from([0x00, 0x14]),
  Buffer.from([0x00, 0x16]),
  Buffer.from([0x00, 0x03]),
  Buffer.from([0x00, 0x04]),
  Buffer.from([0x00, 0x06]),
];

export const tpm2bPublic: FuzzTarget<{ name: Buffer; spki: Buffer | null }> = {
  name: 'tpm2b-public',
  about: 'TPM2B_PUBLIC: parseTpm2bPublic, objectName, publicKeyOf and checkAkPublic',
  sources: [
    'attestation/tpm/structures/public.ts',
    'attestation/tpm/structures/reader.ts',
    'attestation/tpm/names.ts',
    'attestation/tpm/key-checks.ts',
  ],
  codes: ['ERR_ATT_TPM_STRUCTURE_MALFORMED', 'ERR_ATT_TPM_UNSUPPORTED_ALG', 'ERR_ATT_TPM_AK_ATTRIBUTES'],
  dictionary: TPM_DICT,
  maxBytes: 2048,
  seeds: () => loadCorpus('tpm2b-public'),
  run(input) {
    const pub = parseTpm2bPublic(input);
    const name = objectName(pub);
    const spki =
      (pub.objectAttributes & TPMA_OBJECT.sign) !== 0
        ? (checkAkPublic(pub), publicKeyOf(pub).export({ format: 'der', type: 'spki' }))
        : null;
    return { name, spki };
  },
  accepted(input, r) {
    // The name hashes exactly the bytes inside the TPM2B, and parsing is deterministic.
    const again = parseTpm2bPublic(input);
    if (!again.raw.equals(input.subarray(2))) throw new OracleFailure('raw is not the TPMT_PUBLIC bytes');
    if (!objectName(again).equals(r.name)) throw new OracleFailure('object name not deterministic');
    if (again.type === 'rsa' && again.modulus.length * 8 !== again.keyBits)
      throw new OracleFailure('RSA modulus size differs from keyBits');
  },
};

export const tpmsAttest: FuzzTarget<ReturnType<typeof parseQuoteAttest>> = {
  name: 'tpms-attest',
  about: 'TPMS_ATTEST of a quote: parseQuoteAttest',
  sources: ['attestation/tpm/structures/attest.ts', 'attestation/tpm/structures/reader.ts'],
  codes: ['ERR_ATT_TPM_STRUCTURE_MALFORMED', 'ERR_ATT_TPM_QUOTE_MAGIC', 'ERR_ATT_TPM_QUOTE_TYPE'],
  dictionary: TPM_DICT,
  maxBytes: 2048,
  seeds: () => loadCorpus('tpms-attest'),
  run: (input) => parseQuoteAttest(input),
  accepted(_input, a) {
    for (const s of a.pcrSelect) {
      if (s.pcrs.some((p, i) => i > 0 && p <= (s.pcrs[i - 1] ?? -1)))
        throw new OracleFailure('PCR indices not ascending');
    }
    if (a.extraData.length > 64 || a.pcrDigest.length > 64) throw new OracleFailure('TPM2B over its bound');
  },
};

function sameSignature(a: TpmSignature, b: TpmSignature): boolean {
  const strip = (x: Buffer): string => x.toString('hex').replace(/^(00)+/, '');
  if (a.sigAlg !== b.sigAlg || a.hashAlg !== b.hashAlg) return false;
  if (a.sigAlg === TPM_ALG.ECDSA && b.sigAlg === TPM_ALG.ECDSA)
    return strip(a.r) === strip(b.r) && strip(a.s) === strip(b.s);
  return 'sig' in a && 'sig' in b && a.sig.equals(b.sig);
}

function encodeSignature(s: TpmSignature): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(s.sigAlg, 0);
  head.writeUInt16BE(s.hashAlg, 2);
  return s.sigAlg === TPM_ALG.ECDSA
    ? Buffer.concat([head, tpm2b(s.r), tpm2b(s.s)])
    : Buffer.concat([head, tpm2b(s.sig)]);
}

export const tpmtSignature: FuzzTarget<TpmSignature> = {
  name: 'tpmt-signature',
  about: 'TPMT_SIGNATURE: parseTpmtSignature, with a serialise -> parse round trip',
  sources: ['attestation/tpm/structures/signature.ts', 'attestation/tpm/structures/reader.ts'],
  codes: ['ERR_ATT_TPM_STRUCTURE_MALFORMED', 'ERR_ATT_TPM_UNSUPPORTED_ALG'],
  dictionary: TPM_DICT,
  maxBytes: 2048,
  seeds: () => loadCorpus('tpmt-signature'),
  run: (input) => parseTpmtSignature(input),
  accepted(input, s) {
    const enc = encodeSignature(s);
    if (!enc.equals(input)) throw new OracleFailure('serialised signature differs from the input');
    if (!sameSignature(parseTpmtSignature(enc), s))
      throw new OracleFailure('round trip changed the signature');
  },
};

export const pcrSelection: FuzzTarget<PcrSelection[]> = {
  name: 'pcr-selection',
  about: 'TPML_PCR_SELECTION: parsePcrSelection, with an encode -> parse round trip',
  sources: ['attestation/tpm/structures/attest.ts', 'attestation/tpm/structures/reader.ts'],
  codes: ['ERR_ATT_TPM_STRUCTURE_MALFORMED'],
  dictionary: TPM_DICT,
  maxBytes: 1024,
  seeds: () => loadCorpus('pcr-selection'),
  run: (input) => parsePcrSelection(input),
  accepted(_input, sel) {
    if (new Set(sel.map((s) => s.hashAlg)).size !== sel.length)
      throw new OracleFailure('a bank listed twice');
    // The encoder writes PCRs 0..23 (3 select bytes): those selections must survive it.
    if (sel.every((s) => s.pcrs.every((p) => p <= 23))) {
      const back = parsePcrSelection(encodePcrSelection(sel));
      if (!isDeepStrictEqual(back, sel)) throw new OracleFailure('encode -> parse changed the selection');
    }
  },
};

// ---- the whole quote verification ----

interface QuoteVector {
  readonly akPublic: Buffer;
  readonly quote: Buffer;
  readonly signature: Buffer;
  readonly nonce: Buffer;
  readonly csrSpkiSha256: Buffer;
  readonly pcrValues: Buffer;
}

let vectors: QuoteVector[] | undefined;
function quoteVectors(): QuoteVector[] {
  if (vectors) return vectors;
  const dir = join(repoRoot(), 'test', 'vectors', 'tpm');
  vectors = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const v = JSON.parse(repoFile('test', 'vectors', 'tpm', f).toString('utf8')) as {
        state: { akPublic: string; nonce: string };
        response: { quote: string; signature: string; pcrs: { values: Record<string, string> } };
        csrSpkiDer: string;
      };
      const b = (s: string): Buffer => Buffer.from(s, 'base64');
      const values = Object.keys(v.response.pcrs.values)
        .map(Number)
        .sort((x, y) => x - y)
        .map((k) => b(v.response.pcrs.values[String(k)] ?? ''));
      return {
        akPublic: b(v.state.akPublic),
        quote: b(v.response.quote),
        signature: b(v.response.signature),
        nonce: b(v.state.nonce),
        csrSpkiSha256: createHash('sha256').update(b(v.csrSpkiDer)).digest(),
        pcrValues: Buffer.concat(values),
      };
    });
  return vectors;
}

/** The fuzzed input: vector index (1 byte), then the AK's TPM2B_PUBLIC, the quote, the signature and the PCR values, each u16-length-prefixed. */
export function encodeQuoteInput(index: number, v: Omit<QuoteVector, 'nonce' | 'csrSpkiSha256'>): Buffer {
  return Buffer.concat([
    Buffer.from([index]),
    tpm2b(v.akPublic),
    tpm2b(v.quote),
    tpm2b(v.signature),
    tpm2b(v.pcrValues),
  ]);
}

function decodeQuoteInput(b: Buffer): { index: number; parts: Buffer[] } | null {
  if (b.length < 1) return null;
  const parts: Buffer[] = [];
  let o = 1;
  for (let i = 0; i < 4; i++) {
    if (o + 2 > b.length) return null;
    const n = b.readUInt16BE(o);
    if (o + 2 + n > b.length) return null;
    parts.push(b.subarray(o + 2, o + 2 + n));
    o += 2 + n;
  }
  return o === b.length ? { index: b[0] as number, parts } : null;
}

/** An input that is not four length-prefixed fields: refused as malformed, as the API's schema would. */
function notQuoteInput(): EdgewardError {
  return new EdgewardError('ERR_INPUT_MALFORMED', 'not a quote input');
}

const GOLDEN = new Map<number, Buffer[]>(Array.from({ length: 8 }, (_, i) => [i, [Buffer.alloc(32)]]));

export const quote: FuzzTarget<QuoteResult & { index: number; parts: Buffer[] }> = {
  name: 'quote',
  about:
    'the whole quote verification (verifyQuote: AK key, signature, TPMS_ATTEST, nonce/CSR binding, PCR digest, golden values) over the recorded swtpm quotes',
  sources: [
    'attestation/tpm/verify-quote.ts',
    'attestation/tpm/binding.ts',
    'attestation/tpm/structures/public.ts',
    'attestation/tpm/structures/attest.ts',
    'attestation/tpm/structures/signature.ts',
  ],
  codes: [
    'ERR_ATT_TPM_STRUCTURE_MALFORMED',
    'ERR_ATT_TPM_UNSUPPORTED_ALG',
    'ERR_ATT_TPM_QUOTE_SIGNATURE',
    'ERR_ATT_TPM_QUOTE_MAGIC',
    'ERR_ATT_TPM_QUOTE_TYPE',
    'ERR_ATT_TPM_NONCE_MISMATCH',
    'ERR_ATT_TPM_CSR_KEY_MISMATCH',
    'ERR_ATT_TPM_PCR_NOT_QUOTED',
    'ERR_ATT_TPM_PCR_SELECTION',
    'ERR_ATT_TPM_PCR_DIGEST',
    'ERR_ATT_TPM_PCR_MISMATCH',
    'ERR_ATT_TPM_RESPONSE_MALFORMED',
    'ERR_INPUT_MALFORMED',
  ],
  dictionary: TPM_DICT,
  maxBytes: 4096,
  seeds: () => quoteVectors().map((v, i) => encodeQuoteInput(i, v)),
  fields: {
    split: (b) => {
      const d = decodeQuoteInput(b);
      return d ? [Buffer.from([d.index]), ...d.parts] : null;
    },
    join: ([index, ...parts]) =>
      Buffer.concat([
        (index ?? Buffer.alloc(1)).subarray(0, 1),
        ...parts.map((p) => tpm2b(p.subarray(0, 0xffff))),
      ]),
  },
  run(input) {
    const d = decodeQuoteInput(input);
    const v = d ? quoteVectors()[d.index] : undefined;
    if (!d || !v) throw notQuoteInput();
    const [akPublic, attest, signature, pcrValues] = d.parts as [Buffer, Buffer, Buffer, Buffer];
    if (pcrValues.length % 32 !== 0) throw notQuoteInput();
    const values = new Map<number, Buffer>();
    for (let i = 0; i * 32 < pcrValues.length; i++) values.set(i, pcrValues.subarray(i * 32, i * 32 + 32));
    const r = verifyQuote({
      akPublic: parseTpm2bPublic(akPublic),
      attest,
      signature,
      nonce: v.nonce,
      csrSpkiSha256: v.csrSpkiSha256,
      pcrs: { hashAlg: TPM_ALG.SHA256, values },
      golden: { hashAlg: TPM_ALG.SHA256, values: GOLDEN },
    });
    return { ...r, index: d.index, parts: d.parts };
  },
  accepted(_input, r) {
    // A yes only for the quote the TPM signed, with the PCR values it quoted, by the same key.
    const v = quoteVectors()[r.index] as QuoteVector;
    const [akPublic, attest, signature, pcrValues] = r.parts as [Buffer, Buffer, Buffer, Buffer];
    if (!attest.equals(v.quote)) throw new OracleFailure('a mutated TPMS_ATTEST verified');
    if (!pcrValues.equals(v.pcrValues)) throw new OracleFailure('mutated PCR values verified');
    const key = (b: Buffer): string =>
      publicKeyOf(parseTpm2bPublic(b)).export({ format: 'der', type: 'spki' }).toString('hex');
    if (key(akPublic) !== key(v.akPublic)) throw new OracleFailure('a quote verified under another key');
    if (!sameSignature(parseTpmtSignature(signature), parseTpmtSignature(v.signature)))
      throw new OracleFailure('a mutated signature verified');
  },
};
