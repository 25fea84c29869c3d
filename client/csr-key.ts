// The hash of a CSR's public key that attestation evidence binds to (SHA-256 of the DER SPKI).
import { createHash } from 'node:crypto';

export function spkiSha256(spkiDer: Buffer): Buffer {
  return createHash('sha256').update(spkiDer).digest();
}
