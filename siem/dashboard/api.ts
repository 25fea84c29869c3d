// What the dashboard needs from the SIEM, as one interface; the SIEM service implements it over
// its store, engines and decision hub. Views are plain JSON; the page renders them as text.
import type { Level } from '../../policies/rules/index.js';

export type View = Readonly<Record<string, unknown>>;

export interface InventoryQuery {
  readonly q?: string;
  readonly status?: 'healthy' | 'quarantined' | 'revoked';
  readonly kind?: 'node' | 'device' | 'svc';
  readonly limit: number;
  readonly offset: number;
}

export interface AlertsQuery {
  readonly limit: number;
  /** Epoch ms, exclusive: the next page of the newest-first list. */
  readonly before?: number;
  /** Epoch ms, inclusive. */
  readonly since?: number;
  readonly rule?: string;
  /** An identity, address, serial or key hash the alert is about. */
  readonly entity?: string;
  /** Only these severities. */
  readonly severity?: readonly Level[];
  /** Only alerts with these triage states. */
  readonly status?: readonly AlertTriage[];
}

/** An alert's triage state: new, or acknowledged or closed by an analyst. */
export type AlertTriage = 'new' | 'acknowledged' | 'closed';

export interface ManualDecisionRequest {
  readonly scope: { readonly type: string; readonly value: string };
  readonly action: 'quarantine' | 'isolate';
  readonly ttlMs: number;
  readonly reason: string;
}

export interface LiftRequest {
  readonly reason?: string;
}

/** One read by a logged-in user, for the read audit log (who looked at what). */
export interface ReadRecord {
  readonly user: string;
  readonly ip: string;
  /** The page or list read: alerts, alert, inventory, entity, decisions, graph, charts, preview. */
  readonly page: string;
  readonly what: string;
}

/** The chart ranges counted by the store (beyond the 10 minutes held in memory). */
export type ChartRange = '1h' | '24h';
export const STORED_CHART_RANGES: Readonly<Record<ChartRange, { spanMs: number; bucketMs: number }>> = {
  '1h': { spanMs: 3_600_000, bucketMs: 60_000 },
  '24h': { spanMs: 86_400_000, bucketMs: 1_800_000 },
};

export interface DashboardApi {
  /** Newest first, an alert view each: severity, entity, rule id and title, event ids. */
  alerts(q: AlertsQuery): Promise<View[]>;
  /** One alert raised at `time` (epoch ms): its evidence, rule and the decisions it caused. */
  alert(id: string, time: number): Promise<View>;
  /** Records an analyst's triage of the alert raised at `time`; audited; answers its view. */
  setAlertStatus(by: string, id: string, time: number, status: 'acknowledged' | 'closed'): Promise<View>;
  /** Live alerts (alert views); returns the unsubscribe function. */
  subscribeAlerts(fn: (alert: View) => void): () => void;
  /** The live decision state (revision, each agent's acknowledgement) whenever it changes. */
  subscribeState(fn: (state: View) => void): () => void;
  inventory(q: InventoryQuery): Promise<{ total: number; items: View[] }>;
  /**
   * One entity (an identity, or an address, serial or key hash): its status from every decision
   * covering it, certificates, attestation, events, alerts and the peers it talks to.
   */
  entity(id: string, limit: number): Promise<View>;
  /** What a quarantine of this scope would cut now: live connections and the agents holding them. */
  preview(scope: { readonly type: string; readonly value: string }): View;
  /** Active and pending decisions, the current revision, each agent's acknowledged revision and lag. */
  decisions(): Promise<View>;
  /**
   * Every agent on the decision stream: online or not, acknowledged revision and lag, last seen,
   * and its certificate's expiry (from the inventory), the soonest expiry first.
   */
  fleet(): Promise<View>;
  quarantine(by: string, req: ManualDecisionRequest): Promise<View>;
  approve(by: string, id: string): Promise<View>;
  lift(by: string, id: string, req?: LiftRequest): Promise<View>;
  /** Records a read in the read audit log. */
  read(r: ReadRecord): void;
  /** Who talks to whom: nodes with their status, edges with connection and refusal counts. */
  graph(): Promise<View>;
  /** Events per second and alerts by rule, per time bucket. */
  /**
   * Events per second and alerts by rule: the last 10 minutes from memory (10 s buckets), or a
   * range the store counts by event time (`1h`: 1-minute buckets, `24h`: 30-minute buckets).
   */
  charts(range?: ChartRange): Promise<View> | View;
}
