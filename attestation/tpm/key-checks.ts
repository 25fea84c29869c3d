// Attribute checks for the endorsement key and the attestation key. An AK must be a restricted
// signing key that never left its TPM; an EK a restricted decryption key. Anything else is refused.
import { EdgewardError } from '../../common/errors.js';
import { CURVES, HASHES, TPMA_OBJECT as A, TPM_ALG } from './structures/constants.js';
import { malformed } from './structures/reader.js';
import type { KeyObject } from 'node:crypto';
import { publicKeyOf, type TpmPublic } from './structures/public.js';

const AK_REQUIRED = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.restricted | A.sign;
const AK_ALLOWED = AK_REQUIRED | A.userWithAuth | A.adminWithPolicy | A.noDA | A.stClear;
const EK_REQUIRED = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.restricted | A.decrypt;
const EK_ALLOWED = EK_REQUIRED | A.userWithAuth | A.adminWithPolicy | A.noDA;

/**
 * Checks the AK's attributes, scheme, curve and size without importing the key: begin does not
 * need it, and finish imports it once to verify the quote (refusing points off the curve then).
 */
export function checkAkPublic(ak: TpmPublic): void {
  const attrs = ak.objectAttributes >>> 0;
  const missing = AK_REQUIRED & ~attrs;
  const extra = attrs & ~AK_ALLOWED;
  if (missing !== 0 || extra !== 0) {
    throw new EdgewardError('ERR_ATT_TPM_AK_ATTRIBUTES', undefined, { detail: { attrs, missing, extra } });
  }
  if (!HASHES.has(ak.nameAlg)) {
    throw new EdgewardError('ERR_ATT_TPM_UNSUPPORTED_ALG', 'AK nameAlg not allowed', {
      detail: { nameAlg: ak.nameAlg },
    });
  }
  if (ak.symmetric.algorithm !== TPM_ALG.NULL) {
    throw new EdgewardError('ERR_ATT_TPM_AK_ATTRIBUTES', 'a signing key has no symmetric definition');
  }
  const s = ak.scheme;
  const okScheme =
    s.scheme === TPM_ALG.NULL ||
    (ak.type === 'rsa' &&
      (s.scheme === TPM_ALG.RSASSA || s.scheme === TPM_ALG.RSAPSS) &&
      HASHES.has(s.hashAlg)) ||
    (ak.type === 'ecc' && s.scheme === TPM_ALG.ECDSA && HASHES.has(s.hashAlg));
  if (!okScheme) {
    throw new EdgewardError('ERR_ATT_TPM_UNSUPPORTED_ALG', 'AK signing scheme not allowed', {
      detail: { ...s },
    });
  }
  if (ak.type === 'ecc' && ak.kdf.scheme !== TPM_ALG.NULL) {
    throw new EdgewardError('ERR_ATT_TPM_AK_ATTRIBUTES', 'AK must not carry a KDF');
  }
  checkKeySize(ak);
}

function checkKeySize(k: TpmPublic): void {
  if (k.type === 'rsa') {
    if (k.keyBits < 2048 || k.keyBits > 4096) {
      throw new EdgewardError('ERR_ATT_TPM_UNSUPPORTED_ALG', 'RSA keys must have 2048 to 4096 bits', {
        detail: { keyBits: k.keyBits },
      });
    }
    return;
  }
  const curve = CURVES.get(k.curveId);
  if (!curve)
    throw new EdgewardError('ERR_ATT_TPM_UNSUPPORTED_ALG', 'unsupported ECC curve', {
      detail: { curveId: k.curveId },
    });
  if (k.x.length !== curve.size || k.y.length !== curve.size)
    throw malformed('TPMT_PUBLIC: ECC point coordinates of the wrong size');
}

/** Returns the EK's public key. */
export function checkEkPublic(ek: TpmPublic): KeyObject {
  const attrs = ek.objectAttributes >>> 0;
  const missing = EK_REQUIRED & ~attrs;
  const extra = attrs & ~EK_ALLOWED;
  if (missing !== 0 || extra !== 0) {
    throw new EdgewardError('ERR_ATT_TPM_EK_ATTRIBUTES', undefined, { detail: { attrs, missing, extra } });
  }
  if (!HASHES.has(ek.nameAlg)) {
    throw new EdgewardError('ERR_ATT_TPM_UNSUPPORTED_ALG', 'EK nameAlg not allowed', {
      detail: { nameAlg: ek.nameAlg },
    });
  }
  const sym = ek.symmetric;
  if (
    sym.algorithm !== TPM_ALG.AES ||
    sym.mode !== TPM_ALG.CFB ||
    (sym.keyBits !== 128 && sym.keyBits !== 256)
  ) {
    throw new EdgewardError(
      'ERR_ATT_TPM_UNSUPPORTED_ALG',
      'EK symmetric definition must be AES-128/256-CFB',
      {
        detail: { ...sym },
      },
    );
  }
  if (ek.scheme.scheme !== TPM_ALG.NULL || (ek.type === 'ecc' && ek.kdf.scheme !== TPM_ALG.NULL)) {
    throw new EdgewardError('ERR_ATT_TPM_EK_ATTRIBUTES', 'a storage EK has no scheme and no KDF');
  }
  return publicKeyOf(ek);
}
