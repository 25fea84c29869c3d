// For the CA: follows the SIEM's decision stream as spiffe://TD/svc/ca and answers
// isQuarantined(identity) for startCaServer's option of that name (renewals of a quarantined
// identity are refused). The last verified set stays in force while the SIEM is unreachable,
// and across a restart: it is stored, and re-verified without the network at the next start.
import { createSecureContext } from 'node:tls';
import { EdgewardError } from '../common/errors.js';
import { matchIdentity, serviceId } from '../common/identity.js';
import type { Logger } from '../common/log.js';
import { siemKeyVerifier } from '../agent/decision-verifier.js';
import { DecisionStreamClient } from '../agent/decisions-client.js';
import { DecisionStore } from '../agent/decisions-store.js';
import { httpsCall } from '../agent/https-client.js';

export interface CaDecisionFollowerOptions {
  readonly siemUrl: string;
  readonly trustDomain: string;
  /** The CA's client identity (spiffe://TD/svc/ca) and the trust bundle, read at each connect. */
  readonly credentials: () => {
    readonly keyPem: string;
    readonly certPem: string;
    readonly bundlePem: string;
  };
  readonly log: Logger;
  readonly now?: () => number;
  /**
   * Where the last verified set is kept with the SIEM chains that verified it (the agent's
   * decision store format, docs/agent.md), so that a CA started while the SIEM is down still
   * refuses what the SIEM last quarantined.
   */
  readonly file: string;
}

export interface CaDecisionFollower {
  isQuarantined(identity: string): boolean;
  readonly revision: number;
  readonly connected: boolean;
  /** Loads the stored set (a refused one is logged and held as none), then follows the stream. */
  start(): Promise<void>;
  stop(): void;
}

export function createCaDecisionFollower(o: CaDecisionFollowerOptions): CaDecisionFollower {
  const now = o.now ?? Date.now;
  const expect = serviceId(o.trustDomain, 'siem');
  const context = () => {
    const c = o.credentials();
    return createSecureContext({ key: c.keyPem, cert: c.certPem, ca: c.bundlePem, minVersion: 'TLSv1.3' });
  };
  // The agent's verifier and store: the SIEM's key followed as it rotates, persisted with its chain.
  const verifier = siemKeyVerifier({
    trustDomain: o.trustDomain,
    clock: { now },
    bundle: () => o.credentials().bundlePem,
    fetchChain: async () => {
      const r = await httpsCall({
        url: `${o.siemUrl}/v1/decisions/key`,
        context: context(),
        expect,
        maxBytes: 64 * 1024,
        code: 'ERR_SIEM_DECISION_KEY',
      });
      if (r.status !== 200)
        throw new EdgewardError('ERR_SIEM_DECISION_KEY', `key request answered ${r.status}`);
      return r.body.toString('utf8');
    },
  });
  const store = new DecisionStore(o.file, verifier, o.trustDomain);

  async function apply(kind: 'snapshot' | 'delta', token: string): Promise<number> {
    const r = kind === 'snapshot' ? await store.applySnapshot(token) : await store.applyDelta(token);
    try {
      await r.persisted;
    } catch (err) {
      o.log.error(
        { err },
        'SIEM decisions followed but not stored; a restart cut off from the SIEM loses them',
      );
    }
    return r.set.revision;
  }

  const client = new DecisionStreamClient({
    url: o.siemUrl,
    expect,
    context,
    log: o.log,
    revision: () => store.revision,
    apply,
  });

  return {
    isQuarantined(identity) {
      const set = store.current;
      if (set === null) return false;
      const t = now();
      for (const d of set.decisions) {
        if (d.expiresAt <= t) continue;
        if (
          (d.scope.type === 'identity' || d.scope.type === 'node') &&
          matchIdentity(d.scope.value, identity)
        )
          return true;
      }
      return false;
    },
    get revision() {
      return store.revision;
    },
    get connected() {
      return client.connected;
    },
    async start() {
      try {
        await store.load();
      } catch (err) {
        o.log.error({ err }, 'stored SIEM decisions are refused; waiting for the SIEM');
      }
      client.start();
    },
    stop: () => client.stop(),
  };
}
