// TPM structure parsers on recorded swtpm blobs: exact parses, and every truncation, trailing
// byte or random input refused with a coded error (never a RangeError or a hang).
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  TPM_ALG,
  encodePcrSelection,
  objectName,
  parsePcrSelection,
  parseQuoteAttest,
  parseTpm2bPublic,
  parseTpmtSignature,
} from '../../../attestation/tpm/index.js';
import { EdgewardError } from '../../../common/errors.js';

const DIR = join(import.meta.dirname, '../../vectors/tpm');
const vectors = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map(
    (f) =>
      JSON.parse(readFileSync(join(DIR, f), 'utf8')) as {
        evidence: Record<string, string>;
        state: Record<string, string>;
        response: Record<string, string>;
      },
  );
const b64 = (s: string | undefined): Buffer => Buffer.from(s ?? '', 'base64');

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    if (err instanceof EdgewardError) return err.code;
    return `uncoded ${String(err)}`;
  }
  return 'no error';
}

const PARSERS: [string, (b: Buffer) => unknown, (v: (typeof vectors)[number]) => Buffer][] = [
  ['TPM2B_PUBLIC (EK)', parseTpm2bPublic, (v) => b64(v.evidence['ekPublic'])],
  ['TPM2B_PUBLIC (AK)', parseTpm2bPublic, (v) => b64(v.evidence['akPublic'])],
  ['TPMS_ATTEST', parseQuoteAttest, (v) => b64(v.response['quote'])],
  ['TPMT_SIGNATURE', parseTpmtSignature, (v) => b64(v.response['signature'])],
];

describe.each(PARSERS)('%s', (_name, parse, pick) => {
  it('parses every recorded blob exactly', () => {
    for (const v of vectors) expect(() => parse(pick(v))).not.toThrow();
  });

  it('refuses every truncation and a trailing byte with ERR_ATT_TPM_STRUCTURE_MALFORMED', () => {
    for (const v of vectors) {
      const blob = pick(v);
      for (let n = 0; n < blob.length; n++)
        expect(codeOf(() => parse(blob.subarray(0, n)))).toBe('ERR_ATT_TPM_STRUCTURE_MALFORMED');
      expect(codeOf(() => parse(Buffer.concat([blob, Buffer.from([0])])))).toBe(
        'ERR_ATT_TPM_STRUCTURE_MALFORMED',
      );
    }
  });

  it('never fails uncoded on random or bit-flipped input', () => {
    const blob = pick(vectors[0] as (typeof vectors)[number]);
    for (let i = 0; i < 300; i++) {
      const r = i % 2 === 0 ? randomBytes(i % 200) : Buffer.from(blob);
      if (i % 2 === 1) r[i % r.length] = (r[i % r.length] ?? 0) ^ (1 << (i % 8));
      expect(codeOf(() => parse(r))).not.toMatch(/^uncoded/);
    }
  });
});

describe('parsed content', () => {
  it('reads key types, the AK name recorded in the session, and quote fields', () => {
    for (const v of vectors) {
      const ak = parseTpm2bPublic(b64(v.evidence['akPublic']));
      expect(objectName(ak).toString('hex')).toBe(v.state['akName']);
      const ek = parseTpm2bPublic(b64(v.evidence['ekPublic']));
      expect(['rsa', 'ecc']).toContain(ek.type);
      const q = parseQuoteAttest(b64(v.response['quote']));
      expect(q.extraData).toHaveLength(32);
      expect(q.pcrSelect).toEqual([{ hashAlg: TPM_ALG.SHA256, pcrs: [0, 1, 2, 3, 4, 5, 6, 7] }]);
      expect(q.pcrDigest).toHaveLength(32);
    }
  });

  it('refuses a quote whose magic or type is not a TPM quote', () => {
    const q = b64(vectors[0]?.response['quote']);
    const badMagic = Buffer.from(q);
    badMagic[0] = 0;
    expect(codeOf(() => parseQuoteAttest(badMagic))).toBe('ERR_ATT_TPM_QUOTE_MAGIC');
    const certify = Buffer.from(q);
    certify.writeUInt16BE(0x8017, 4);
    expect(codeOf(() => parseQuoteAttest(certify))).toBe('ERR_ATT_TPM_QUOTE_TYPE');
  });
});

describe('TPML_PCR_SELECTION', () => {
  it('round-trips', () => {
    const sel = [
      { hashAlg: TPM_ALG.SHA256, pcrs: [0, 7, 16, 23] },
      { hashAlg: TPM_ALG.SHA384, pcrs: [] },
    ];
    expect(parsePcrSelection(encodePcrSelection(sel))).toEqual(sel);
  });

  it('refuses a bank listed twice, an oversized select and too many banks', () => {
    const twice = encodePcrSelection([
      { hashAlg: TPM_ALG.SHA256, pcrs: [0] },
      { hashAlg: TPM_ALG.SHA256, pcrs: [1] },
    ]);
    expect(codeOf(() => parsePcrSelection(twice))).toBe('ERR_ATT_TPM_STRUCTURE_MALFORMED');
    const big = Buffer.from('00000001000b05ffffffffff', 'hex');
    expect(codeOf(() => parsePcrSelection(big))).toBe('ERR_ATT_TPM_STRUCTURE_MALFORMED');
    expect(codeOf(() => parsePcrSelection(Buffer.from('ffffffff', 'hex')))).toBe(
      'ERR_ATT_TPM_STRUCTURE_MALFORMED',
    );
  });
});
