// An entity's timeline grouped the way an analyst triages it: one row per kind of event (its
// action and outcome) and cause (its reason or error code), with how many, when first and last,
// from where and reported by whom; each row expands to its events. Pure: events in, groups out.
import type { EdgeEvent } from '../../common/events.js';

/** Most groups in one answer; the rest are counted in `otherEvents`. */
export const MAX_GROUPS = 100;
/** Distinct sources and reporters named per group (the rest are counted). */
const MAX_NAMES = 5;
/** Longest cause kept (event fields are written by whoever reports them). */
const MAX_CAUSE = 300;

export interface TimelineGroup {
  readonly action: string;
  readonly outcome: string | null;
  readonly category: string | null;
  /** Why: the event's reason, error code or attestation reason; null when it gives none. */
  readonly cause: string | null;
  readonly count: number;
  readonly first: number;
  readonly last: number;
  /** Up to 5 sources (identity, else address), most frequent first; `sourcesTotal` counts all. */
  readonly sources: readonly string[];
  readonly sourcesTotal: number;
  readonly reporters: readonly string[];
  readonly reportersTotal: number;
  /** Indexes of the group's events in the timeline given, newest first. */
  readonly events: readonly number[];
}

export interface GroupedTimeline {
  readonly groups: readonly TimelineGroup[];
  /** Events in groups past MAX_GROUPS (not listed). */
  readonly otherEvents: number;
}

const causeOf = (e: EdgeEvent): string | null => {
  const c = e['event.reason'] ?? e['error.code'] ?? e['attestation.reason'];
  return typeof c === 'string' && c !== '' ? c.slice(0, MAX_CAUSE) : null;
};

function top(counts: ReadonlyMap<string, number>): string[] {
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, MAX_NAMES)
    .map(([k]) => k);
}

interface Building {
  action: string;
  outcome: string | null;
  category: string | null;
  cause: string | null;
  first: number;
  last: number;
  sources: Map<string, number>;
  reporters: Map<string, number>;
  events: number[];
}

/**
 * Groups a timeline (newest first, as the store answers it) by action, outcome and cause; the
 * group with the newest event first, ties by size.
 */
export function groupTimeline(events: readonly EdgeEvent[]): GroupedTimeline {
  const groups = new Map<string, Building>();
  events.forEach((e, i) => {
    const action = e['event.action'];
    const outcome = e['event.outcome'] ?? null;
    const cause = causeOf(e);
    const key = JSON.stringify([action, outcome, cause]);
    let g = groups.get(key);
    const t = e['@timestamp'];
    if (g === undefined) {
      g = {
        action,
        outcome,
        category: (e['event.category'] as string | undefined) ?? null,
        cause,
        first: t,
        last: t,
        sources: new Map(),
        reporters: new Map(),
        events: [],
      };
      groups.set(key, g);
    }
    g.events.push(i);
    if (t < g.first) g.first = t;
    if (t > g.last) g.last = t;
    const source = e['source.identity'] ?? e['source.ip'];
    if (source !== undefined) g.sources.set(source, (g.sources.get(source) ?? 0) + 1);
    const reporter = e['observer.identity'];
    if (reporter !== undefined) g.reporters.set(reporter, (g.reporters.get(reporter) ?? 0) + 1);
  });
  const sorted = [...groups.values()].sort((a, b) => b.last - a.last || b.events.length - a.events.length);
  const shown = sorted.slice(0, MAX_GROUPS);
  return {
    groups: shown.map((g) => ({
      action: g.action,
      outcome: g.outcome,
      category: g.category,
      cause: g.cause,
      count: g.events.length,
      first: g.first,
      last: g.last,
      sources: top(g.sources),
      sourcesTotal: g.sources.size,
      reporters: top(g.reporters),
      reportersTotal: g.reporters.size,
      events: g.events,
    })),
    otherEvents: sorted.slice(MAX_GROUPS).reduce((n, g) => n + g.events.length, 0),
  };
}
