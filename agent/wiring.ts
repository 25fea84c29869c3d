// Default wiring of the agent's injected pieces: renewal and enrollment through the client part
// (with the prover the attestation registry makes from the config's `enroll` section) and the
// decision verifier from `decisions.key`. One place to change when those interfaces move.
import { systemClock } from '../common/clock.js';
import { EdgewardError } from '../common/errors.js';
import { attestOptionsOf, CONFIG_ATTEST_USAGE, proverFor } from '../attestation/index.js';
import type { AgentConfig } from './config.js';
import {
  jwsDecisionVerifier,
  loadDecisionKey,
  siemKeyVerifier,
  httpsCall,
  type DecisionVerifier,
  enroll,
  renew,
  replicasFor,
} from '../client/index.js';
import { loadIdentity } from '../common/identity-dir.js';
import { createSecureContext } from 'node:tls';
import type { IdentityRefresher } from './rotation.js';

export function defaultRenew(cfg: AgentConfig): IdentityRefresher {
  return async (dir) => {
    const prover = cfg.enroll
      ? proverFor(attestOptionsOf(cfg.enroll, cfg.identity.id), CONFIG_ATTEST_USAGE)
      : undefined;
    try {
      await renew({ ca: cfg.ca.urls, dir, ...(prover ? { prover } : {}) });
    } finally {
      await prover?.close?.();
    }
  };
}

export function defaultEnroll(cfg: AgentConfig): IdentityRefresher {
  return async (dir) => {
    if (!cfg.enroll)
      throw new EdgewardError(
        'ERR_AGENT_ROTATION',
        'the identity needs enrollment but the config has no enroll section',
      );
    const prover = proverFor(attestOptionsOf(cfg.enroll, cfg.identity.id), CONFIG_ATTEST_USAGE);
    try {
      await enroll({
        ca: cfg.ca.urls,
        fingerprint: cfg.ca.fingerprint,
        id: cfg.identity.id,
        prover,
        out: dir,
      });
    } finally {
      await prover.close?.();
    }
  };
}

export async function defaultVerifier(cfg: AgentConfig): Promise<DecisionVerifier | null> {
  if (cfg.decisions.key) {
    const publicKey = await loadDecisionKey(cfg.decisions.key);
    return jwsDecisionVerifier({
      publicKey,
      trustDomain: cfg.identity.trustDomain,
      clock: systemClock,
      ...(cfg.decisions.kid !== null ? { kid: cfg.decisions.kid } : {}),
    });
  }
  const siem = cfg.siem;
  if (!siem) return null;
  // No fixed key: follow the SIEM's key as it rotates, trusting what our bundle and its name say.
  return siemKeyVerifier({
    trustDomain: cfg.identity.trustDomain,
    clock: systemClock,
    bundle: () => loadIdentity(cfg.identity.dir).bundlePem,
    fetchChain: async () => {
      const id = loadIdentity(cfg.identity.dir);
      const context = createSecureContext({ key: id.keyPem, cert: id.certPem, ca: id.bundlePem });
      return replicasFor(siem.urls).call(async (url) => {
        const r = await httpsCall({
          url: `${url}/v1/decisions/key`,
          context,
          expect: siem.id,
          maxBytes: 64 * 1024,
          code: 'ERR_AGENT_DECISION_INVALID',
        });
        if (r.status !== 200)
          throw new EdgewardError('ERR_AGENT_DECISION_INVALID', `decision key request answered ${r.status}`, {
            detail: { status: r.status },
          });
        return r.body.toString('utf8');
      });
    },
  });
}
