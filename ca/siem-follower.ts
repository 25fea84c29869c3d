// For the CA: follows the SIEM's decision stream as spiffe://TD/svc/ca and answers which live
// decision covers a credential (identity, node, serial or key: renewals and enrollments are then
// refused), handing each verified set to `onSet` (renewal holds). The last verified set stays in
// force while the SIEM is unreachable, and across a restart: it is stored, and re-verified without
// the network at the next start.
import { createSecureContext } from 'node:tls';
import type { Decision, DecisionSet } from '../common/decisions.js';
import { EdgewardError } from '../common/errors.js';
import { serviceId } from '../common/identity.js';
import { quarantineOf, type CredentialSubject } from './quarantine.js';
import type { Logger } from '../common/log.js';
import {
  siemKeyVerifier,
  DecisionStreamClient,
  DecisionStore,
  httpsCall,
  replicasFor,
  type ServiceUrls,
} from '../client/index.js';

export interface CaDecisionFollowerOptions {
  readonly siemUrl: ServiceUrls;
  readonly trustDomain: string;
  /** The CA's client identity (spiffe://TD/svc/ca) and the trust bundle, read at each connect. */
  readonly credentials: () => {
    readonly keyPem: string;
    readonly certPem: string;
    readonly bundlePem: string;
  };
  readonly log: Logger;
  readonly now?: () => number;
  /** Called with every newly verified set, after it is in force. */
  readonly onSet?: (set: DecisionSet) => void;
  /**
   * Where the last verified set is kept with the SIEM chains that verified it (the agent's
   * decision store format, docs/agent.md), so that a CA started while the SIEM is down still
   * refuses what the SIEM last quarantined.
   */
  readonly file: string;
}

export interface CaDecisionFollower {
  /** The live decision covering the credential, if any. */
  quarantineOf(subject: CredentialSubject): Decision | undefined;
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
    fetchChain: () =>
      replicasFor(o.siemUrl).call(async (url) => {
        const r = await httpsCall({
          url: `${url}/v1/decisions/key`,
          context: context(),
          expect,
          maxBytes: 64 * 1024,
          code: 'ERR_SIEM_DECISION_KEY',
        });
        if (r.status !== 200)
          throw new EdgewardError('ERR_SIEM_DECISION_KEY', `key request answered ${r.status}`, {
            detail: { status: r.status },
          });
        return r.body.toString('utf8');
      }),
  });
  const store = new DecisionStore(o.file, verifier, o.trustDomain);

  const handOver = (set: DecisionSet): void => {
    try {
      o.onSet?.(set);
    } catch (err) {
      // The set is in force either way; a failed hold update is retried with the next set.
      o.log.error({ err, revision: set.revision }, 'applying decisions to renewal holds failed');
    }
  };

  async function apply(kind: 'snapshot' | 'delta', token: string): Promise<number> {
    const r = kind === 'snapshot' ? await store.applySnapshot(token) : await store.applyDelta(token);
    // Holds follow the set as soon as it is in force, before the (fsync'd) store is written.
    handOver(r.set);
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
    quarantineOf: (subject) => quarantineOf(store.current, subject, now()),
    isQuarantined: (identity) => quarantineOf(store.current, { identity }, now()) !== undefined,
    get revision() {
      return store.revision;
    },
    get connected() {
      return client.connected;
    },
    async start() {
      try {
        await store.load();
        if (store.current !== null) handOver(store.current);
      } catch (err) {
        o.log.error({ err }, 'stored SIEM decisions are refused; waiting for the SIEM');
      }
      client.start();
    },
    stop: () => client.stop(),
  };
}
