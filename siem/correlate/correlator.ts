// The correlation engine: a pure, event-time state machine. feed(events) returns the alerts they
// complete. Windows are half-open, (end - timespan, end]; docs/rules.md states every semantic.
import { createHash } from 'node:crypto';
import type { EdgeEvent } from '../../common/events.js';
import {
  MAX_THRESHOLD,
  type CorrelationRule,
  type Criterion,
  type DetectionRule,
  type RuleSet,
} from '../../policies/rules/index.js';
import {
  DEFAULT_OPTIONS,
  type Alert,
  type ChainForward,
  type CorrelatorOptions,
  type CorrelatorStats,
} from './types.js';

type Rec = Readonly<Record<string, string | number | undefined>>;
const SEP = '\u001f';
const MAX_ALERT_VALUES = 20;
/** Distinct reporters an alert names at most. */
const MAX_ALERT_REPORTERS = 64;

/** Buffered events of one group key of an event_count / value_count rule, sorted by time. */
interface CountGroup {
  /** The reporter whose event created the group (its per-reporter cap counts it). */
  readonly owner: string;
  ts: number[];
  ids: (string | undefined)[];
  /** The reporter (observer.identity) of each entry. */
  obs: string[];
  vs: string[];
  /** value_sum / value_avg / value_percentile: the measured number of each entry. */
  ns: number[];
  head: number;
  /** value_count: counts of values at indices [tailLo, length), the window ending at the newest. */
  tailLo: number;
  tail: Map<string, number> | null;
  lastAlert: number;
  /** The reporters whose evidence alone raised an alert of this group within the suppression. */
  lastAlone: readonly string[];
}

interface SeqGroup {
  readonly owner: string;
  steps: { ts: number[]; ids: (string | undefined)[]; obs: string[] }[];
  lastAlert: number;
}

interface CorrState {
  readonly rule: CorrelationRule;
  readonly groups: Map<string, CountGroup | SeqGroup>;
  /** The keys each reporter created, least recently updated first. */
  readonly owners: Map<string, Set<string>>;
  /** Entries buffered in the rule's groups per reporter of the event (reporters with any). */
  readonly held: Map<string, number>;
  entries: number;
}

const observerOf = (e: EdgeEvent): string => e['observer.identity'] ?? '';

/** Whether a measure satisfies every criterion of a correlation condition (a range is several). */
export function holds(condition: readonly Criterion[], x: number): boolean {
  for (const c of condition) {
    const v = c.value;
    const ok =
      c.op === 'gt'
        ? x > v
        : c.op === 'gte'
          ? x >= v
          : c.op === 'lt'
            ? x < v
            : c.op === 'lte'
              ? x <= v
              : c.op === 'eq'
                ? x === v
                : x !== v;
    if (!ok) return false;
  }
  return true;
}

/** True when the condition only asks for "at least": a window that grows can only start holding. */
function monotone(condition: readonly Criterion[]): boolean {
  return condition.every((c) => c.op === 'gt' || c.op === 'gte');
}

const NUMERIC_TEXT = /^\s*-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$/;
function numberOf(x: unknown): number | null {
  if (typeof x === 'number') return Number.isFinite(x) ? x : null;
  if (typeof x === 'string' && NUMERIC_TEXT.test(x)) return Number(x);
  return null;
}

/** value_sum / value_avg / value_percentile over ns[lo, hi). Percentiles interpolate linearly. */
function metric(
  type: CorrelationRule['type'],
  p: number,
  ns: readonly number[],
  lo: number,
  hi: number,
): number {
  if (type === 'value_percentile') {
    const xs = ns.slice(lo, hi).sort((a, b) => a - b);
    if (xs.length === 0) return NaN;
    const r = (p / 100) * (xs.length - 1);
    const a = Math.floor(r);
    const b = Math.ceil(r);
    return (xs[a] as number) + ((xs[b] as number) - (xs[a] as number)) * (r - a);
  }
  let sum = 0;
  for (let k = lo; k < hi; k++) sum += ns[k] as number;
  return type === 'value_avg' ? (hi > lo ? sum / (hi - lo) : NaN) : sum;
}

/** A scalar as group or counted value text; null when absent or null. */
function valueText(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/** Distinct reporters of obs[lo, hi), newest first, at most MAX_ALERT_REPORTERS. */
function reportersIn(obs: readonly string[], lo: number, hi: number, into = new Set<string>()): Set<string> {
  for (let k = hi - 1; k >= lo && into.size < MAX_ALERT_REPORTERS; k--) into.add(obs[k] as string);
  return into;
}

/**
 * The reporters of window [lo, hi) whose own events there satisfy the condition without anyone
 * else's ("at least" conditions only: for others, only a window with a single reporter counts).
 * `reporters` is every reporter of the window. Computed when an alert is raised, never per event.
 */
function aloneIn(
  rule: CorrelationRule,
  g: CountGroup,
  lo: number,
  hi: number,
  reporters: ReadonlySet<string>,
): string[] {
  if (reporters.size === 1) return [...reporters];
  return [...reporters].filter((r) => raisesAlone(rule, g, lo, hi, r));
}

/**
 * Whether reporter r's own events in window [lo, hi) satisfy the condition: counted for "at least"
 * conditions, for others only when every event of the window is r's.
 */
function raisesAlone(rule: CorrelationRule, g: CountGroup, lo: number, hi: number, r: string): boolean {
  if (!monotone(rule.condition)) {
    for (let k = lo; k < hi; k++) if (g.obs[k] !== r) return false;
    return true;
  }
  let measure: number;
  if (rule.type === 'value_count') {
    const seen = new Set<string>();
    for (let k = lo; k < hi; k++) if (g.obs[k] === r) seen.add(g.vs[k] as string);
    measure = seen.size;
  } else if (rule.type === 'event_count') {
    measure = 0;
    for (let k = lo; k < hi; k++) if (g.obs[k] === r) measure++;
  } else {
    const ns: number[] = [];
    for (let k = lo; k < hi; k++) if (g.obs[k] === r) ns.push(g.ns[k] as number);
    measure = metric(rule.type, rule.percentile, ns, 0, ns.length);
  }
  return holds(rule.condition, measure);
}

interface Feed {
  readonly corr: CorrState;
  /** The step(s) of the correlation's rule list this rule fills. */
  readonly steps: readonly number[];
  /** The event fields read for the group-by names, for this rule (aliases resolved). */
  readonly fields: readonly string[];
}

interface Target {
  readonly det: DetectionRule;
  /** Position in the rule set, to keep alerts in rule order whatever the index returns. */
  readonly ord: number;
  /** Correlations fed by this detection rule. */
  readonly feeds: readonly Feed[];
}

/** Fields that take few values: an index on one of them narrows little. */
const CATEGORICAL = new Set([
  'event.action',
  'event.kind',
  'event.category',
  'event.type',
  'event.outcome',
  'event.module',
  'event.dataset',
  'network.transport',
  'network.direction',
  'network.protocol',
]);

/**
 * The field a rule is indexed by: its most selective constant predicate, a field that takes many
 * values (the fewest rule values first), else event.action, else another categorization field.
 */
function indexKey(index: ReadonlyMap<string, ReadonlySet<string>>): string | null {
  let best: string | null = null;
  let bestRank = Infinity;
  for (const [f, vs] of index) {
    if (vs.size === 0) continue;
    const rank = (CATEGORICAL.has(f) ? (f === 'event.action' ? 1e6 : 2e6) : 0) + vs.size;
    if (rank < bestRank) {
      best = f;
      bestRank = rank;
    }
  }
  return best;
}

function feedsOf(corrs: readonly CorrState[], id: string): Feed[] {
  return corrs
    .map((corr) => ({
      corr,
      steps: corr.rule.rules.flatMap((r, i) => (r === id ? [i] : [])),
      fields: corr.rule.groupFields.get(id) ?? corr.rule.groupBy,
    }))
    .filter((f) => f.steps.length > 0);
}

function lowerAbove(ts: readonly number[], from: number, to: number, x: number): number {
  // First index in [from, to) with ts[i] > x.
  let lo = from;
  let hi = to;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ts[mid] as number) > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function alertId(ruleId: string, key: string, end: number, trigger: string | undefined): string {
  return createHash('sha256')
    .update(`${ruleId}${SEP}${key}${SEP}${end}${SEP}${trigger ?? ''}`)
    .digest('hex')
    .slice(0, 32);
}

export class Correlator {
  readonly #opts: Required<CorrelatorOptions>;
  /** The rule index: field -> lower-case value -> the rules that need that value there. */
  readonly #index = new Map<string, Map<string, Target[]>>();
  /** Indexed fields, in lookup order. */
  #indexFields: string[] = [];
  /** Rules with no constant predicate: evaluated on every event. */
  readonly #unindexed: Target[] = [];
  /** Merged candidate lists by the buckets they came from (bounded). */
  readonly #mergeCache = new Map<string, readonly Target[]>();
  readonly #bucketIds = new Map<readonly Target[], number>();
  readonly #corrs: CorrState[];
  #ords = 0;
  /** Correlations fed by each correlation's alerts (chains). */
  readonly #outer = new Map<string, readonly Feed[]>();
  readonly #detSuppress = new Map<string, { readonly ms: number; readonly last: Map<string, number> }>();
  #maxTime = -Infinity;
  #sinceSweep = 0;
  readonly #stats: CorrelatorStats = {
    events: 0,
    late: 0,
    alerts: 0,
    suppressed: 0,
    evictedGroups: 0,
    evictedByReporter: 0,
    droppedEntries: 0,
    refusedByReporter: 0,
    groups: 0,
    maxTime: 0,
  };

  /** Which (rule, group key) pairs this correlator keeps (one shard of several); all when absent. */
  readonly #owns: ((ruleId: string, key: string) => boolean) | undefined;
  /** Where an inner alert goes whose outer correlation group another shard keeps. */
  readonly #forward: ChainForward | undefined;
  /** The longest correlation timespan or suppression, or detection suppression, of the rule set (ms). */
  readonly longestWindowMs: number;

  constructor(
    rules: RuleSet,
    options: CorrelatorOptions = {},
    owns?: (ruleId: string, key: string) => boolean,
    forward?: ChainForward,
  ) {
    this.#opts = { ...DEFAULT_OPTIONS, ...options };
    this.#owns = owns;
    this.#forward = forward;
    this.longestWindowMs = Math.max(
      0,
      // A correlation's suppression is state too: a replay shorter than it would raise again.
      ...rules.correlations.map((r) => Math.max(r.timespanMs, r.suppressMs)),
      ...rules.detections.map((d) => (d.generate ? d.suppressMs : 0)),
    );
    const o = this.#opts;
    if (
      o.maxEntriesPerGroup < MAX_THRESHOLD ||
      o.maxEntriesPerRule < o.maxEntriesPerGroup ||
      o.maxGroupsPerRule < 1 ||
      o.maxGroupsPerReporter < 1 ||
      o.maxEntriesPerReporter < o.maxEntriesPerGroup
    ) {
      throw new TypeError(
        'correlator caps too small: maxEntriesPerGroup >= 1000, maxEntriesPerRule and maxEntriesPerReporter >= maxEntriesPerGroup',
      );
    }
    if (!(o.latenessMs >= 0)) throw new TypeError('latenessMs must be >= 0');
    this.#corrs = rules.correlations.map((rule) => ({
      rule,
      groups: new Map(),
      owners: new Map(),
      held: new Map(),
      entries: 0,
    }));
    for (const corr of this.#corrs) this.#outer.set(corr.rule.id, feedsOf(this.#corrs, corr.rule.id));
    this.#indexFields = [];
    for (const det of rules.detections) {
      const feeds = feedsOf(this.#corrs, det.id);
      if (!det.generate && feeds.length === 0) continue;
      const target: Target = { det, feeds, ord: this.#ords++ };
      const key = indexKey(det.index);
      if (key === null) this.#unindexed.push(target);
      else {
        let byValue = this.#index.get(key);
        if (byValue === undefined) {
          byValue = new Map();
          this.#index.set(key, byValue);
        }
        for (const v of det.index.get(key) as ReadonlySet<string>) {
          const list = byValue.get(v) ?? [];
          list.push(target);
          byValue.set(v, list);
        }
      }
      if (det.generate && det.suppressMs > 0)
        this.#detSuppress.set(det.id, { ms: det.suppressMs, last: new Map() });
    }
    this.#indexFields = [...this.#index.keys()];
  }

  /** How the rules are indexed: rules per indexed field, and those evaluated on every event. */
  indexStats(): { readonly fields: Readonly<Record<string, number>>; readonly unindexed: number } {
    const fields: Record<string, number> = {};
    for (const [f, byValue] of this.#index) {
      const rules = new Set<Target>();
      for (const list of byValue.values()) for (const t of list) rules.add(t);
      fields[f] = rules.size;
    }
    return { fields, unindexed: this.#unindexed.length };
  }

  stats(): Readonly<CorrelatorStats> {
    let groups = 0;
    for (const c of this.#corrs) groups += c.groups.size;
    this.#stats.groups = groups;
    this.#stats.maxTime = this.#maxTime === -Infinity ? 0 : this.#maxTime;
    return { ...this.#stats };
  }

  /** The rules an event can match: those its indexed field values admit, and the unindexed, in rule order. */
  #targets(e: EdgeEvent): readonly Target[] {
    // One bucket is returned as it is (no copy); a second makes an owned, merged list.
    let found: readonly Target[] | null = null;
    let lists = 0;
    const buckets: (readonly Target[])[] = [];
    const add = (list: readonly Target[] | undefined) => {
      if (list === undefined || list.length === 0) return;
      lists++;
      buckets.push(list);
      found = found === null ? list : found.concat(list);
    };
    for (let i = 0; i < this.#indexFields.length; i++) {
      const f = this.#indexFields[i] as string;
      const v = (e as Rec)[f];
      if (v === undefined || v === null) continue;
      const byValue = this.#index.get(f) as Map<string, Target[]>;
      if (Array.isArray(v)) {
        for (const x of v as unknown[]) {
          const k = valueText(x);
          if (k !== null) add(byValue.get(k.toLowerCase()));
        }
      } else {
        const k = valueText(v);
        if (k !== null) add(byValue.get(k.toLowerCase()));
      }
    }
    add(this.#unindexed);
    if (found === null) return [];
    if (lists === 1) return found;
    // The same buckets recur (an action with a category and an identity): their merge is cached.
    let key = '';
    for (const b of buckets) key += `${this.#bucketId(b)},`;
    const cached = this.#mergeCache.get(key);
    if (cached !== undefined) return cached;
    const out = found as Target[];
    {
      // Several buckets: back to rule order, each rule once (a list value may repeat a rule).
      out.sort((a, b) => a.ord - b.ord);
      let w = 0;
      for (let r = 0; r < out.length; r++) if (r === 0 || out[r] !== out[r - 1]) out[w++] = out[r] as Target;
      out.length = w;
    }
    if (this.#mergeCache.size < 4096) this.#mergeCache.set(key, out);
    return out;
  }

  #bucketId(b: readonly Target[]): number {
    let id = this.#bucketIds.get(b);
    if (id === undefined) {
      id = this.#bucketIds.size;
      this.#bucketIds.set(b, id);
    }
    return id;
  }

  /**
   * The (rule, group) pairs an event would touch, each as `ruleId` U+001F `key`: detection rules that
   * raise alerts (keyed by their suppress-by values) and the correlation groups it would count in.
   * Reads no state and changes none: ingest replicas use it to send each event to the correlation
   * shards that own its groups.
   */
  routes(e: EdgeEvent): string[] {
    const out = new Set<string>();
    for (const target of this.#targets(e)) {
      if (!target.det.match(e)) continue;
      if (target.det.generate) out.add(target.det.id + SEP + this.#suppressKey(target.det, e));
      for (const f of target.feeds) {
        const key = this.#key(f.fields, e);
        if (key !== null) out.add(f.corr.rule.id + SEP + key);
      }
    }
    return [...out];
  }

  /** Feeds events (any order within the lateness bound) and returns the alerts they complete. */
  feed(events: readonly EdgeEvent[]): Alert[] {
    const out: Alert[] = [];
    for (const e of events) this.#one(e, out);
    return out;
  }

  #one(e: EdgeEvent, out: Alert[]): void {
    this.#stats.events++;
    const t = e['@timestamp'];
    // An event stamped by the SIEM moves the watermark at most a little past the SIEM's own
    // clock, so a reporter sending future times cannot make everyone else's events "late".
    const ingested = e['event.ingested'];
    const lead = ingested === undefined ? t : Math.min(t, ingested + this.#opts.maxLeadMs);
    if (lead > this.#maxTime) this.#maxTime = lead;
    const watermark = this.#maxTime - this.#opts.latenessMs;
    const late = t < watermark;
    if (late) this.#stats.late++;
    const targets = this.#targets(e);
    // An event that matches several base rules of one correlation counts once for it (its steps
    // are the union); the first matching rule's fields key its group.
    let hits: Map<CorrState, { feed: Feed; steps: number[] }> | null = null;
    for (let i = 0; i < targets.length; i++) {
      const target = targets[i] as Target;
      if (!target.det.match(e)) continue;
      if (target.det.generate) this.#detectionAlert(target.det, e, out);
      if (late) continue;
      for (const f of target.feeds) {
        hits ??= new Map();
        const h = hits.get(f.corr);
        if (h === undefined) hits.set(f.corr, { feed: f, steps: [...f.steps] });
        else for (const st of f.steps) if (!h.steps.includes(st)) h.steps.push(st);
      }
    }
    if (hits !== null) for (const h of hits.values()) this.#feedCorr(h.feed, h.steps, e, watermark, out);
    if (++this.#sinceSweep >= 16_384) {
      this.#sinceSweep = 0;
      this.#sweep(watermark);
    }
  }

  /**
   * Inner alerts of correlation `inner` raised on another shard (as `ChainForward` handed them
   * on), fed to the outer correlations whose groups this correlator keeps.
   */
  feedChained(inner: string, events: readonly EdgeEvent[]): Alert[] {
    const outer = this.#outer.get(inner);
    const out: Alert[] = [];
    if (outer === undefined) return out;
    for (const e of events) {
      if (e['@timestamp'] > this.#maxTime) this.#maxTime = e['@timestamp'];
      const watermark = this.#maxTime - this.#opts.latenessMs;
      for (const f of outer) this.#feedCorr(f, f.steps, e, watermark, out);
    }
    return out;
  }

  #feedCorr(
    feed: Feed,
    steps: readonly number[],
    e: EdgeEvent,
    watermark: number,
    out: Alert[],
    chained = false,
  ): void {
    // Without a forward, a chained (outer) correlation is fed where its inner alert was raised.
    if (this.#owns !== undefined && !chained) {
      const key = this.#key(feed.fields, e);
      if (key === null || !this.#owns(feed.corr.rule.id, key)) return;
    }
    const type = feed.corr.rule.type;
    if (type === 'temporal_ordered' || type === 'temporal') this.#sequence(feed, steps, e, watermark, out);
    else this.#count(feed, e, watermark, out);
  }

  #emit(alert: Alert, out: Alert[], corr?: CorrelationRule): void {
    if (corr === undefined || corr.generate) {
      this.#stats.alerts++;
      out.push(alert);
    }
    if (corr === undefined) return;
    const outer = this.#outer.get(corr.id);
    if (outer === undefined || outer.length === 0) return;
    // A chain: the alert is an event of the outer correlations, at the window end, carrying the
    // group-by values as fields.
    const reporter = alert.reporters?.[0];
    const ev: Record<string, unknown> = {
      ...alert.groupBy,
      '@timestamp': alert.time,
      'event.id': alert.id,
      'event.action': 'siem.correlation',
      'rule.id': corr.id,
    };
    if (reporter !== undefined && reporter !== '') ev['observer.identity'] = reporter;
    const watermark = this.#maxTime - this.#opts.latenessMs;
    for (const f of outer) {
      if (this.#owns !== undefined && this.#forward !== undefined) {
        const key = this.#key(f.fields, ev as EdgeEvent);
        if (key === null) continue;
        if (!this.#owns(f.corr.rule.id, key)) {
          this.#forward(f.corr.rule.id + SEP + key, corr.id, ev as EdgeEvent);
          continue;
        }
      }
      this.#feedCorr(f, f.steps, ev as EdgeEvent, watermark, out, true);
    }
  }

  #suppressKey(det: DetectionRule, e: EdgeEvent): string {
    let key = '';
    for (const f of det.suppressBy) {
      const v = (e as Rec)[f];
      key += (v === undefined ? '' : String(v)) + SEP;
    }
    return key;
  }

  #detectionAlert(det: DetectionRule, e: EdgeEvent, out: Alert[]): void {
    const t = e['@timestamp'];
    const key = this.#suppressKey(det, e);
    if (this.#owns !== undefined && !this.#owns(det.id, key)) return;
    const groupBy: Record<string, string> = {};
    for (const f of det.suppressBy) {
      const v = (e as Rec)[f];
      groupBy[f] = v === undefined ? '' : String(v);
    }
    const sup = this.#detSuppress.get(det.id)?.last;
    if (sup !== undefined) {
      const last = sup.get(key);
      if (last !== undefined && Math.abs(t - last) < det.suppressMs) {
        this.#stats.suppressed++;
        return;
      }
      sup.delete(key);
      sup.set(key, t);
      if (sup.size > this.#opts.maxGroupsPerRule) {
        const first = sup.keys().next();
        if (first.done !== true) sup.delete(first.value);
      }
    }
    const id = e['event.id'];
    this.#emit(
      {
        id: alertId(det.id, key, t, id),
        ruleId: det.id,
        title: det.title,
        level: det.level,
        type: 'detection',
        time: t,
        windowStart: t,
        groupBy,
        count: 1,
        values: [],
        events: id === undefined ? [] : [id],
        trigger: e,
        reporters: [observerOf(e)],
        alone: [observerOf(e)],
      },
      out,
    );
  }

  /** The group key, or null if a group-by field is missing or null (the event is then not counted). */
  #key(fields: readonly string[], e: EdgeEvent): string | null {
    if (fields.length === 1) return valueText((e as Rec)[fields[0] as string]);
    let key = '';
    for (let i = 0; i < fields.length; i++) {
      const v = valueText((e as Rec)[fields[i] as string]);
      if (v === null) return null;
      key += (i === 0 ? '' : SEP) + v;
    }
    return key;
  }

  #groupRecord(rule: CorrelationRule, key: string): Record<string, string> {
    const parts = rule.groupBy.length === 1 ? [key] : key.split(SEP);
    const rec: Record<string, string> = {};
    rule.groupBy.forEach((f, i) => (rec[f] = parts[i] ?? ''));
    return rec;
  }

  #touch<G extends CountGroup | SeqGroup>(corr: CorrState, key: string, owner: string, make: () => G): G {
    const groups = corr.groups as Map<string, G>;
    let g = groups.get(key);
    if (g === undefined) {
      g = make();
      let own = corr.owners.get(owner);
      if (own === undefined) {
        own = new Set();
        corr.owners.set(owner, own);
      } else if (owner !== '' && own.size >= this.#opts.maxGroupsPerReporter) {
        // One reporter inventing keys forgets its own oldest ones, never another reporter's.
        // (Events without a reporter, such as rule tests and replays, have the rule's caps only.)
        const oldest = own.values().next();
        if (oldest.done !== true) {
          this.#forget(corr, oldest.value);
          this.#stats.evictedByReporter++;
        }
      }
      if (groups.size >= this.#opts.maxGroupsPerRule) this.#evictOldest(corr);
      own.add(key);
    } else {
      groups.delete(key);
      const own = corr.owners.get(g.owner);
      if (own !== undefined) {
        own.delete(key);
        own.add(key);
      }
    }
    // Re-inserting keeps the Map in least-recently-updated order for eviction.
    groups.set(key, g);
    return g;
  }

  /** Drops one group and its entries (eviction). */
  #forget(corr: CorrState, key: string): void {
    const g = corr.groups.get(key);
    if (g === undefined) return;
    this.#drop(corr, key, g);
    this.#stats.evictedGroups++;
  }

  /** Removes a group from the rule and from its owner's keys. */
  #drop(corr: CorrState, key: string, g: CountGroup | SeqGroup): void {
    corr.groups.delete(key);
    corr.entries -= this.#size(g);
    if ('steps' in g) for (const st of g.steps) for (const r of st.obs) this.#release(corr, r);
    else for (let k = g.head; k < g.ts.length; k++) this.#release(corr, g.obs[k] as string);
    const own = corr.owners.get(g.owner);
    if (own !== undefined) {
      own.delete(key);
      if (own.size === 0) corr.owners.delete(g.owner);
    }
  }

  /** One entry of reporter `r` left a group. */
  #release(corr: CorrState, r: string): void {
    const n = (corr.held.get(r) ?? 1) - 1;
    if (n <= 0) corr.held.delete(r);
    else corr.held.set(r, n);
  }

  #evictOldest(corr: CorrState): void {
    const first = corr.groups.keys().next();
    if (first.done === true) return;
    this.#forget(corr, first.value);
  }

  /**
   * One reporter's events hold at most maxEntriesPerReporter entries of a rule (count or
   * sequence): beyond it, its own least recently updated key is forgotten, and with none to forget
   * the event is not correlated (false), so a flood cannot push other reporters' evidence out of
   * the rule's caps. Events without a reporter have the rule's caps only, as for keys.
   */
  #roomFor(corr: CorrState, observer: string, key: string): boolean {
    if (observer === '' || (corr.held.get(observer) ?? 0) < this.#opts.maxEntriesPerReporter) return true;
    const oldest = corr.owners.get(observer)?.values().next();
    if (oldest !== undefined && oldest.done !== true && oldest.value !== key) {
      this.#forget(corr, oldest.value);
      this.#stats.evictedByReporter++;
    }
    if ((corr.held.get(observer) ?? 0) < this.#opts.maxEntriesPerReporter) return true;
    this.#stats.refusedByReporter++;
    return false;
  }

  #size(g: CountGroup | SeqGroup): number {
    if ('steps' in g) return g.steps.reduce((n, s) => n + s.ts.length, 0);
    return g.ts.length - g.head;
  }

  /** Drops a count group's entries at or before `cut` (or beyond the per-group cap). */
  #dropHead(corr: CorrState, g: CountGroup, cut: number): void {
    const cap = this.#opts.maxEntriesPerGroup;
    while (g.head < g.ts.length && ((g.ts[g.head] as number) <= cut || g.ts.length - g.head > cap)) {
      if ((g.ts[g.head] as number) > cut) this.#stats.droppedEntries++;
      if (g.tail !== null && g.head >= g.tailLo) {
        const v = g.vs[g.head] as string;
        const n = (g.tail.get(v) ?? 1) - 1;
        if (n === 0) g.tail.delete(v);
        else g.tail.set(v, n);
        g.tailLo = g.head + 1;
      }
      this.#release(corr, g.obs[g.head] as string);
      g.head++;
      corr.entries--;
    }
    if (g.head > 64 && g.head * 2 > g.ts.length) {
      g.ts.splice(0, g.head);
      g.ids.splice(0, g.head);
      g.obs.splice(0, g.head);
      if (g.vs.length > 0) g.vs.splice(0, g.head);
      if (g.ns.length > 0) g.ns.splice(0, g.head);
      g.tailLo = Math.max(0, g.tailLo - g.head);
      g.head = 0;
    }
  }

  #count(feed: Feed, e: EdgeEvent, watermark: number, out: Alert[]): void {
    const corr = feed.corr;
    const rule = corr.rule;
    const key = this.#key(feed.fields, e);
    if (key === null) return;
    const valued = rule.type === 'value_count';
    const metered = rule.type !== 'value_count' && rule.type !== 'event_count';
    let value = '';
    let num = 0;
    if (valued) {
      // Several fields: their tuple is the value ("linked by an AND").
      for (let k = 0; k < rule.fields.length; k++) {
        const v = valueText((e as Rec)[rule.fields[k] as string]);
        if (v === null) return;
        value += (k === 0 ? '' : SEP) + v;
      }
    } else if (metered) {
      const n = numberOf((e as Rec)[rule.fields[0] as string]);
      if (n === null) return;
      num = n;
    }
    const T = rule.timespanMs;
    const observer = observerOf(e);
    if (!this.#roomFor(corr, observer, key)) return;
    const g = this.#touch<CountGroup>(corr, key, observer, () => ({
      owner: observer,
      ts: [],
      ids: [],
      obs: [],
      vs: [],
      ns: [],
      head: 0,
      tailLo: 0,
      tail: valued ? new Map() : null,
      lastAlert: -Infinity,
      lastAlone: [],
    }));
    const t = e['@timestamp'];
    const id = e['event.id'];
    const len = g.ts.length;
    let i: number;
    if (len === g.head || (g.ts[len - 1] as number) <= t) {
      g.ts.push(t);
      g.ids.push(id);
      g.obs.push(observer);
      if (valued) {
        g.vs.push(value);
        const tail = g.tail as Map<string, number>;
        tail.set(value, (tail.get(value) ?? 0) + 1);
      } else if (metered) g.ns.push(num);
      i = len;
    } else {
      // Late but within the bound: insert after any equal times to keep arrival order stable.
      i = lowerAbove(g.ts, g.head, len, t);
      g.ts.splice(i, 0, t);
      g.ids.splice(i, 0, id);
      g.obs.splice(i, 0, observer);
      if (metered) g.ns.splice(i, 0, num);
      if (valued) {
        g.vs.splice(i, 0, value);
        if (i < g.tailLo) g.tailLo++;
        else {
          const tail = g.tail as Map<string, number>;
          tail.set(value, (tail.get(value) ?? 0) + 1);
        }
      }
    }
    corr.entries++;
    corr.held.set(observer, (corr.held.get(observer) ?? 0) + 1);
    // Dropping the head may compact the arrays, so remember the position from the end.
    const fromEnd = g.ts.length - i;
    this.#dropHead(corr, g, watermark - T);
    if (g.head === g.ts.length) return;
    i = Math.max(g.ts.length - fromEnd, g.head);
    if (valued) {
      // Keep the tail window (newest - T, newest] exact.
      const newest = g.ts[g.ts.length - 1] as number;
      const tail = g.tail as Map<string, number>;
      if (g.tailLo < g.head) g.tailLo = g.head;
      while ((g.ts[g.tailLo] as number) <= newest - T) {
        const v = g.vs[g.tailLo] as string;
        const n = (tail.get(v) ?? 1) - 1;
        if (n === 0) tail.delete(v);
        else tail.set(v, n);
        g.tailLo++;
      }
    }
    while (corr.entries > this.#opts.maxEntriesPerRule && corr.groups.size > 1) this.#evictOldest(corr);

    const cond = rule.condition;
    let lo = -1;
    let hi = -1;
    let measure = 0;
    if (i === g.ts.length - 1) {
      // In order: only the window ending at this event is new.
      hi = g.ts.length;
      lo = valued ? g.tailLo : lowerAbove(g.ts, g.head, hi, t - T);
      measure = valued
        ? (g.tail as Map<string, number>).size
        : metered
          ? metric(rule.type, rule.percentile, g.ns, lo, hi)
          : hi - lo;
      if (!holds(cond, measure)) return;
    } else {
      // Out of order: any window (s - T, s] with s in [t, t + T) now holds one more event.
      // For "at least" conditions no window holds more than the whole group: when even that
      // falls short (the tail window covers every entry for value_count), the scan cannot find one.
      if (monotone(cond) && !metered) {
        const most = valued
          ? g.tailLo === g.head
            ? (g.tail as Map<string, number>).size
            : Infinity
          : g.ts.length - g.head;
        if (!holds(cond, most)) return;
      }
      const found = this.#scan(g, i, T, rule, valued, metered);
      if (found === null) return;
      [lo, hi, measure] = found;
    }
    const end = g.ts[hi - 1] as number;
    // A repeat within the suppression is dropped, unless the evidence of a reporter that did not
    // raise the last alert alone now raises it alone: a forger's planted events, which made the
    // last alert joint (or spent), must not silence another reporter's own detection.
    if (Math.abs(end - g.lastAlert) < rule.suppressMs) {
      const r = observerOf(e);
      if (
        g.lastAlone.length >= MAX_ALERT_REPORTERS ||
        g.lastAlone.includes(r) ||
        !raisesAlone(rule, g, lo, hi, r)
      ) {
        this.#stats.suppressed++;
        return;
      }
    } else g.lastAlone = [];
    g.lastAlert = end;
    let values: string[] = [];
    if (valued) {
      const seen = new Set<string>();
      for (let k = hi - 1; k >= lo && seen.size < MAX_ALERT_VALUES; k--) seen.add(g.vs[k] as string);
      values = [...seen];
    }
    const ids: string[] = [];
    for (let k = hi - 1; k >= lo && ids.length < this.#opts.maxAlertEvents; k--) {
      const x = g.ids[k];
      if (x !== undefined) ids.push(x);
    }
    ids.reverse();
    const reporters = reportersIn(g.obs, lo, hi);
    const alone = aloneIn(rule, g, lo, hi, reporters);
    for (const r of alone)
      if (!g.lastAlone.includes(r) && g.lastAlone.length < MAX_ALERT_REPORTERS)
        g.lastAlone = [...g.lastAlone, r];
    this.#emit(
      {
        id: alertId(rule.id, key, end, e['event.id']),
        ruleId: rule.id,
        title: rule.title,
        level: rule.level,
        type: rule.type,
        time: end,
        windowStart: g.ts[lo] as number,
        groupBy: this.#groupRecord(rule, key),
        count: measure,
        values,
        events: ids,
        trigger: e,
        reporters: [...reporters],
        alone,
      },
      out,
      rule,
    );
  }

  /** Slow path for an out-of-order insert at index i: the first window containing it that matches. */
  #scan(
    g: CountGroup,
    i: number,
    T: number,
    rule: CorrelationRule,
    valued: boolean,
    metered: boolean,
  ): [number, number, number] | null {
    const t = g.ts[i] as number;
    const n = g.ts.length;
    const counts = new Map<string, number>();
    let lo = g.head;
    let hi = g.head;
    let k = i;
    while (k < n && (g.ts[k] as number) < t + T) {
      const s = g.ts[k] as number;
      // The window ends after the last event at time s.
      let end = k + 1;
      while (end < n && g.ts[end] === s) end++;
      while (hi < end) {
        if (valued) counts.set(g.vs[hi] as string, (counts.get(g.vs[hi] as string) ?? 0) + 1);
        hi++;
      }
      while ((g.ts[lo] as number) <= s - T) {
        if (valued) {
          const v = g.vs[lo] as string;
          const c = (counts.get(v) ?? 1) - 1;
          if (c === 0) counts.delete(v);
          else counts.set(v, c);
        }
        lo++;
      }
      const measure = valued
        ? counts.size
        : metered
          ? metric(rule.type, rule.percentile, g.ns, lo, hi)
          : hi - lo;
      if (holds(rule.condition, measure)) return [lo, hi, measure];
      k = end;
    }
    return null;
  }

  #sequence(feed: Feed, steps: readonly number[], e: EdgeEvent, watermark: number, out: Alert[]): void {
    const corr = feed.corr;
    const rule = corr.rule;
    const key = this.#key(feed.fields, e);
    if (key === null) return;
    const T = rule.timespanMs;
    const observer = observerOf(e);
    if (!this.#roomFor(corr, observer, key)) return;
    const g = this.#touch<SeqGroup>(corr, key, observer, () => ({
      owner: observer,
      steps: rule.rules.map(() => ({ ts: [], ids: [], obs: [] })),
      lastAlert: -Infinity,
    }));
    const t = e['@timestamp'];
    const id = e['event.id'];
    const cut = watermark - T;
    const cap = this.#opts.maxEntriesPerGroup;
    for (const j of steps) {
      const s = g.steps[j] as SeqGroup['steps'][number];
      const at = lowerAbove(s.ts, 0, s.ts.length, t);
      s.ts.splice(at, 0, t);
      s.ids.splice(at, 0, id);
      s.obs.splice(at, 0, observer);
      corr.entries++;
      corr.held.set(observer, (corr.held.get(observer) ?? 0) + 1);
    }
    for (const s of g.steps) {
      let drop = 0;
      while (drop < s.ts.length && ((s.ts[drop] as number) <= cut || s.ts.length - drop > cap)) drop++;
      if (drop > 0) {
        for (let k = 0; k < drop; k++) this.#release(corr, s.obs[k] as string);
        s.ts.splice(0, drop);
        s.ids.splice(0, drop);
        s.obs.splice(0, drop);
        corr.entries -= drop;
      }
    }
    while (corr.entries > this.#opts.maxEntriesPerRule && corr.groups.size > 1) this.#evictOldest(corr);
    if (rule.type === 'temporal') {
      this.#temporal(corr, g, key, e, out);
      return;
    }
    for (const j of steps) {
      const chain = this.#chain(g, j, t);
      if (chain === null) continue;
      const first = chain[0] as number;
      const last = chain[chain.length - 1] as number;
      if (last - first >= T) continue;
      if (Math.abs(last - g.lastAlert) < rule.suppressMs) {
        this.#stats.suppressed++;
        return;
      }
      // A completed sequence consumes the group: the next alert needs a fresh first step.
      const ids: string[] = [];
      const reporters = new Set<string>();
      for (const st of g.steps) {
        for (let k = 0; k < st.ts.length; k++) {
          const at = st.ts[k] as number;
          if (at < first || at > last) continue;
          const x = st.ids[k];
          if (x !== undefined) ids.push(x);
          if (reporters.size < MAX_ALERT_REPORTERS) reporters.add(st.obs[k] as string);
        }
        for (const r of st.obs) this.#release(corr, r);
        corr.entries -= st.ts.length;
        st.ts.length = 0;
        st.ids.length = 0;
        st.obs.length = 0;
      }
      g.lastAlert = last;
      this.#emit(
        {
          id: alertId(rule.id, key, last, id),
          ruleId: rule.id,
          title: rule.title,
          level: rule.level,
          type: rule.type,
          time: last,
          windowStart: first,
          groupBy: this.#groupRecord(rule, key),
          count: chain.length,
          values: [],
          events: ids.slice(-this.#opts.maxAlertEvents),
          trigger: e,
          reporters: [...reporters],
          alone: reporters.size === 1 ? [...reporters] : [],
        },
        out,
        rule,
      );
      return;
    }
  }

  /**
   * temporal: the window ending at the event, (t - timespan, t], holds events of how many of the
   * listed rules; the condition (default: all of them) is checked on that count. Nothing is
   * consumed: repeats are what suppression is for.
   */
  #temporal(corr: CorrState, g: SeqGroup, key: string, e: EdgeEvent, out: Alert[]): void {
    const rule = corr.rule;
    const t = e['@timestamp'];
    const from = t - rule.timespanMs;
    let rules = 0;
    let first = t;
    // Each step's window, found by binary search: the events in it are read only for an alert, so
    // an event that raises none costs O(steps × log n), not a scan of the window.
    const windows: [number, number][] = [];
    for (const st of g.steps) {
      const lo = lowerAbove(st.ts, 0, st.ts.length, from);
      const hi = lowerAbove(st.ts, 0, st.ts.length, t);
      windows.push([lo, hi]);
      if (hi <= lo) continue;
      rules++;
      if ((st.ts[lo] as number) < first) first = st.ts[lo] as number;
    }
    if (!holds(rule.condition, rules)) return;
    if (Math.abs(t - g.lastAlert) < rule.suppressMs) {
      this.#stats.suppressed++;
      return;
    }
    const seen = new Set<string>();
    const reporters = new Set<string>();
    g.steps.forEach((st, j) => {
      const [lo, hi] = windows[j] as [number, number];
      for (let k = lo; k < hi; k++) {
        const x = st.ids[k];
        if (x !== undefined) seen.add(x);
        if (reporters.size < MAX_ALERT_REPORTERS) reporters.add(st.obs[k] as string);
      }
    });
    const ids = [...seen];
    g.lastAlert = t;
    this.#emit(
      {
        id: alertId(rule.id, key, t, e['event.id']),
        ruleId: rule.id,
        title: rule.title,
        level: rule.level,
        type: rule.type,
        time: t,
        windowStart: first,
        groupBy: this.#groupRecord(rule, key),
        count: rules,
        values: [],
        events: ids.slice(-this.#opts.maxAlertEvents),
        trigger: e,
        reporters: [...reporters],
        alone: reporters.size === 1 ? [...reporters] : [],
      },
      out,
      rule,
    );
  }

  /** Step times t1 < t2 < ... with step j at t, chosen to make the span shortest; null if none. */
  #chain(g: SeqGroup, j: number, t: number): number[] | null {
    const chain: number[] = new Array<number>(g.steps.length);
    chain[j] = t;
    let prev = t;
    for (let s = j - 1; s >= 0; s--) {
      const ts = (g.steps[s] as SeqGroup['steps'][number]).ts;
      // Latest time strictly before prev.
      let lo = 0;
      let hi = ts.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((ts[mid] as number) < prev) lo = mid + 1;
        else hi = mid;
      }
      if (lo === 0) return null;
      prev = ts[lo - 1] as number;
      chain[s] = prev;
    }
    prev = t;
    for (let s = j + 1; s < g.steps.length; s++) {
      const ts = (g.steps[s] as SeqGroup['steps'][number]).ts;
      const at = lowerAbove(ts, 0, ts.length, prev);
      if (at === ts.length) return null;
      prev = ts[at] as number;
      chain[s] = prev;
    }
    return chain;
  }

  /** Drops groups whose events all fell out of every possible window. */
  #sweep(watermark: number): void {
    for (const corr of this.#corrs) {
      const cut = watermark - corr.rule.timespanMs;
      for (const [key, g] of corr.groups) {
        if ('steps' in g) {
          if (g.steps.every((s) => s.ts.length === 0 || (s.ts[s.ts.length - 1] as number) <= cut))
            this.#drop(corr, key, g);
        } else if (g.ts.length === g.head || (g.ts[g.ts.length - 1] as number) <= cut) {
          this.#drop(corr, key, g);
        }
      }
    }
    for (const sup of this.#detSuppress.values()) {
      for (const [k, last] of sup.last) if (last < watermark - sup.ms) sup.last.delete(k);
    }
  }
}
