// Compiled rules: what the rule parser produces and the correlation engine (siem/correlate) runs.
import type { EdgeEvent, EventField } from '../../common/events.js';

export type Level = 'informational' | 'low' | 'medium' | 'high' | 'critical';
export const LEVELS: readonly Level[] = ['informational', 'low', 'medium', 'high', 'critical'];

export type CorrelationType = 'event_count' | 'value_count' | 'temporal_ordered';

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
}

export interface DetectionRule extends RuleBase {
  readonly kind: 'detection';
  readonly match: (e: EdgeEvent) => boolean;
  /** Values of `event.action` the rule can possibly match, or null for any (used to index rules). */
  readonly actions: ReadonlySet<string> | null;
  /** Raise an alert per matching event (false for base rules of a correlation, as in Sigma). */
  readonly generate: boolean;
  /** Fields that key suppression of this rule's own alerts (empty: one key for the rule). */
  readonly suppressBy: readonly EventField[];
}

export interface CorrelationRule extends RuleBase {
  readonly kind: 'correlation';
  readonly type: CorrelationType;
  /** Ids of the detection rules correlated, in order (the order matters for temporal_ordered). */
  readonly rules: readonly string[];
  readonly groupBy: readonly EventField[];
  readonly timespanMs: number;
  /** event_count: number of events; value_count: number of distinct `field` values. */
  readonly threshold: { readonly op: 'gt' | 'gte'; readonly value: number };
  readonly field: EventField | undefined;
}

export type Rule = DetectionRule | CorrelationRule;

export interface RuleSet {
  readonly detections: readonly DetectionRule[];
  readonly correlations: readonly CorrelationRule[];
}
