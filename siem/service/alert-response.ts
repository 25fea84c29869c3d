// The step from alerts to decisions and revocations. `respondToAlerts` is the pure part: from the
// alerts and what the response engine made of them, what to count and which decisions to carry
// to the CA as revocations. `createAlertResponder` commits it: the engine's change through the
// decision hub, the alerts to the store, the counts to metrics, the revocations to the CA.
import type { DecisionScope } from '../../common/decisions.js';
import type { Logger } from '../../common/log.js';
import type { Alert } from '../correlate/index.js';
import type { ResponseOutcome } from '../playbooks/index.js';
import type { SiemStore } from '../store/index.js';
import { revocable } from './ca-link.js';
import type { DecisionHub } from './hub.js';
import type { SiemMetrics } from './metrics.js';

export interface Revocation {
  readonly decisionId: string;
  readonly scope: DecisionScope;
  readonly reason: string;
}

export interface AlertResponse {
  /** Playbook outcomes to count, by outcome label (`applied`, `pending`, `skipped_<reason>`…). */
  readonly outcomes: readonly (readonly [label: string, count: number])[];
  /** Applied decisions whose alerts come from a revoking rule and whose scope the CA can revoke. */
  readonly revocations: readonly Revocation[];
}

export interface RespondOptions {
  /** Rule ids whose decisions also revoke at the CA. */
  readonly revokeRules: ReadonlySet<string>;
  /** Whether a CA is there to revoke at. */
  readonly canRevoke: boolean;
}

export function respondToAlerts(
  alerts: readonly Alert[],
  outcome: ResponseOutcome,
  o: RespondOptions,
): AlertResponse {
  const outcomes: [string, number][] = [];
  if (outcome.applied.length > 0) outcomes.push(['applied', outcome.applied.length]);
  if (outcome.pending.length > 0) outcomes.push(['pending', outcome.pending.length]);
  if (outcome.simulated.length > 0) outcomes.push(['simulated', outcome.simulated.length]);
  for (const s of outcome.skipped) outcomes.push([`skipped_${s.reason}`, 1]);
  const revocations: Revocation[] = [];
  if (o.revokeRules.size > 0 && o.canRevoke) {
    const ruleOf = new Map(alerts.map((a) => [a.id, a.ruleId]));
    for (const d of outcome.applied) {
      if (!revocable(d.scope) || !d.alerts.some((id) => o.revokeRules.has(ruleOf.get(id) ?? ''))) continue;
      revocations.push({ decisionId: d.id, scope: d.scope, reason: d.reason });
    }
  }
  return { outcomes, revocations };
}

export interface AlertResponderOptions extends RespondOptions {
  readonly hub: DecisionHub;
  readonly store: SiemStore;
  readonly metrics: SiemMetrics;
  readonly log: Logger;
  /** Revokes at the CA; resolves with the serials revoked. */
  readonly revoke: (scope: DecisionScope, why: string) => Promise<string[]>;
  /** Each alert as it is raised (the alert feed). */
  readonly onAlert: (alert: Alert) => void;
}

/** The correlator's alert handler; resolves once the decisions and the alerts are stored (or logged as failed). */
export function createAlertResponder(o: AlertResponderOptions): (alerts: Alert[]) => Promise<void> {
  return async (alerts) => {
    for (const a of alerts) o.metrics.alerts.inc({ rule: a.ruleId });
    for (const a of alerts) o.onAlert(a);
    // Decisions first (their commit is on the path to enforcement), the alerts' own commit after.
    // Both go to the state file: neither waits for the ingest writer's transaction.
    let outcome: ResponseOutcome | undefined;
    try {
      outcome = await o.hub.handleAlerts(alerts);
    } catch (err) {
      o.log.error({ err }, 'response engine failed');
    }
    try {
      await o.store.insertAlerts(alerts);
    } catch (err) {
      o.log.error({ err }, 'could not store alerts');
    }
    if (outcome === undefined) return;
    const r = respondToAlerts(alerts, outcome, o);
    for (const [label, n] of r.outcomes) o.metrics.decisions.inc({ outcome: label }, n);
    for (const v of r.revocations) {
      o.revoke(v.scope, v.reason).then(
        (serials) => o.log.info({ decision: v.decisionId, scope: v.scope, serials }, 'revoked at the CA'),
        (err: unknown) => o.log.error({ err, decision: v.decisionId }, 'revocation at the CA failed'),
      );
    }
  };
}
