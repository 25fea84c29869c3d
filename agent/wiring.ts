// Default wiring of the agent's injected pieces: renewal and enrollment through the CA client
// (agent/renew.ts, agent/enroll.ts with the config's `enroll` prover) and the decision verifier
// from `decisions.key`. One place to change when those interfaces move.
import { systemClock } from '../common/clock.js';
import { EdgewardError } from '../common/errors.js';
import { proverFor } from '../client/cli.js';
import type { AgentConfig } from './config.js';
import { jwsDecisionVerifier, loadDecisionKey, siemKeyVerifier } from '../client/decision-verifier.js';
import { httpsCall } from '../client/https-client.js';
import { loadIdentity } from '../common/identity-dir.js';
import { createSecureContext } from 'node:tls';
import type { DecisionVerifier } from '../client/decisions-store.js';
import { enroll } from '../client/enroll.js';
import { renew } from '../client/renew.js';
import type { IdentityRefresher } from './rotation.js';

const USAGE =
  'agent config: enroll: { attest: token, tokenFile: FILE } (or EDGEWARD_JOIN_TOKEN) | { attest: tpm, tcti: TCTI } | { attest: puf, puf: SPEC }';

type AttestKey = 'attest' | 'token-file' | 'tcti' | 'puf' | 'id';

function attestOptions(cfg: AgentConfig): Partial<Record<AttestKey, string>> {
  const e = cfg.enroll ?? {};
  // The PUF prover signs the identity too.
  const out: Partial<Record<AttestKey, string>> = { id: cfg.identity.id };
  for (const [k, from] of [
    ['attest', 'attest'],
    ['token-file', 'tokenFile'],
    ['tcti', 'tcti'],
    ['puf', 'puf'],
  ] as const) {
    const v = e[from];
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}

export function defaultRenew(cfg: AgentConfig): IdentityRefresher {
  return async (dir) => {
    const prover = cfg.enroll ? proverFor(attestOptions(cfg), USAGE) : undefined;
    try {
      await renew({ ca: cfg.ca.url, dir, ...(prover ? { prover } : {}) });
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
    const prover = proverFor(attestOptions(cfg), USAGE);
    try {
      await enroll({
        ca: cfg.ca.url,
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
      const r = await httpsCall({
        url: `${siem.url}/v1/decisions/key`,
        context: createSecureContext({ key: id.keyPem, cert: id.certPem, ca: id.bundlePem }),
        expect: siem.id,
        maxBytes: 64 * 1024,
        code: 'ERR_AGENT_DECISION_INVALID',
      });
      if (r.status !== 200)
        throw new EdgewardError('ERR_AGENT_DECISION_INVALID', `decision key request answered ${r.status}`);
      return r.body.toString('utf8');
    },
  });
}
