// Correlator alerts for tests that store, index or act on them without running the correlator.
import type { EdgeEvent } from '../../common/events.js';
import type { Alert } from '../../siem/correlate/index.js';

export interface AlertShape {
  readonly ruleId?: string;
  readonly count?: number;
  /** The event that completed the alert (default: a bare one at `time`). */
  readonly trigger?: EdgeEvent;
}

/** An event_count alert grouped by `groupBy`, at `time`. */
export function alertOf(
  id: string,
  time: number,
  groupBy: Record<string, string>,
  o: AlertShape = {},
): Alert {
  return {
    id,
    ruleId: o.ruleId ?? 'r-x',
    title: 't',
    level: 'high',
    type: 'event_count',
    time,
    windowStart: time,
    groupBy,
    count: o.count ?? 1,
    values: [],
    events: [],
    trigger: o.trigger ?? { '@timestamp': time, 'event.action': 'x' },
  };
}
