// The SIEM signs decisions with its identity key (see common/siem-key.ts for how verifiers turn
// its certificate chain into that key).
import type { LoadedIdentity } from '../../common/identity-dir.js';
import { spkiSha256Hex } from '../../common/x509.js';
import type { DecisionSigner } from './hub.js';

export { verifySiemChain, type SiemDecisionKey } from '../../common/siem-key.js';

/** The SIEM's own signer from its identity folder. */
export function signerOf(id: LoadedIdentity): DecisionSigner {
  const spki = id.leaf.publicKey.export({ type: 'spki', format: 'der' });
  return { key: id.key, kid: spkiSha256Hex(spki) };
}
