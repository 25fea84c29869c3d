// The dashboard's view of the running SIEM (siem/dashboard/api.ts DashboardApi) over its store,
// response engine and decision hub, plus small in-memory aggregates for the graph and charts.
// Every analyst change goes through the hub (persisted, signed, streamed) and is audited.
import type { Decision, DecisionScope } from '../../common/decisions.js';
import { EdgewardError } from '../../common/errors.js';
import type { EdgeEvent } from '../../common/events.js';
import { matchIdentity } from '../../common/identity.js';
import type { Alert } from '../correlate/index.js';
import type { DashboardApi, InventoryQuery, ManualDecisionRequest, View } from '../dashboard/api.js';
import type { Inventory } from '../dashboard/inventory.js';
import type { RunningSiem } from '../server.js';

const BUCKET_MS = 10_000;
const BUCKETS = 60;
const MAX_EDGES = 5000;

export interface DashboardApiOptions {
  /** The inventory projection (dashboard.db); fed from committed events. */
  readonly inventory?: Inventory;
}

type Host = Pick<RunningSiem, 'hub' | 'store' | 'subscribeAlerts' | 'subscribeEvents' | 'audit' | 'now'>;

function decisionView(d: Decision): View {
  return { ...d, scope: { ...d.scope } };
}

function touches(d: Decision, identity: string): boolean {
  return (d.scope.type === 'identity' || d.scope.type === 'node') && matchIdentity(d.scope.value, identity);
}

export function createDashboardApi(
  siem: Host,
  o: DashboardApiOptions = {},
): DashboardApi & { close(): void } {
  const engine = siem.hub.engine;
  const quarantined = (identity: string): boolean => engine.active().some((d) => touches(d, identity));
  // Rolling per-10 s counts: events, and alerts per rule.
  const events = new Map<number, number>();
  const alertsByRule = new Map<string, Map<number, number>>();
  const edges = new Map<string, { from: string; to: string; count: number }>();
  const bucket = (t: number): number => Math.floor(t / BUCKET_MS) * BUCKET_MS;
  const trim = (m: Map<number, number>): void => {
    const oldest = bucket(siem.now()) - BUCKETS * BUCKET_MS;
    for (const k of m.keys()) if (k < oldest) m.delete(k);
  };

  const offEvents = siem.subscribeEvents((batch: readonly EdgeEvent[]) => {
    o.inventory?.apply(batch);
    const b = bucket(siem.now());
    events.set(b, (events.get(b) ?? 0) + batch.length);
    trim(events);
    for (const e of batch) {
      const from = e['source.identity'];
      const to = e['destination.identity'];
      if (from === undefined || to === undefined) continue;
      const k = `${from}\u001f${to}`;
      const edge = edges.get(k);
      if (edge) edge.count++;
      else if (edges.size < MAX_EDGES) edges.set(k, { from, to, count: 1 });
    }
  });
  const alertFns = new Set<(a: View) => void>();
  const offAlerts = siem.subscribeAlerts((a: Alert) => {
    const m = alertsByRule.get(a.ruleId) ?? new Map<number, number>();
    const b = bucket(siem.now());
    m.set(b, (m.get(b) ?? 0) + 1);
    trim(m);
    alertsByRule.set(a.ruleId, m);
    for (const fn of alertFns) fn(a as unknown as View);
  });

  const series = (m: Map<number, number>, per = 1): [number, number][] => {
    const end = bucket(siem.now());
    const out: [number, number][] = [];
    for (let t = end - (BUCKETS - 1) * BUCKET_MS; t <= end; t += BUCKET_MS)
      out.push([t, (m.get(t) ?? 0) / per]);
    return out;
  };

  /** A dashboard change: through the hub, audited with the user name, answered as a view. */
  function act<T>(
    by: string,
    action: string,
    what: string,
    fn: () => T,
    view: (r: T) => View,
  ): Promise<View> {
    const principal = { id: by, via: 'session' };
    try {
      const r = fn();
      const v = view(r);
      const id = typeof v['id'] === 'string' ? v['id'] : undefined;
      siem.audit({
        action,
        principal,
        ip: '127.0.0.1',
        ok: true,
        message: what,
        decisionId: id,
        revision: siem.hub.revision,
      });
      return Promise.resolve(v);
    } catch (err) {
      const code = err instanceof EdgewardError ? err.code : 'ERR_INTERNAL';
      siem.audit({ action, principal, ip: '127.0.0.1', ok: false, code, message: what });
      const e =
        err instanceof TypeError
          ? new EdgewardError('ERR_INPUT_MALFORMED', err.message)
          : err instanceof Error
            ? err
            : new EdgewardError('ERR_INTERNAL');
      return Promise.reject(e);
    }
  }

  return {
    alerts(limit: number, before?: number): View[] {
      const all = siem.store.alerts({ limit: before === undefined ? limit : 10_000 });
      const list = before === undefined ? all : all.filter((a) => a.time < before);
      return list.slice(0, limit) as unknown as View[];
    },
    subscribeAlerts(fn) {
      alertFns.add(fn);
      return () => void alertFns.delete(fn);
    },
    inventory(q: InventoryQuery) {
      if (o.inventory === undefined) return { total: 0, items: [] };
      return o.inventory.query(q, quarantined);
    },
    entity(identity: string, limit: number): View {
      const timeline = siem.store.timeline({ entity: 'identity', value: identity, limit });
      const peers = new Set<string>();
      for (const e of timeline) {
        for (const p of [e['source.identity'], e['destination.identity'], e['observer.identity']])
          if (p !== undefined && p !== identity) peers.add(p);
      }
      const alerts = siem.store
        .alerts({ limit: 2000 })
        .filter(
          (a) => Object.values(a.groupBy).includes(identity) || a.trigger['source.identity'] === identity,
        )
        .slice(0, 100);
      return {
        identity,
        ...(o.inventory?.get(identity, quarantined) ?? {}),
        quarantined: quarantined(identity),
        events: timeline,
        alerts,
        decisions: engine
          .active()
          .filter((d) => touches(d, identity))
          .map(decisionView),
        peers: [...peers].slice(0, 200),
      };
    },
    decisions(): View {
      const now = siem.now();
      return {
        revision: siem.hub.revision,
        active: engine.active().map(decisionView),
        pending: engine.pending(),
        agents: siem.hub.ledger.list(now).map((a) => ({
          identity: a.identity,
          connected: a.connected,
          revision: a.acked,
          behind: a.behind,
          lagMs: a.lagMs,
        })),
      };
    },
    quarantine(by: string, req: ManualDecisionRequest) {
      const scope = { type: req.scope.type, value: req.scope.value } as DecisionScope;
      return act(
        by,
        'siem.decision.create',
        `quarantine ${scope.type} ${String(scope.value).slice(0, 200)}: ${req.reason.slice(0, 200)}`,
        () =>
          siem.hub.change((e, t) =>
            e.createManual({ scope, action: req.action, ttlMs: req.ttlMs, reason: req.reason }, t),
          ),
        (d) => ({ ...decisionView(d), status: 'created' }),
      );
    },
    approve(by: string, id: string) {
      return act(
        by,
        'siem.decision.approve',
        `approve pending ${id}`,
        () => siem.hub.change((e, t) => e.approve(id, t)),
        (d) => ({ ...decisionView(d), status: 'approved' }),
      );
    },
    lift(by: string, id: string) {
      return act(
        by,
        'siem.decision.lift',
        `lift ${id}`,
        () => siem.hub.change((e) => e.lift(id)),
        (d) => ({ ...decisionView(d), status: 'lifted' }),
      );
    },
    graph(): View {
      const list = [...edges.values()].sort((a, b) => b.count - a.count).slice(0, 500);
      const ids = new Set<string>();
      for (const e of list) {
        ids.add(e.from);
        ids.add(e.to);
      }
      return {
        nodes: [...ids].map((id) => ({ id, status: quarantined(id) ? 'quarantined' : 'healthy' })),
        edges: list,
      };
    },
    charts(): View {
      return {
        bucketMs: BUCKET_MS,
        eventsPerSecond: series(events, BUCKET_MS / 1000),
        alertsByRule: [...alertsByRule.entries()].map(([rule, m]) => ({ rule, buckets: series(m) })),
      };
    },
    close() {
      offEvents();
      offAlerts();
      alertFns.clear();
    },
  };
}
