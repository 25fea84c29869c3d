// The agent's DecisionVerifier over common/decision-jws.ts: ES256 compact JWS signed by the SIEM,
// checked against the SIEM's public key (PEM) for this trust domain.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Clock } from '../common/clock.js';
import { verifyDecisions } from '../common/decision-jws.js';
import { EdgewardError } from '../common/errors.js';
import type { DecisionVerifier } from './decisions-store.js';
import { decodeProtectedHeader } from 'jose';
import { verifySiemChain, type SiemDecisionKey } from '../common/siem-key.js';

export function jwsDecisionVerifier(o: {
  publicKey: KeyObject;
  trustDomain: string;
  clock: Clock;
  kid?: string;
}): DecisionVerifier {
  const base = {
    publicKey: o.publicKey,
    trustDomain: o.trustDomain,
    ...(o.kid !== undefined ? { kid: o.kid } : {}),
  };
  return {
    async verifySet(token, lastApplied) {
      const d = await verifyDecisions(token, { ...base, lastApplied, now: o.clock.now() });
      if (d.kind !== 'snapshot')
        throw new EdgewardError('ERR_AGENT_DECISION_INVALID', 'expected a snapshot, got a delta');
      return d.set;
    },
    async verifyDelta(token, lastApplied) {
      const d = await verifyDecisions(token, { ...base, lastApplied, now: o.clock.now() });
      if (d.kind !== 'delta')
        throw new EdgewardError('ERR_AGENT_DECISION_INVALID', 'expected a delta, got a snapshot');
      return d.delta;
    },
  };
}

export async function loadDecisionKey(file: string): Promise<KeyObject> {
  let key: KeyObject;
  try {
    key = createPublicKey(await readFile(file, 'utf8'));
  } catch (cause) {
    throw new EdgewardError(
      'ERR_AGENT_CONFIG_INVALID',
      `decisions.key: ${file} is not a readable PEM public key`,
      { cause },
    );
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new EdgewardError('ERR_AGENT_CONFIG_INVALID', 'decisions.key must be a P-256 public key');
  }
  return key;
}

/**
 * A verifier that follows the SIEM's signing key as it rotates: the SIEM signs with its identity
 * key, which changes at every renewal. When a token names a kid we do not hold, the verifier
 * fetches the SIEM's chain (GET /v1/decisions/key over mTLS), checks it against our trust bundle
 * and the name spiffe://TD/svc/siem, and only then uses it. Refetches are spaced out, so a
 * stream of tokens with unknown kids cannot turn into a stream of requests.
 */
export function siemKeyVerifier(o: {
  fetchChain: () => Promise<string>;
  bundle: () => string;
  trustDomain: string;
  clock: Clock;
  minRefetchMs?: number;
}): DecisionVerifier {
  let current: SiemDecisionKey | undefined;
  let lastFetch = -Infinity;
  async function keyFor(token: string): Promise<SiemDecisionKey> {
    let kid: string | undefined;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch (cause) {
      throw new EdgewardError('ERR_DECISION_MALFORMED', 'decision token has no readable header', { cause });
    }
    const now = o.clock.now();
    const stale = !current || current.kid !== kid || current.notAfter <= now;
    if (stale && now - lastFetch >= (o.minRefetchMs ?? 2000)) {
      lastFetch = now;
      current = verifySiemChain(await o.fetchChain(), o.bundle(), o.trustDomain, now);
    }
    if (!current)
      throw new EdgewardError('ERR_AGENT_DECISION_INVALID', 'the SIEM decision key is not available yet');
    return current;
  }
  const verifierFor = (k: SiemDecisionKey): DecisionVerifier =>
    jwsDecisionVerifier({ publicKey: k.publicKey, kid: k.kid, trustDomain: o.trustDomain, clock: o.clock });
  return {
    async verifySet(token, lastApplied) {
      return verifierFor(await keyFor(token)).verifySet(token, lastApplied);
    },
    async verifyDelta(token, lastApplied) {
      return verifierFor(await keyFor(token)).verifyDelta(token, lastApplied);
    },
  };
}
