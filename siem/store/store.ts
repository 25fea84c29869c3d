// The SIEM's storage interface, owned by the domain. SQLite (sqlite-store.ts) is one adapter;
// a PostgreSQL one would implement the same interface.
import type { Decision } from '../../common/decisions.js';
import type { EdgeEvent } from '../../common/events.js';
import type { Alert } from '../correlate/index.js';
import type { PendingDecision, ResponseState } from '../playbooks/index.js';

/** Entities with a per-entity timeline (each backed by an index). */
export type TimelineEntity = 'source.identity' | 'destination.identity' | 'identity' | 'source.ip' | 'serial';

export interface TimelineQuery {
  readonly entity: TimelineEntity;
  readonly value: string;
  /** Epoch ms, inclusive. */
  readonly since?: number;
  /** Epoch ms, exclusive. */
  readonly until?: number;
  /** At most this many, newest first (default 100, at most 10,000). */
  readonly limit?: number;
}

export interface AlertQuery {
  /** Epoch ms, inclusive. */
  readonly since?: number;
  /** Epoch ms, exclusive: the next page of a newest-first list. */
  readonly before?: number;
  readonly ruleId?: string;
  /**
   * Alerts about one entity: one of its group-by values (identity, address, serial) or the
   * source identity of the event that completed it. Served by an index, whatever the alert's age.
   */
  readonly entity?: string;
  /** At most this many, newest first (default 100, at most 10,000). */
  readonly limit?: number;
}

/** An analyst's triage of an alert: who set it and when (epoch ms). New alerts have none. */
export interface AlertStatus {
  readonly status: 'acknowledged' | 'closed';
  readonly by: string;
  readonly at: number;
}

/** Decision changes of one revision, written atomically with the new revision number. */
export interface DecisionChanges {
  readonly revision: number;
  readonly upserts: readonly Decision[];
  readonly removals: readonly string[];
  /** When the removals happened (lift or expiry). */
  readonly at: number;
  /** The full pending list after the change (small: capped by the response engine). */
  readonly pending: readonly PendingDecision[];
}

export interface SiemStore {
  /** Inserts events in one transaction; every event must carry `event.id`. Durable on return. */
  insertEvents(events: readonly EdgeEvent[]): void;
  insertAlerts(alerts: readonly Alert[]): void;
  timeline(q: TimelineQuery): EdgeEvent[];
  /** One event by its SIEM-assigned id (alerts list the ids behind them). */
  event(id: string): EdgeEvent | undefined;
  /**
   * Every stored event with one of `actions` reported by `observer`, in ingest order, a page at a
   * time (rebuilding a projection such as the dashboard inventory).
   */
  scanEvents(q: { actions: readonly string[]; observer: string }, fn: (e: EdgeEvent) => void): void;
  /** Every identity that reported stored events, with the time of its newest one. */
  reporters(): { identity: string; lastSeen: number }[];
  alerts(q?: AlertQuery): Alert[];
  /** Records an analyst's triage of a stored alert (the latest one wins). */
  setAlertStatus(id: string, status: AlertStatus): void;
  /** The triage of each of `ids` that has one. */
  alertStatuses(ids: readonly string[]): Map<string, AlertStatus>;
  countEvents(): number;
  saveDecisionChanges(c: DecisionChanges): void;
  /** Active decisions, pending ones and the last revision, to restore the response engine. */
  loadResponseState(): ResponseState;
  /** Decision history (active and removed), newest first. */
  decisionHistory(limit?: number): (Decision & { readonly removedAt: number | null })[];
  /** Deletes at most `batch` events (and alerts) older than `cutoff`; returns how many. */
  pruneOlderThan(cutoff: number, batch?: number): number;
  close(): void;
}
