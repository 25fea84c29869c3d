// The SIEM's link to the CA: revocation of what a decision quarantines (POST /v1/revoke, which the
// CA allows for spiffe://TD/svc/siem), so the quarantined identity cannot renew either.
import { caRequest, endpointFromBundle, type ServiceUrls } from '../../client/index.js';
import type { DecisionScope } from '../../common/decisions.js';
import { EdgewardError } from '../../common/errors.js';
import type { LoadedIdentity } from '../../common/identity-dir.js';
import { parseIdentity } from '../../common/identity.js';

export interface CaRevoker {
  /** Revokes what the scope names at the CA; returns the revoked serials. Other scopes: []. */
  revoke(scope: DecisionScope, why: string): Promise<string[]>;
}

/** Which scopes the CA can act on: one exact identity (no wildcard), a node, or a serial. */
export function revocable(scope: DecisionScope): boolean {
  if (scope.type === 'serial') return true;
  if (scope.type !== 'identity' && scope.type !== 'node') return false;
  return !scope.value.split('/').some((s) => s === '*' || s === '**');
}

export function createCaRevoker(o: {
  readonly caUrl: ServiceUrls;
  readonly identity: () => LoadedIdentity;
}): CaRevoker {
  return {
    async revoke(scope) {
      if (!revocable(scope)) return [];
      const id = o.identity();
      const ep = endpointFromBundle(o.caUrl, id.bundlePem, parseIdentity(id.identity).trustDomain);
      const body =
        scope.type === 'serial'
          ? { serial: scope.value, reason: 'keyCompromise' }
          : { id: scope.value, reason: 'privilegeWithdrawn' };
      try {
        const r = await caRequest<{ revoked?: unknown }>(ep, 'POST', '/v1/revoke', body, {
          keyPem: id.keyPem,
          certPem: id.certPem,
        });
        const revoked = r.json.revoked;
        return Array.isArray(revoked) ? revoked.filter((s): s is string => typeof s === 'string') : [];
      } catch (err) {
        throw new EdgewardError('ERR_SIEM_CA_LINK', 'revocation at the CA failed', { cause: err });
      }
    },
  };
}
