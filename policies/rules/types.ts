// Compiled rules: what the rule parser produces and the correlation engine (siem/correlate) runs.
import type { EdgeEvent } from '../../common/events.js';

export type Level = 'informational' | 'low' | 'medium' | 'high' | 'critical';
export const LEVELS: readonly Level[] = ['informational', 'low', 'medium', 'high', 'critical'];

export type CorrelationType =
  | 'event_count'
  | 'value_count'
  | 'temporal'
  | 'temporal_ordered'
  | 'value_sum'
  | 'value_avg'
  | 'value_percentile';
export const CORRELATION_TYPES: readonly CorrelationType[] = [
  'event_count',
  'value_count',
  'temporal',
  'temporal_ordered',
  'value_sum',
  'value_avg',
  'value_percentile',
];

export type CompareOp = 'gt' | 'gte' | 'lt' | 'lte' | 'eq' | 'neq';

/** One criterion of a correlation condition; a range is several, all of which must hold. */
export interface Criterion {
  readonly op: CompareOp;
  readonly value: number;
}

export interface RuleTest {
  readonly name: string;
  /** How many alerts of this rule the events must raise (0 for a near miss). */
  readonly expect: number;
  /** Expanded, schema-validated events in feed order. */
  readonly events: readonly EdgeEvent[];
}

interface RuleBase {
  readonly id: string;
  /** Sigma `name`, by which correlations may refer to a rule (the id works too). */
  readonly name: string | undefined;
  readonly title: string;
  readonly description: string;
  readonly level: Level;
  /** Alerts of the same rule and group within this many ms of the last one are suppressed. */
  readonly suppressMs: number;
  readonly tests: readonly RuleTest[];
  /** Where the rule was defined: `file#document`. */
  readonly source: string;
}

export interface DetectionRule extends RuleBase {
  readonly kind: 'detection';
  readonly match: (e: EdgeEvent) => boolean;
  /** Values of `event.action` (lower case) the rule can possibly match, or null for any (the index). */
  readonly actions: ReadonlySet<string> | null;
  /**
   * Constant predicates the rule requires: field -> values (lower-case text), one of which the
   * event's field must hold (event.action, a pipeline's logsource conditions, any plain equality
   * every match needs). The engine evaluates a rule only on events its index admits.
   */
  readonly index: ReadonlyMap<string, ReadonlySet<string>>;
  /** Raise an alert per matching event (false for base rules of a correlation, as in Sigma). */
  readonly generate: boolean;
  /** Fields that key suppression of this rule's own alerts (empty: one key for the rule). */
  readonly suppressBy: readonly string[];
}

export interface CorrelationRule extends RuleBase {
  readonly kind: 'correlation';
  readonly type: CorrelationType;
  /**
   * Ids of the rules correlated (detection rules, or correlations for a chain), in order (the
   * order matters for temporal_ordered).
   */
  readonly rules: readonly string[];
  /** Group-by names: event fields, or aliases. */
  readonly groupBy: readonly string[];
  /** Per referenced rule id, the event field read for each group-by name (aliases resolved). */
  readonly groupFields: ReadonlyMap<string, readonly string[]>;
  readonly timespanMs: number;
  /** All must hold: the measure (events, distinct values, rules, sum, average, percentile). */
  readonly condition: readonly Criterion[];
  /** value_count and the value_* metrics: the field(s) measured (value_count: tuples of them). */
  readonly fields: readonly string[];
  /** value_percentile: which percentile (0..100) of the field is compared. */
  readonly percentile: number;
  /** Raise alerts of its own (false when only a chain's outer correlation should). */
  readonly generate: boolean;
}

export type Rule = DetectionRule | CorrelationRule;

export interface RuleSet {
  readonly detections: readonly DetectionRule[];
  readonly correlations: readonly CorrelationRule[];
}
