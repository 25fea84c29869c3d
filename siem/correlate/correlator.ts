// The correlation engine: a pure, event-time state machine. feed(events) returns the alerts they
// complete. Windows are half-open, (end - timespan, end]; docs/rules.md states every semantic.
import { createHash } from 'node:crypto';
import type { EdgeEvent } from '../../common/events.js';
import {
  MAX_THRESHOLD,
  type CorrelationRule,
  type DetectionRule,
  type RuleSet,
} from '../../policies/rules/index.js';
import { DEFAULT_OPTIONS, type Alert, type CorrelatorOptions, type CorrelatorStats } from './types.js';

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
  head: number;
  /** value_count: counts of values at indices [tailLo, length), the window ending at the newest. */
  tailLo: number;
  tail: Map<string, number> | null;
  lastAlert: number;
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
  entries: number;
}

const observerOf = (e: EdgeEvent): string => e['observer.identity'] ?? '';

/** Distinct reporters of obs[lo, hi), newest first, at most MAX_ALERT_REPORTERS. */
function reportersIn(obs: readonly string[], lo: number, hi: number, into = new Set<string>()): Set<string> {
  for (let k = hi - 1; k >= lo && into.size < MAX_ALERT_REPORTERS; k--) into.add(obs[k] as string);
  return into;
}

interface Target {
  readonly det: DetectionRule;
  /** Correlations fed by this detection rule, with the sequence step(s) it fills. */
  readonly feeds: readonly { readonly corr: CorrState; readonly steps: readonly number[] }[];
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
  readonly #byAction = new Map<string, Target[]>();
  readonly #anyAction: Target[] = [];
  readonly #actionCache = new Map<string, readonly Target[]>();
  readonly #corrs: CorrState[];
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
    groups: 0,
    maxTime: 0,
  };

  constructor(rules: RuleSet, options: CorrelatorOptions = {}) {
    this.#opts = { ...DEFAULT_OPTIONS, ...options };
    const o = this.#opts;
    if (
      o.maxEntriesPerGroup < MAX_THRESHOLD ||
      o.maxEntriesPerRule < o.maxEntriesPerGroup ||
      o.maxGroupsPerRule < 1 ||
      o.maxGroupsPerReporter < 1
    ) {
      throw new TypeError(
        'correlator caps too small: maxEntriesPerGroup >= 1000, maxEntriesPerRule >= maxEntriesPerGroup',
      );
    }
    if (!(o.latenessMs >= 0)) throw new TypeError('latenessMs must be >= 0');
    this.#corrs = rules.correlations.map((rule) => ({
      rule,
      groups: new Map(),
      owners: new Map(),
      entries: 0,
    }));
    for (const det of rules.detections) {
      const feeds = this.#corrs
        .map((corr) => ({
          corr,
          steps: corr.rule.rules.flatMap((id, i) => (id === det.id ? [i] : [])),
        }))
        .filter((f) => f.steps.length > 0);
      if (!det.generate && feeds.length === 0) continue;
      const target: Target = { det, feeds };
      if (det.actions === null) this.#anyAction.push(target);
      else {
        for (const a of det.actions) {
          const list = this.#byAction.get(a) ?? [];
          list.push(target);
          this.#byAction.set(a, list);
        }
      }
      if (det.generate && det.suppressMs > 0)
        this.#detSuppress.set(det.id, { ms: det.suppressMs, last: new Map() });
    }
  }

  stats(): Readonly<CorrelatorStats> {
    let groups = 0;
    for (const c of this.#corrs) groups += c.groups.size;
    this.#stats.groups = groups;
    this.#stats.maxTime = this.#maxTime === -Infinity ? 0 : this.#maxTime;
    return { ...this.#stats };
  }

  #targets(action: string): readonly Target[] {
    let t = this.#actionCache.get(action);
    if (t === undefined) {
      t = [...(this.#byAction.get(action) ?? []), ...this.#anyAction];
      // The cache is bounded: actions are keywords, but a hostile reporter could invent many.
      if (this.#actionCache.size < 4096) this.#actionCache.set(action, t);
    }
    return t;
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
    const targets = this.#targets(e['event.action']);
    for (let i = 0; i < targets.length; i++) {
      const target = targets[i] as Target;
      if (!target.det.match(e)) continue;
      if (target.det.generate) this.#detectionAlert(target.det, e, out);
      if (late) continue;
      for (const f of target.feeds) {
        if (f.corr.rule.type === 'temporal_ordered') this.#sequence(f.corr, f.steps, e, watermark, out);
        else this.#count(f.corr, e, watermark, out);
      }
    }
    if (++this.#sinceSweep >= 16_384) {
      this.#sinceSweep = 0;
      this.#sweep(watermark);
    }
  }

  #emit(alert: Alert, out: Alert[]): void {
    this.#stats.alerts++;
    out.push(alert);
  }

  #detectionAlert(det: DetectionRule, e: EdgeEvent, out: Alert[]): void {
    const t = e['@timestamp'];
    const groupBy: Record<string, string> = {};
    let key = '';
    for (const f of det.suppressBy) {
      const v = (e as Rec)[f];
      const s = v === undefined ? '' : String(v);
      groupBy[f] = s;
      key += s + SEP;
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
      },
      out,
    );
  }

  /** The group key, or null if a group-by field is missing (the event is then not counted). */
  #key(rule: CorrelationRule, e: EdgeEvent): string | null {
    const gb = rule.groupBy;
    if (gb.length === 1) {
      const v = (e as Rec)[gb[0] as string];
      return v === undefined ? null : String(v);
    }
    let key = '';
    for (const f of gb) {
      const v = (e as Rec)[f];
      if (v === undefined) return null;
      key += (key === '' ? '' : SEP) + String(v);
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
    const own = corr.owners.get(g.owner);
    if (own !== undefined) {
      own.delete(key);
      if (own.size === 0) corr.owners.delete(g.owner);
    }
  }

  #evictOldest(corr: CorrState): void {
    const first = corr.groups.keys().next();
    if (first.done === true) return;
    this.#forget(corr, first.value);
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
      g.head++;
      corr.entries--;
    }
    if (g.head > 64 && g.head * 2 > g.ts.length) {
      g.ts.splice(0, g.head);
      g.ids.splice(0, g.head);
      g.obs.splice(0, g.head);
      if (g.vs.length > 0) g.vs.splice(0, g.head);
      g.tailLo = Math.max(0, g.tailLo - g.head);
      g.head = 0;
    }
  }

  #count(corr: CorrState, e: EdgeEvent, watermark: number, out: Alert[]): void {
    const rule = corr.rule;
    const key = this.#key(rule, e);
    if (key === null) return;
    const valued = rule.type === 'value_count';
    let value = '';
    if (valued) {
      const v = (e as Rec)[rule.field as string];
      if (v === undefined) return;
      value = String(v);
    }
    const T = rule.timespanMs;
    const observer = observerOf(e);
    const g = this.#touch<CountGroup>(corr, key, observer, () => ({
      owner: observer,
      ts: [],
      ids: [],
      obs: [],
      vs: [],
      head: 0,
      tailLo: 0,
      tail: valued ? new Map() : null,
      lastAlert: -Infinity,
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
      }
      i = len;
    } else {
      // Late but within the bound: insert after any equal times to keep arrival order stable.
      i = lowerAbove(g.ts, g.head, len, t);
      g.ts.splice(i, 0, t);
      g.ids.splice(i, 0, id);
      g.obs.splice(i, 0, observer);
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

    const need = rule.threshold.op === 'gt' ? rule.threshold.value + 1 : rule.threshold.value;
    let lo = -1;
    let hi = -1;
    let measure = 0;
    if (i === g.ts.length - 1) {
      // In order: only the window ending at this event is new.
      hi = g.ts.length;
      lo = valued ? g.tailLo : lowerAbove(g.ts, g.head, hi, t - T);
      measure = valued ? (g.tail as Map<string, number>).size : hi - lo;
      if (measure < need) return;
    } else {
      // Out of order: any window (s - T, s] with s in [t, t + T) now holds one more event.
      // No window holds more than the whole group: when even that falls short (the tail window
      // covers every entry for value_count), the scan cannot find one.
      const most = valued
        ? g.tailLo === g.head
          ? (g.tail as Map<string, number>).size
          : Infinity
        : g.ts.length - g.head;
      if (most < need) return;
      const found = this.#scan(g, i, T, need, valued);
      if (found === null) return;
      [lo, hi, measure] = found;
    }
    const end = g.ts[hi - 1] as number;
    if (Math.abs(end - g.lastAlert) < rule.suppressMs) {
      this.#stats.suppressed++;
      return;
    }
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
        reporters: [...reportersIn(g.obs, lo, hi)],
      },
      out,
    );
  }

  /** Slow path for an out-of-order insert at index i: the first window containing it that matches. */
  #scan(g: CountGroup, i: number, T: number, need: number, valued: boolean): [number, number, number] | null {
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
      const measure = valued ? counts.size : hi - lo;
      if (measure >= need) return [lo, hi, measure];
      k = end;
    }
    return null;
  }

  #sequence(corr: CorrState, steps: readonly number[], e: EdgeEvent, watermark: number, out: Alert[]): void {
    const rule = corr.rule;
    const key = this.#key(rule, e);
    if (key === null) return;
    const T = rule.timespanMs;
    const observer = observerOf(e);
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
    }
    for (const s of g.steps) {
      let drop = 0;
      while (drop < s.ts.length && ((s.ts[drop] as number) <= cut || s.ts.length - drop > cap)) drop++;
      if (drop > 0) {
        s.ts.splice(0, drop);
        s.ids.splice(0, drop);
        s.obs.splice(0, drop);
        corr.entries -= drop;
      }
    }
    while (corr.entries > this.#opts.maxEntriesPerRule && corr.groups.size > 1) this.#evictOldest(corr);
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
        },
        out,
      );
      return;
    }
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
