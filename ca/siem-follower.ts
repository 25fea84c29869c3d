// For the CA: follows the SIEM's decision stream as spiffe://TD/svc/ca and answers which live
// decision covers a credential (identity, node, serial or key: renewals and enrollments are then
// refused), handing each verified set to `onSet` (renewal holds). The last verified set stays in
// force while the SIEM is unreachable.
import { createSecureContext } from 'node:tls';
import { verifyDecisions } from '../common/decision-jws.js';
import type { Decision, DecisionSet } from '../common/decisions.js';
import { EdgewardError } from '../common/errors.js';
import { serviceId } from '../common/identity.js';
import { quarantineOf, type CredentialSubject } from './quarantine.js';
import type { Logger } from '../common/log.js';
import { DecisionStreamClient } from '../agent/decisions-client.js';
import { applyDelta } from '../agent/decisions-store.js';
import { httpsCall } from '../agent/https-client.js';
import { verifySiemChain, type SiemDecisionKey } from '../common/siem-key.js';

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
  /** Called with every newly verified set, after it is in force. */
  readonly onSet?: (set: DecisionSet) => void;
}

export interface CaDecisionFollower {
  /** The live decision covering the credential, if any. */
  quarantineOf(subject: CredentialSubject): Decision | undefined;
  isQuarantined(identity: string): boolean;
  readonly revision: number;
  readonly connected: boolean;
  start(): void;
  stop(): void;
}

export function createCaDecisionFollower(o: CaDecisionFollowerOptions): CaDecisionFollower {
  const now = o.now ?? Date.now;
  const expect = serviceId(o.trustDomain, 'siem');
  let set: DecisionSet | null = null;
  let key: SiemDecisionKey | null = null;
  const context = () => {
    const c = o.credentials();
    return createSecureContext({ key: c.keyPem, cert: c.certPem, ca: c.bundlePem, minVersion: 'TLSv1.3' });
  };

  async function fetchKey(): Promise<SiemDecisionKey> {
    const r = await httpsCall({
      url: `${o.siemUrl}/v1/decisions/key`,
      context: context(),
      expect,
      maxBytes: 64 * 1024,
      code: 'ERR_SIEM_DECISION_KEY',
    });
    if (r.status !== 200)
      throw new EdgewardError('ERR_SIEM_DECISION_KEY', `key request answered ${r.status}`);
    key = verifySiemChain(r.body.toString('utf8'), o.credentials().bundlePem, o.trustDomain, now());
    return key;
  }

  async function verify(token: string, refetched = false): Promise<number> {
    const k = key ?? (await fetchKey());
    let doc;
    try {
      doc = await verifyDecisions(token, {
        publicKey: k.publicKey,
        kid: k.kid,
        trustDomain: o.trustDomain,
        lastApplied: set?.revision ?? null,
        now: now(),
      });
    } catch (err) {
      // The SIEM renewed its identity (new key, new kid): fetch its chain again, once.
      if (
        !refetched &&
        err instanceof EdgewardError &&
        (err.code === 'ERR_DECISION_KID' || err.code === 'ERR_DECISION_SIGNATURE')
      ) {
        key = null;
        return verify(token, true);
      }
      throw err;
    }
    if (doc.kind === 'snapshot') set = doc.set;
    else if (set !== null) set = applyDelta(set, doc.delta);
    if (set !== null) {
      try {
        o.onSet?.(set);
      } catch (err) {
        // The set is in force either way; a failed hold update is retried with the next set.
        o.log.error({ err, revision: set.revision }, 'applying decisions to renewal holds failed');
      }
    }
    return set?.revision ?? 0;
  }

  const client = new DecisionStreamClient({
    url: o.siemUrl,
    expect,
    context,
    log: o.log,
    revision: () => set?.revision ?? 0,
    apply: (_kind, token) => verify(token),
  });

  return {
    quarantineOf: (subject) => quarantineOf(set, subject, now()),
    isQuarantined: (identity) => quarantineOf(set, { identity }, now()) !== undefined,
    get revision() {
      return set?.revision ?? 0;
    },
    get connected() {
      return client.connected;
    },
    start: () => client.start(),
    stop: () => client.stop(),
  };
}
