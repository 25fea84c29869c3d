// Object names (Part 1, 16): nameAlg || H_nameAlg(TPMT_PUBLIC). The name is what MakeCredential
// binds the credential to, so the TPM releases it only to the object with exactly this public area.
import { createHash } from 'node:crypto';
import { EdgewardError } from '../../common/errors.js';
import { HASHES } from './structures/constants.js';
import { u16be } from './structures/reader.js';
import type { TpmPublic } from './structures/public.js';

export function hashInfo(alg: number, what: string): { name: string; size: number; label: string } {
  const h = HASHES.get(alg);
  if (!h)
    throw new EdgewardError('ERR_ATT_TPM_UNSUPPORTED_ALG', `unsupported hash algorithm for ${what}`, {
      detail: { alg },
    });
  return h;
}

export function objectName(pub: TpmPublic): Buffer {
  const h = hashInfo(pub.nameAlg, 'nameAlg');
  return Buffer.concat([u16be(pub.nameAlg), createHash(h.name).update(pub.raw).digest()]);
}
