// The agent's DecisionVerifier over common/decision-jws.ts: ES256 compact JWS signed by the SIEM,
// checked against the SIEM's public key (PEM) for this trust domain.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Clock } from '../common/clock.js';
import { verifyDecisions } from '../common/decision-jws.js';
import { EdgewardError } from '../common/errors.js';
import type { DecisionVerifier } from './decisions-store.js';

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
