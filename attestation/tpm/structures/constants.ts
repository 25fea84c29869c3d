// TPM 2.0 constants (TCG TPM 2.0 Library Part 2: Structures) used by the verifier and prover.
export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  ECSCHNORR: 0x001c,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CFB: 0x0043,
} as const;

export const TPM_ECC_CURVE = { NIST_P256: 0x0003, NIST_P384: 0x0004, NIST_P521: 0x0005 } as const;

/** TPMA_OBJECT bits. */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  stClear: 1 << 2,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  noDA: 1 << 10,
  encryptedDuplication: 1 << 11,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
  x509sign: 1 << 19,
} as const;

export const TPM_GENERATED_VALUE = 0xff544347;
export const TPM_ST_ATTEST_QUOTE = 0x8018;

/** Hash algorithms we accept, with their node:crypto names and digest sizes. SHA-1 is refused. */
export const HASHES: ReadonlyMap<
  number,
  { readonly name: string; readonly size: number; readonly label: string }
> = new Map([
  [TPM_ALG.SHA256, { name: 'sha256', size: 32, label: 'sha256' }],
  [TPM_ALG.SHA384, { name: 'sha384', size: 48, label: 'sha384' }],
  [TPM_ALG.SHA512, { name: 'sha512', size: 64, label: 'sha512' }],
]);

export const CURVES: ReadonlyMap<
  number,
  { readonly jwk: string; readonly node: string; readonly size: number }
> = new Map([
  [TPM_ECC_CURVE.NIST_P256, { jwk: 'P-256', node: 'prime256v1', size: 32 }],
  [TPM_ECC_CURVE.NIST_P384, { jwk: 'P-384', node: 'secp384r1', size: 48 }],
]);

export function hashByLabel(label: string): number | undefined {
  for (const [alg, h] of HASHES) if (h.label === label) return alg;
  return undefined;
}
