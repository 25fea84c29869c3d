// What the dashboard needs from the SIEM, as one interface; the SIEM service implements it over
// its store, engines and decision hub. Views are plain JSON; the page renders them as text.
export type View = Readonly<Record<string, unknown>>;

export interface InventoryQuery {
  readonly q?: string;
  readonly status?: 'healthy' | 'quarantined' | 'revoked';
  readonly kind?: 'node' | 'device' | 'svc';
  readonly limit: number;
  readonly offset: number;
}

export interface ManualDecisionRequest {
  readonly scope: { readonly type: string; readonly value: string };
  readonly action: 'quarantine' | 'isolate';
  readonly ttlMs: number;
  readonly reason: string;
}

export interface DashboardApi {
  /** Newest first. */
  alerts(limit: number, before?: number): View[];
  /** Live alerts; returns the unsubscribe function. */
  subscribeAlerts(fn: (alert: View) => void): () => void;
  inventory(q: InventoryQuery): { total: number; items: View[] };
  /** Timeline of one identity: its events, alerts, decisions and the peers it talks to. */
  entity(identity: string, limit: number): View;
  /** Active and pending decisions, the current revision, each agent's acknowledged revision and lag. */
  decisions(): View;
  quarantine(by: string, req: ManualDecisionRequest): Promise<View>;
  approve(by: string, id: string): Promise<View>;
  lift(by: string, id: string): Promise<View>;
  /** Who talks to whom: nodes with their status, edges with connection counts. */
  graph(): View;
  /** Events per second and alerts by rule, per time bucket. */
  charts(): View;
}
