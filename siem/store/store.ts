// The SIEM's storage interfaces, owned by the domain: the store (alerts, decisions, audit,
// timelines, every read), the event writer (ingested events), and the dashboard's stores (users,
// sessions, the inventory projection) and the decision stream's acknowledgement ledger. Every
// method answers a Promise, so an adapter may sit on a server shared by several SIEM replicas.
// SQLite (sqlite-store.ts, event-writer.ts, sqlite-dashboard.ts) is one adapter; each interface's
// behaviour is pinned by test/contracts/siem-store.contract.ts, which every adapter must pass.
import type { Decision } from '../../common/decisions.js';
import type { EdgeEvent } from '../../common/events.js';
import type { Alert } from '../correlate/index.js';
import type { PendingDecision, ResponseState } from '../playbooks/index.js';
import type { InventoryQuery, View } from '../dashboard/api.js';
import type { InventoryEvidence, QuarantineSet } from '../dashboard/inventory.js';
import type { Role } from '../dashboard/users.js';

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

/** Counts per time bucket over `since <= t < until`; buckets start at multiples of `bucketMs`. */
export interface CountQuery {
  readonly since: number;
  readonly until: number;
  /** 1 s to 1 day, and at most MAX_COUNT_BUCKETS buckets in the range (a TypeError otherwise). */
  readonly bucketMs: number;
}

/** Most buckets one count query answers, and most rules an alert count names. */
export const MAX_COUNT_BUCKETS = 1000;
export const MAX_COUNT_RULES = 50;

/** Checks a CountQuery (our own misuse is a TypeError). */
export function checkCountQuery(q: CountQuery): void {
  const ok =
    Number.isInteger(q.since) &&
    Number.isInteger(q.until) &&
    Number.isInteger(q.bucketMs) &&
    q.bucketMs >= 1000 &&
    q.bucketMs <= 86_400_000 &&
    q.until > q.since &&
    (q.until - q.since) / q.bucketMs <= MAX_COUNT_BUCKETS;
  if (!ok)
    throw new TypeError('count query: integer since < until, bucketMs 1 s..1 d, at most 1,000 buckets');
}

/**
 * The SIEM's store. Writes are durable when their promise resolves; a failed write rejects with
 * ERR_SIEM_STORE (its `cause` the adapter's error) and changes nothing. Reads see every write
 * that resolved before they were made, on any handle of the same store (another replica's too).
 */
export interface SiemStore {
  /**
   * Inserts events in one transaction; every event must carry `event.id` (a TypeError otherwise,
   * nothing stored). Durable on return. The same id twice is stored twice (ids are unique by
   * construction); `event(id)` then answers either.
   */
  insertEvents(events: readonly EdgeEvent[]): Promise<void>;
  /** Inserts alerts in one transaction; an alert whose id is stored already is left as it is. */
  insertAlerts(alerts: readonly Alert[]): Promise<void>;
  /**
   * One entity's events, newest first (by `@timestamp`, then by insertion, later first), with
   * `since <= @timestamp < until`, at most `limit` (1..10,000, default 100). `identity` matches
   * the source or the destination identity. A value longer than 2,048 characters finds nothing;
   * an unknown entity is a TypeError.
   */
  timeline(q: TimelineQuery): Promise<EdgeEvent[]>;
  /** One event by its SIEM-assigned id (alerts list the ids behind them). */
  event(id: string): Promise<EdgeEvent | undefined>;
  /**
   * Every stored event with one of `actions` reported by `observer` (`observer.identity`), in
   * ingest order, a page at a time (rebuilding a projection such as the dashboard inventory).
   * When `fn` returns a promise, the next event waits for it.
   */
  scanEvents(
    q: { actions: readonly string[]; observer: string },
    fn: (e: EdgeEvent) => unknown,
  ): Promise<void>;
  /** Every identity that reported stored events (`observer.identity`), with its newest `@timestamp`. */
  reporters(): Promise<{ identity: string; lastSeen: number }[]>;
  /** Alerts newest first (by `time`), filtered as AlertQuery says. */
  alerts(q?: AlertQuery): Promise<Alert[]>;
  /** Records an analyst's triage of a stored alert (the latest one wins). */
  setAlertStatus(id: string, status: AlertStatus): Promise<void>;
  /** The triage of each of `ids` that has one. */
  alertStatuses(ids: readonly string[]): Promise<Map<string, AlertStatus>>;
  countEvents(): Promise<number>;
  /** Stored events per bucket of `@timestamp`: the non-empty buckets, oldest first. */
  eventCounts(q: CountQuery): Promise<{ bucket: number; count: number }[]>;
  /**
   * Stored alerts per rule and bucket of `time`: the non-empty buckets, oldest first, of at most
   * MAX_COUNT_RULES rules (those with the most alerts in the range).
   */
  alertCounts(q: CountQuery): Promise<{ rule: string; bucket: number; count: number }[]>;
  /**
   * Writes one revision atomically: upserts (a stored decision with the same id is replaced and
   * is active again), removals (active decisions marked removed at `at`; unknown or removed ids
   * change nothing), the revision number, and the pending list, which replaces the stored one.
   * Calls come in revision order, one at a time, from one writer (the decision hub serialises
   * them; replicas must agree on one hub that writes decisions).
   */
  saveDecisionChanges(c: DecisionChanges): Promise<void>;
  /**
   * The last saved revision, read cheaply, for an adapter that several SIEM replicas share (the
   * decision hub follows the others' changes by it); such an adapter refuses a save that does not
   * move the stored revision forward with ERR_SIEM_REVISION_CONFLICT. Absent: one process only.
   */
  revision?(): Promise<number>;
  /**
   * Active decisions (ascending revision), the pending list (in the order last saved) and the
   * last saved revision (0 when none), to restore the response engine.
   */
  loadResponseState(): Promise<ResponseState>;
  /**
   * Decision history (active and removed), newest revision first (one revision's decisions in any
   * order), at most `limit` (default 100).
   */
  decisionHistory(limit?: number): Promise<(Decision & { readonly removedAt: number | null })[]>;
  /**
   * Deletes at most `batch` (1..100,000, default 5,000) events with `@timestamp < cutoff`, oldest
   * first, and, when fewer events were left, alerts with `time < cutoff` (with their triage) up
   * to the rest of the batch; returns how many were deleted in all.
   */
  pruneOlderThan(cutoff: number, batch?: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * A reporter's name for one batch (its `Edgeward-Batch-Id`), scoped to the reporter's verified
 * identity: the same id from another reporter names another batch.
 */
export interface BatchKey {
  readonly reporter: string;
  /** 32 lowercase hex digits (checked at the HTTP boundary). */
  readonly id: string;
  /** When the SIEM accepted the batch (epoch ms): what the keys' retention counts from. */
  readonly at: number;
}

/**
 * Batch keys are kept at least BATCH_KEY_RETENTION_MS after they were stored and, per reporter,
 * only the newest BATCH_KEYS_PER_REPORTER of them (older ones are pruned by the writer, about
 * once every BATCH_KEY_PRUNE_MS): a batch resent later than that is stored again.
 */
export const BATCH_KEY_RETENTION_MS = 7 * 86_400_000;
export const BATCH_KEYS_PER_REPORTER = 1000;
export const BATCH_KEY_PRUNE_MS = 60_000;

/** What a write did with one batch. */
export interface BatchOutcome {
  /** True: its key was stored before (by this or another replica) and nothing was stored now. */
  readonly duplicate: boolean;
  /** Events stored under the batch: now, or (a duplicate) when its key was first stored. */
  readonly accepted: number;
}

/**
 * One batch of ingested events as the writer takes it, made by `EventWriter.prepare` on the
 * calling thread when the batch is accepted (an adapter may attach its own encoding to it).
 */
export interface EventBatch {
  readonly events: readonly EdgeEvent[];
  readonly key?: BatchKey;
}

/**
 * The ingest path's writer: events of accepted batches, committed in group transactions. Writes
 * are committed in the order they were given, and a write resolves only once its transaction is
 * committed (durable, as SiemStore.insertEvents); the events are then read back by the store.
 */
export interface EventWriter {
  /**
   * Checks one batch (every event carries `event.id`, else a TypeError) and prepares it for
   * `write`, on the calling thread, at once: its cost is paid while an earlier group commits.
   */
  prepare(events: readonly EdgeEvent[], key?: BatchKey): EventBatch;
  /**
   * Commits the batches in one transaction; resolves once committed, rejects with ERR_SIEM_STORE.
   * A batch with a key is stored only if its key is not stored yet (the key is stored in the same
   * transaction as its events, unique per reporter, so two replicas racing on one key store it
   * once); the outcomes say, in order, which were stored and which were duplicates.
   */
  write(batches: readonly EventBatch[]): Promise<BatchOutcome[]>;
  /** Commits what was given, then closes; later writes reject with ERR_SIEM_UNAVAILABLE. */
  close(): Promise<void>;
  /**
   * Stops at once, as a crash would: writes not yet answered are rejected (never acknowledged),
   * and the next write starts again (crash tests; optional).
   */
  abort?(): Promise<void>;
}

/** One sample of an adapter's own metric (the composition root renders it on /metrics). */
export interface StoreMetric {
  /** Prometheus name, `edgeward_siem_` first. The same name always has the same help and type. */
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly labels?: Readonly<Record<string, string>>;
  readonly value: number;
}

// ---- the decision stream's acknowledgement ledger ----

/** Acknowledgements kept in an agent's history, to say when it applied a recent revision. */
export const ACK_HISTORY = 32;

/** What the ledger keeps of one agent: its last acknowledgement and when it applied recent revisions. */
export interface AckRecord {
  readonly identity: string;
  /** Last acknowledged revision and when (epoch ms). */
  readonly acked: number;
  readonly ackedAt: number;
  /**
   * [revision, at] of each acknowledgement that raised `acked`, oldest first, the newest
   * ACK_HISTORY only.
   */
  readonly history: readonly (readonly [number, number])[];
}

/** Which revision each agent acknowledged, shared by every replica (live connections are per process). */
export interface AckStore {
  /**
   * Records an acknowledgement: `acked` and `ackedAt` become these (a lower revision too: the
   * agent went back); a revision above the previous `acked` (or the first one) joins the history,
   * whose oldest entries beyond ACK_HISTORY are dropped.
   */
  ack(identity: string, revision: number, at: number): Promise<void>;
  /** Every agent's record, by identity ascending, at most `limit` (default 100,000). */
  list(limit?: number): Promise<AckRecord[]>;
  /**
   * Replaces what replica `replica` said of the agents holding its decision streams (open
   * connections by identity) with `connected`, at `at` (epoch ms). A store shared by replicas
   * has it; a store of one process does not need it.
   */
  setPresence?(replica: string, connected: ReadonlyMap<string, number>, at: number): Promise<void>;
  /** The other replicas' open connections by identity, summed, from what they said since `since`. */
  presence?(except: string, since: number): Promise<Map<string, number>>;
}

// ---- the dashboard's stores ----

/** A dashboard user as stored: the password hash is made and checked by siem/dashboard/users.ts. */
export interface UserRecord {
  readonly name: string;
  readonly role: Role;
  /** The encoded scrypt hash (opaque to the store). */
  readonly hash: string;
  readonly createdAt: number;
}

export interface UserStore {
  /** Adds a user; false (nothing changed) when the name exists. */
  insert(u: UserRecord): Promise<boolean>;
  /** The user of this name, or undefined. Names are compared exactly. */
  get(name: string): Promise<UserRecord | undefined>;
  /** Every user's name and role, by name ascending. */
  list(): Promise<{ name: string; role: Role }[]>;
}

/**
 * A dashboard session as stored. `key` is the SHA-256 (hex) of the cookie's session id, never the
 * id itself (siem/dashboard/sessions.ts hashes it); the CSRF token is checked against `csrf`.
 */
export interface SessionRecord {
  readonly key: string;
  readonly user: string;
  readonly role: Role;
  readonly csrf: string;
  readonly createdAt: number;
  readonly lastSeen: number;
}

/**
 * Live dashboard sessions, shared by every replica: a session made on one is valid on another.
 * Expiry is decided by siem/dashboard/sessions.ts; the store keeps, finds and deletes.
 */
export interface SessionStore {
  /** Stores a new session; when `max` are stored, the ones created earliest go first to make room. */
  insert(s: SessionRecord, max: number): Promise<void>;
  get(key: string): Promise<SessionRecord | undefined>;
  /** Sets a stored session's `lastSeen` (only ever later). */
  touch(key: string, lastSeen: number): Promise<void>;
  delete(key: string): Promise<void>;
  /** Deletes sessions with `lastSeen < idleBefore` or `createdAt < createdBefore`; returns how many. */
  sweep(idleBefore: number, createdBefore: number): Promise<number>;
}

/**
 * The dashboard inventory of nodes and devices, a projection of ingested events: the rules of
 * what each event changes are in siem/dashboard/inventory.ts (the SQLite adapter, `Inventory`),
 * and an adapter must answer exactly as it does (test/contracts/siem-store.contract.ts).
 */
export interface InventoryStore {
  /** True when the projection came from an older version and waits for `rebuild`. */
  needsRebuild(): Promise<boolean>;
  /** Updates the projection from a batch of validated events (one transaction). */
  apply(events: readonly EdgeEvent[]): Promise<void>;
  /** Rebuilds the projection from the stored evidence (one transaction), then marks it current. */
  rebuild(evidence: InventoryEvidence, trustDomain: string): Promise<void>;
  /** Marks the rows whose current certificate is among these revoked serials; returns how many. */
  markRevoked(serials: readonly string[]): Promise<number>;
  /** One page (by identity ascending), with status joined from the quarantine set. */
  query(q: InventoryQuery, quarantined: QuarantineSet): Promise<{ total: number; items: View[] }>;
  get(identity: string, quarantined: QuarantineSet): Promise<View | undefined>;
  /** The row whose current certificate has this (canonical) serial. */
  bySerial(serial: string, quarantined: QuarantineSet): Promise<View | undefined>;
}
