// The quote's qualifying data, shared by the prover and the verifier so they cannot drift:
// extraData = nonce (16 bytes from the CA) || first 16 bytes of SHA-256(CSR SubjectPublicKeyInfo DER).
// 32 bytes in all, because TPM2B_DATA is bounded by sizeof(TPMT_HA), which is 34 bytes on TPMs that
// implement only SHA-256; keeping the halves apart lets the CA tell a stale nonce from a swapped key.
import { timingSafeEqual } from 'node:crypto';
import { EdgewardError } from '../../common/errors.js';

export const NONCE_BYTES = 16;
export const KEY_BINDING_BYTES = 16;

export function qualifyingData(nonce: Buffer, csrSpkiSha256: Buffer): Buffer {
  if (nonce.length !== NONCE_BYTES) throw new TypeError(`nonce must be ${NONCE_BYTES} bytes`);
  if (csrSpkiSha256.length !== 32) throw new TypeError('csrSpkiSha256 must be a SHA-256 digest');
  return Buffer.concat([nonce, csrSpkiSha256.subarray(0, KEY_BINDING_BYTES)]);
}

/** Throws ERR_ATT_TPM_NONCE_MISMATCH or ERR_ATT_TPM_CSR_KEY_MISMATCH. */
export function checkQualifyingData(extraData: Buffer, nonce: Buffer, csrSpkiSha256: Buffer): void {
  const expected = qualifyingData(nonce, csrSpkiSha256);
  if (extraData.length !== expected.length) {
    throw new EdgewardError('ERR_ATT_TPM_NONCE_MISMATCH', undefined, {
      detail: { extraDataLength: extraData.length },
    });
  }
  if (!timingSafeEqual(extraData.subarray(0, NONCE_BYTES), expected.subarray(0, NONCE_BYTES))) {
    throw new EdgewardError('ERR_ATT_TPM_NONCE_MISMATCH');
  }
  if (!timingSafeEqual(extraData.subarray(NONCE_BYTES), expected.subarray(NONCE_BYTES))) {
    throw new EdgewardError('ERR_ATT_TPM_CSR_KEY_MISMATCH');
  }
}
