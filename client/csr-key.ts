// What attestation evidence binds to: the CSR's public key (DER SPKI) and its SHA-256.
import { createHash } from 'node:crypto';
import type { CsrKey } from '../attestation/index.js';

export function csrKey(spkiDer: Buffer): CsrKey {
  return { spkiDer, spkiSha256: createHash('sha256').update(spkiDer).digest() };
}
