// Quote verification on quotes signed in software by a key shaped like an AK, to reach the
// branches a real TPM never produces: bad magic or type under a valid signature, RSA-PSS,
// SHA-1 and scheme mismatches, oversized ECDSA values.
import { createHash, generateKeyPairSync, sign, constants, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  TPM_ALG,
  TPM_GENERATED_VALUE,
  TPM_ST_ATTEST_QUOTE,
  encodePcrSelection,
  parseTpmtPublic,
  qualifyingData,
  tpm2b,
  u16be,
  u32be,
  verifyQuote,
  type QuoteInput,
} from '../../../attestation/tpm/index.js';
import { EdgewardError } from '../../../common/errors.js';

const AK_ATTRS = 0x00050072; // fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|restricted|sign

function eccAk(
  scheme: number = TPM_ALG.ECDSA,
  hash: number = TPM_ALG.SHA256,
): { pub: Buffer; key: KeyObject } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x as string, 'base64url');
  const y = Buffer.from(jwk.y as string, 'base64url');
  const schemeBytes =
    scheme === TPM_ALG.NULL ? u16be(TPM_ALG.NULL) : Buffer.concat([u16be(scheme), u16be(hash)]);
  const pub = Buffer.concat([u16be(TPM_ALG.ECC), u16be(TPM_ALG.SHA256), u32be(AK_ATTRS), u16be(0), u16be(TPM_ALG.NULL),
    schemeBytes, u16be(0x0003), u16be(TPM_ALG.NULL), tpm2b(x), tpm2b(y)]); // prettier-ignore
  return { pub, key: privateKey };
}

function rsaAk(scheme: number): { pub: Buffer; key: KeyObject } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const n = Buffer.from(publicKey.export({ format: 'jwk' }).n as string, 'base64url');
  const pub = Buffer.concat([u16be(TPM_ALG.RSA), u16be(TPM_ALG.SHA256), u32be(AK_ATTRS), u16be(0), u16be(TPM_ALG.NULL),
    u16be(scheme), u16be(TPM_ALG.SHA256), u16be(2048), u32be(0), tpm2b(n)]); // prettier-ignore
  return { pub, key: privateKey };
}

const nonce = Buffer.alloc(16, 0x42);
const spkiSha = createHash('sha256').update('csr key').digest();
const pcrValue = Buffer.alloc(32, 3);

function attest(opts: { magic?: number; type?: number; extra?: Buffer } = {}): Buffer {
  const digest = createHash('sha256').update(pcrValue).digest();
  return Buffer.concat([u32be(opts.magic ?? TPM_GENERATED_VALUE), u16be(opts.type ?? TPM_ST_ATTEST_QUOTE), tpm2b(Buffer.alloc(34)),
    tpm2b(opts.extra ?? qualifyingData(nonce, spkiSha)), Buffer.alloc(8, 0), u32be(1), u32be(0), Buffer.from([1]),
    Buffer.alloc(8), encodePcrSelection([{ hashAlg: TPM_ALG.SHA256, pcrs: [7] }]), tpm2b(digest)]); // prettier-ignore
}

function ecdsaSig(key: KeyObject, data: Buffer, hash: number = TPM_ALG.SHA256, hashName = 'sha256'): Buffer {
  const rs = sign(hashName, data, { key, dsaEncoding: 'ieee-p1363' });
  return Buffer.concat([
    u16be(TPM_ALG.ECDSA),
    u16be(hash),
    tpm2b(rs.subarray(0, 32)),
    tpm2b(rs.subarray(32)),
  ]);
}

function input(pub: Buffer, a: Buffer, sig: Buffer): QuoteInput {
  return {
    akPublic: parseTpmtPublic(pub),
    attest: a,
    signature: sig,
    nonce,
    csrSpkiSha256: spkiSha,
    pcrs: { hashAlg: TPM_ALG.SHA256, values: new Map([[7, pcrValue]]) },
    golden: { hashAlg: TPM_ALG.SHA256, values: new Map([[7, [pcrValue]]]) },
  };
}

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    return err instanceof EdgewardError ? err.code : `uncoded ${String(err)}`;
  }
  return 'no error';
}

describe('verifyQuote', () => {
  it('accepts an ECDSA quote with the binding and golden PCR', () => {
    const ak = eccAk();
    const a = attest();
    const r = verifyQuote(input(ak.pub, a, ecdsaSig(ak.key, a)));
    expect(r.attest.clockInfo).toEqual({ clock: 0n, resetCount: 1, restartCount: 0, safe: true });
  });

  it('refuses a validly signed structure that is not TPM-generated or not a quote', () => {
    const ak = eccAk();
    const m = attest({ magic: 0x12345678 });
    expect(codeOf(() => verifyQuote(input(ak.pub, m, ecdsaSig(ak.key, m))))).toBe('ERR_ATT_TPM_QUOTE_MAGIC');
    const t = attest({ type: 0x8017 });
    expect(codeOf(() => verifyQuote(input(ak.pub, t, ecdsaSig(ak.key, t))))).toBe('ERR_ATT_TPM_QUOTE_TYPE');
  });

  it('refuses qualifying data of another length (ERR_ATT_TPM_NONCE_MISMATCH)', () => {
    const ak = eccAk();
    const a = attest({ extra: Buffer.concat([nonce, spkiSha]) });
    expect(codeOf(() => verifyQuote(input(ak.pub, a, ecdsaSig(ak.key, a))))).toBe(
      'ERR_ATT_TPM_NONCE_MISMATCH',
    );
  });

  it('refuses SHA-1 signatures and signatures whose hash differs from the AK scheme', () => {
    const ak = eccAk();
    const a = attest();
    expect(codeOf(() => verifyQuote(input(ak.pub, a, ecdsaSig(ak.key, a, TPM_ALG.SHA1, 'sha1'))))).toBe(
      'ERR_ATT_TPM_UNSUPPORTED_ALG',
    );
    expect(codeOf(() => verifyQuote(input(ak.pub, a, ecdsaSig(ak.key, a, TPM_ALG.SHA384, 'sha384'))))).toBe(
      'ERR_ATT_TPM_QUOTE_SIGNATURE',
    );
    // An AK with a null scheme accepts either hash; the PCR digest then uses the signature's hash.
    const free = eccAk(TPM_ALG.NULL);
    expect(
      codeOf(() => verifyQuote(input(free.pub, a, ecdsaSig(free.key, a, TPM_ALG.SHA384, 'sha384')))),
    ).toBe('ERR_ATT_TPM_PCR_DIGEST');
  });

  it('refuses ECDSA values longer than the curve and RSA signatures from an ECC key', () => {
    const ak = eccAk();
    const a = attest();
    const long = Buffer.concat([
      u16be(TPM_ALG.ECDSA),
      u16be(TPM_ALG.SHA256),
      tpm2b(Buffer.alloc(33, 1)),
      tpm2b(Buffer.alloc(32, 1)),
    ]);
    expect(codeOf(() => verifyQuote(input(ak.pub, a, long)))).toBe('ERR_ATT_TPM_QUOTE_SIGNATURE');
    const rsa = Buffer.concat([u16be(TPM_ALG.RSASSA), u16be(TPM_ALG.SHA256), tpm2b(Buffer.alloc(256, 1))]);
    expect(codeOf(() => verifyQuote(input(ak.pub, a, rsa)))).toBe('ERR_ATT_TPM_QUOTE_SIGNATURE');
  });

  it('verifies RSASSA and RSA-PSS quotes', () => {
    const a = attest();
    const ss = rsaAk(TPM_ALG.RSASSA);
    const sig1 = sign('sha256', a, { key: ss.key, padding: constants.RSA_PKCS1_PADDING });
    expect(() =>
      verifyQuote(
        input(ss.pub, a, Buffer.concat([u16be(TPM_ALG.RSASSA), u16be(TPM_ALG.SHA256), tpm2b(sig1)])),
      ),
    ).not.toThrow();
    const pss = rsaAk(TPM_ALG.RSAPSS);
    const sig2 = sign('sha256', a, {
      key: pss.key,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    });
    const t = Buffer.concat([u16be(TPM_ALG.RSAPSS), u16be(TPM_ALG.SHA256), tpm2b(sig2)]);
    expect(() => verifyQuote(input(pss.pub, a, t))).not.toThrow();
    const asPkcs1 = Buffer.concat([u16be(TPM_ALG.RSASSA), u16be(TPM_ALG.SHA256), tpm2b(sig2)]);
    expect(codeOf(() => verifyQuote(input(pss.pub, a, asPkcs1)))).toBe('ERR_ATT_TPM_QUOTE_SIGNATURE');
  });
});
