// The dashboard's view of the running SIEM (siem/dashboard/api.ts DashboardApi) over its store,
// response engine and decision hub, plus small in-memory aggregates for the graph and charts.
// Every analyst change goes through the hub (persisted, signed, streamed) and is audited. Every
// answer is bounded: pages and lists have caps, the graph and charts a fixed time window.
import type { Decision, DecisionScope } from '../../common/decisions.js';
import { EdgewardError } from '../../common/errors.js';
import type { EdgeEvent } from '../../common/events.js';
import { matchIdentity } from '../../common/identity.js';
import type { Alert } from '../correlate/index.js';
import type { DashboardApi, InventoryQuery, ManualDecisionRequest, View } from '../dashboard/api.js';
import { quarantineSet, type Inventory, type QuarantineSet } from '../dashboard/inventory.js';
import type { RunningSiem } from '../running-siem.js';

const BUCKET_MS = 10_000;
const BUCKETS = 60;
const MAX_EDGES = 5000;
/** The graph shows who talked to whom within this window; older pairs make room for new ones. */
const GRAPH_WINDOW_MS = 3_600_000;
const GRAPH_EDGES = 500;
/** Longest list of active decisions, pending ones or agents in one answer (totals come too). */
const MAX_LIST = 500;
/** Alerts shown on an entity's page. */
const ENTITY_ALERTS = 100;

export interface DashboardApiOptions {
  /** The inventory projection (dashboard.db); fed from committed events. */
  readonly inventory?: Inventory;
}

type Host = Pick<RunningSiem, 'hub' | 'store' | 'subscribeAlerts' | 'subscribeEvents' | 'audit' | 'now'> &
  Partial<Pick<RunningSiem, 'subscribeRevoked' | 'revoked'>>;

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
  // The active decisions change only with the revision: build the quarantine set once per revision
  // (a page of the inventory asks it for every row).
  let cached: { revision: number; set: QuarantineSet } | undefined;
  const quarantined = (): QuarantineSet => {
    const revision = engine.revision;
    if (cached?.revision !== revision) {
      const values = engine
        .active()
        .filter((d) => d.scope.type === 'identity' || d.scope.type === 'node')
        .map((d) => d.scope.value);
      cached = { revision, set: quarantineSet(values) };
    }
    return cached.set;
  };
  // Rolling per-10 s counts: events, and alerts per rule.
  const events = new Map<number, number>();
  const alertsByRule = new Map<string, Map<number, number>>();
  const edges = new Map<string, { from: string; to: string; count: number; last: number }>();
  let sweptAt = -Infinity;
  /** Drops pairs not seen within the window (at most every 10 s); true if that made room. */
  const sweep = (now: number): boolean => {
    if (now - sweptAt < 10_000) return false;
    sweptAt = now;
    for (const [k, e] of edges) if (e.last < now - GRAPH_WINDOW_MS) edges.delete(k);
    return edges.size < MAX_EDGES;
  };
  const bucket = (t: number): number => Math.floor(t / BUCKET_MS) * BUCKET_MS;
  const trim = (m: Map<number, number>): void => {
    const oldest = bucket(siem.now()) - BUCKETS * BUCKET_MS;
    for (const k of m.keys()) if (k < oldest) m.delete(k);
  };

  // The CA's revocations (its CRL, its revocation events) mark the rows whose certificate they name.
  if (o.inventory !== undefined && siem.revoked !== undefined) o.inventory.markRevoked(siem.revoked.list());
  const offRevoked = siem.subscribeRevoked?.((serials) => o.inventory?.markRevoked(serials));
  const offEvents = siem.subscribeEvents((batch: readonly EdgeEvent[]) => {
    o.inventory?.apply(batch);
    const b = bucket(siem.now());
    events.set(b, (events.get(b) ?? 0) + batch.length);
    trim(events);
    const now = siem.now();
    for (const e of batch) {
      const from = e['source.identity'];
      const to = e['destination.identity'];
      if (from === undefined || to === undefined) continue;
      const k = `${from}\u001f${to}`;
      const edge = edges.get(k);
      if (edge) {
        edge.count++;
        edge.last = now;
      } else if (edges.size < MAX_EDGES || sweep(now)) edges.set(k, { from, to, count: 1, last: now });
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
      return siem.store.alerts({ limit, ...(before !== undefined ? { before } : {}) }) as unknown as View[];
    },
    subscribeAlerts(fn) {
      alertFns.add(fn);
      return () => void alertFns.delete(fn);
    },
    inventory(q: InventoryQuery) {
      if (o.inventory === undefined) return { total: 0, items: [] };
      return o.inventory.query(q, quarantined());
    },
    entity(identity: string, limit: number): View {
      const timeline = siem.store.timeline({ entity: 'identity', value: identity, limit });
      const peers = new Set<string>();
      for (const e of timeline) {
        for (const p of [e['source.identity'], e['destination.identity'], e['observer.identity']])
          if (p !== undefined && p !== identity) peers.add(p);
      }
      const alerts = siem.store.alerts({ entity: identity, limit: ENTITY_ALERTS });
      const qs = quarantined();
      return {
        identity,
        ...(o.inventory?.get(identity, qs) ?? {}),
        quarantined: qs.has(identity),
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
      // Newest decisions first; the agents furthest behind first (the ones an analyst looks for).
      const active = engine.active().sort((a, b) => b.revision - a.revision || b.createdAt - a.createdAt);
      const pending = engine.pending().sort((a, b) => b.createdAt - a.createdAt);
      const agents = siem.hub.ledger.list(now).sort((a, b) => b.behind - a.behind || b.lagMs - a.lagMs);
      return {
        revision: siem.hub.revision,
        active: active.slice(0, MAX_LIST).map(decisionView),
        activeTotal: active.length,
        pending: pending.slice(0, MAX_LIST),
        pendingTotal: pending.length,
        agents: agents.slice(0, MAX_LIST).map((a) => ({
          identity: a.identity,
          connected: a.connected,
          revision: a.acked,
          behind: a.behind,
          lagMs: a.lagMs,
        })),
        agentsTotal: agents.length,
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
      const since = siem.now() - GRAPH_WINDOW_MS;
      const list = [...edges.values()]
        .filter((e) => e.last >= since)
        .sort((a, b) => b.count - a.count)
        .slice(0, GRAPH_EDGES)
        .map(({ from, to, count }) => ({ from, to, count }));
      const ids = new Set<string>();
      for (const e of list) {
        ids.add(e.from);
        ids.add(e.to);
      }
      const qs = quarantined();
      return {
        nodes: [...ids].map((id) => ({ id, status: qs.has(id) ? 'quarantined' : 'healthy' })),
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
      offRevoked?.();
      offEvents();
      offAlerts();
      alertFns.clear();
    },
  };
}
