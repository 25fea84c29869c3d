// What the correlation engine emits and how it is tuned. Plain data: alerts go to the store, the
// playbooks and the dashboard unchanged.
import type { EdgeEvent } from '../../common/events.js';
import type { CorrelationType, Level } from '../../policies/rules/index.js';

export interface Alert {
  /** Deterministic: the same rule, group and match give the same id (idempotent re-feeds). */
  readonly id: string;
  readonly ruleId: string;
  readonly title: string;
  readonly level: Level;
  readonly type: 'detection' | CorrelationType;
  /** Event time at which the match completed (end of the window). */
  readonly time: number;
  /** Event time of the earliest event of the match. */
  readonly windowStart: number;
  /** Group-by field values of the match (detection rules: their suppress-by fields). */
  readonly groupBy: Readonly<Record<string, string>>;
  /** event_count: events in the window; value_count: distinct values; temporal_ordered: steps. */
  readonly count: number;
  /** value_count: up to 20 of the distinct values. */
  readonly values: readonly string[];
  /** `event.id`s behind the alert (up to maxAlertEvents, the latest ones) when events carry ids. */
  readonly events: readonly string[];
  /** The event that completed the match. */
  readonly trigger: EdgeEvent;
  /**
   * The reporters (`observer.identity`) of the events behind the alert, up to 64: the evidence's
   * provenance, and whose automatic-decision budget the response may spend ('' for events that
   * carry no observer, such as rule tests).
   */
  readonly reporters?: readonly string[];
  /**
   * Of `reporters`, those whose own events behind the alert satisfy its rule without anyone
   * else's: the alert is theirs alone, and charged as such; when none is, it is a joint alert
   * (docs/rules.md, "Blast-radius budgets").
   */
  readonly alone?: readonly string[];
}

/**
 * Hands on an inner correlation's alert (as an event of its outer correlation) whose outer group
 * another shard keeps: `route` is the outer rule id and group key as `routes` spells them.
 */
export type ChainForward = (route: string, inner: string, event: EdgeEvent) => void;

export interface CorrelatorOptions {
  /** How far behind the newest event time an event may arrive and still be correlated (ms). */
  readonly latenessMs?: number;
  /** Cap on live group keys per correlation rule; the least recently updated key is evicted. */
  readonly maxGroupsPerRule?: number;
  /** Cap on buffered events per group key; the oldest are dropped beyond it. */
  readonly maxEntriesPerGroup?: number;
  /** Cap on buffered events over all keys of one rule; least recently updated keys are evicted. */
  readonly maxEntriesPerRule?: number;
  /**
   * Cap on live group keys per correlation rule that one reporter's events created; beyond it
   * that reporter's own least recently updated key is evicted, never another reporter's.
   */
  readonly maxGroupsPerReporter?: number;
  /**
   * Cap on buffered events per correlation rule (count, temporal or temporal_ordered) from one
   * reporter's events; beyond it
   * that reporter's own least recently updated key is evicted (and with none, its event is not
   * correlated), never another reporter's.
   */
  readonly maxEntriesPerReporter?: number;
  /** How many event ids an alert carries at most. */
  readonly maxAlertEvents?: number;
  /**
   * How far past its `event.ingested` time an event may move the newest-time watermark (ms).
   * Events without `event.ingested` (tests, replays) move it to their own time.
   */
  readonly maxLeadMs?: number;
}

export interface CorrelatorStats {
  events: number;
  /** Events older than the lateness bound: stored, matched by detection rules, not correlated. */
  late: number;
  alerts: number;
  suppressed: number;
  evictedGroups: number;
  /** Of those, evicted because their reporter was at its own cap (maxGroupsPerReporter). */
  evictedByReporter: number;
  droppedEntries: number;
  /** Events not correlated because their reporter held its whole maxEntriesPerReporter. */
  refusedByReporter: number;
  /** Current live group keys over all rules. */
  groups: number;
  /** Newest event time seen. */
  maxTime: number;
}

export const DEFAULT_OPTIONS: Required<CorrelatorOptions> = {
  latenessMs: 60_000,
  maxGroupsPerRule: 50_000,
  maxEntriesPerGroup: 2_048,
  maxEntriesPerRule: 500_000,
  maxGroupsPerReporter: 10_000,
  maxEntriesPerReporter: 100_000,
  maxAlertEvents: 20,
  maxLeadMs: 5_000,
};
