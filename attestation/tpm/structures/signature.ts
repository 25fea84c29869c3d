// TPMT_SIGNATURE (Part 2, 11.3.4) for RSASSA, RSAPSS and ECDSA.
import { EdgewardError } from '../../../common/errors.js';
import { TPM_ALG } from './constants.js';
import { TpmReader } from './reader.js';

export type TpmSignature =
  | {
      readonly sigAlg: typeof TPM_ALG.RSASSA | typeof TPM_ALG.RSAPSS;
      readonly hashAlg: number;
      readonly sig: Buffer;
    }
  | {
      readonly sigAlg: typeof TPM_ALG.ECDSA;
      readonly hashAlg: number;
      readonly r: Buffer;
      readonly s: Buffer;
    };

export function parseTpmtSignature(buf: Buffer): TpmSignature {
  const rd = new TpmReader(buf, 'TPMT_SIGNATURE');
  const sigAlg = rd.u16('sigAlg');
  if (sigAlg === TPM_ALG.RSASSA || sigAlg === TPM_ALG.RSAPSS) {
    const hashAlg = rd.u16('hash');
    const sig = rd.tpm2b('sig', 512);
    rd.end();
    return { sigAlg, hashAlg, sig };
  }
  if (sigAlg === TPM_ALG.ECDSA) {
    const hashAlg = rd.u16('hash');
    const r = rd.tpm2b('signatureR', 128);
    const s = rd.tpm2b('signatureS', 128);
    rd.end();
    return { sigAlg, hashAlg, r, s };
  }
  throw new EdgewardError('ERR_ATT_TPM_UNSUPPORTED_ALG', 'unsupported signature algorithm', {
    detail: { sigAlg },
  });
}
