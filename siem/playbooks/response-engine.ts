// The response core: alerts in, versioned decisions out. Pure state (no clock, no I/O): the
// caller passes `now`, persists the changes and signs the snapshots and deltas it hands out.
import { randomUUID } from 'node:crypto';
import { canonicalScope } from '../../common/decision-scope.js';
import type {
  Decision,
  DecisionAction,
  DecisionDelta,
  DecisionScope,
  DecisionSet,
} from '../../common/decisions.js';
import { EdgewardError } from '../../common/errors.js';
import type { Alert } from '../correlate/index.js';
import { isAllowlisted, isProtected, scopeKey } from './scope.js';
import type {
  DecisionBudget,
  Escalation,
  Playbook,
  PlaybookConfig,
  ResponseSettings,
} from '../../policies/index.js';

const MINUTE = 60_000;
const MAX_ALERTS = 100;
const MAX_LOG = 1000;
const MAX_PENDING = 10_000;

/** The key of one scope under one action (active and pending decisions are indexed by it). */
const actionKey = (scope: DecisionScope, action: DecisionAction): string =>
  `${scopeKey(scope)}\u001f${action}`;
const MAX_SIMULATED = 1000;
const MAX_HISTORY_KEYS = 100_000;

export interface Proposal {
  readonly scope: DecisionScope;
  readonly action: DecisionAction;
  readonly ttlMs: number;
  readonly reason: string;
  readonly alerts: readonly string[];
  readonly playbook: string | undefined;
}

export interface PendingDecision extends Proposal {
  readonly id: string;
  readonly createdAt: number;
  /** Why it waits: the blast-radius cap was reached. */
  readonly why: 'blast-radius';
}

export interface SimulatedDecision extends Proposal {
  readonly at: number;
}

export interface Skipped {
  readonly alertId: string;
  readonly playbook: string;
  readonly reason: 'allowlisted' | 'protected' | 'no-value' | 'invalid-scope' | 'pending-full';
  readonly scope?: DecisionScope;
}

export interface ResponseOutcome {
  /** Decisions created or extended (enforced), at `revision`. */
  readonly applied: readonly Decision[];
  readonly pending: readonly PendingDecision[];
  readonly simulated: readonly SimulatedDecision[];
  readonly skipped: readonly Skipped[];
  readonly revision: number;
}

export interface ManualDecision {
  readonly scope: DecisionScope;
  readonly action: DecisionAction;
  readonly ttlMs: number;
  readonly reason: string;
}

export type DeltaAnswer =
  | { readonly kind: 'current' }
  | { readonly kind: 'snapshot' }
  | { readonly kind: 'delta'; readonly delta: DecisionDelta };

/** What survives a restart: the revision must never go back, so it is persisted with the set. */
export interface ResponseState {
  readonly revision: number;
  readonly decisions: readonly Decision[];
  readonly pending: readonly PendingDecision[];
}

interface LogEntry {
  readonly revision: number;
  readonly upserts: readonly Decision[];
  readonly removals: readonly string[];
}

/** Times of one reporter's charges in the last minute: all of them, and those for joint alerts. */
interface Spent {
  times: number[];
  joint: number[];
}

/** Drops the times at or before `cut` from the front of a sorted list (in place). */
function dropUntil(times: number[], cut: number): void {
  let k = 0;
  while (k < times.length && (times[k] as number) <= cut) k++;
  if (k > 0) times.splice(0, k);
}

/**
 * One budget of automatic new decisions over a rolling minute, charged per reporter: a decision
 * is charged to one of the reporters whose evidence raised its alert, so a reporter flooding the
 * SIEM spends its own share and never the share of a reporter whose evidence it played no part in.
 * An alert that one reporter's evidence alone raised (`Alert.alone`) is charged to that reporter
 * (the one with the most room, when several); an alert that needed several reporters' evidence (a
 * joint alert) is charged to the one of them with the most room, and only from that reporter's
 * joint share (`sharedEvidence`): forged events joined to another reporter's evidence can spend at
 * most that part of its share, never what its own evidence alone raises. `maxPerMinute` is a total over all reporters (Infinity: none).
 */
class MinuteBudget {
  private all: number[] = [];
  private readonly byReporter = new Map<string, Spent>();

  constructor(private readonly limits: DecisionBudget) {}

  private prune(now: number): void {
    const cut = now - MINUTE;
    // Every charge is in `all` too: when none of them expired, no reporter's did.
    if (this.all.length === 0 || (this.all[0] as number) > cut) return;
    dropUntil(this.all, cut);
    for (const [r, s] of this.byReporter) {
      dropUntil(s.times, cut);
      dropUntil(s.joint, cut);
      if (s.times.length === 0) this.byReporter.delete(r);
    }
  }

  /**
   * Evidence without a reporter (rule tests, replays of events stored without one) is held by the
   * total only, as the correlator holds it by the rule's caps only; with no total, it is one reporter.
   */
  private totalOnly(r: string): boolean {
    return r === '' && this.limits.maxPerMinute !== Infinity;
  }

  /**
   * The reporter to charge and whether as a joint alert, or null when no reporter of the alert has
   * room. A reporter whose evidence alone raised the alert pays from its whole share; failing one
   * with room, the others pay from their joint share.
   */
  payer(alert: Alert, now: number): { reporter: string; joint: boolean } | null {
    this.prune(now);
    if (this.all.length >= this.limits.maxPerMinute) return null;
    const reporters = alert.reporters ?? [];
    if (reporters.length === 0) {
      const r = this.pick([''], false);
      return r === null ? null : { reporter: r, joint: false };
    }
    const alone = alert.alone ?? (reporters.length === 1 ? reporters : []);
    const own = alone.length === 0 ? null : this.pick(alone, false);
    if (own !== null) return { reporter: own, joint: false };
    if (reporters.length === 1) return null;
    const joint = this.pick(reporters, true);
    return joint === null ? null : { reporter: joint, joint: true };
  }

  private pick(reporters: readonly string[], joint: boolean): string | null {
    let best: string | null = null;
    let used = Infinity;
    for (const r of reporters) {
      const s = this.byReporter.get(r);
      const n = s?.times.length ?? 0;
      if ((n >= this.limits.perReporter && !this.totalOnly(r)) || n >= used) continue;
      if (joint && (s?.joint.length ?? 0) >= this.limits.sharedEvidence) continue;
      best = r;
      used = n;
    }
    return best;
  }

  charge(reporter: string, joint: boolean, now: number): void {
    this.all.push(now);
    let s = this.byReporter.get(reporter);
    if (s === undefined) {
      s = { times: [], joint: [] };
      this.byReporter.set(reporter, s);
    }
    s.times.push(now);
    if (joint) s.joint.push(now);
  }
}

export interface ResponseEngineOptions {
  readonly trustDomain: string;
  readonly config: PlaybookConfig;
  readonly newId?: () => string;
}

export class ResponseEngine {
  private readonly td: string;
  private readonly settings: ResponseSettings;
  private readonly byRule = new Map<string, Playbook[]>();
  private readonly newId: () => string;
  private currentRevision = 0;
  /** Active decisions by id, and by scope+action for merging repeats. */
  private readonly activeById = new Map<string, Decision>();
  private readonly byScope = new Map<string, string>();
  private readonly pendingById = new Map<string, PendingDecision>();
  /** Pending ids by scope and action: a storm of proposals must not scan the whole list each. */
  private readonly pendingByScope = new Map<string, string>();
  private pendingEditCount = 0;
  private readonly simulatedLog: SimulatedDecision[] = [];
  /** Creation times of past decisions per scope, for escalation. */
  private readonly history = new Map<string, number[]>();
  /** Automatic new decisions in the last minute, for the blast-radius caps. */
  private readonly general: MinuteBudget;
  private readonly reserved: MinuteBudget;
  private readonly reservedRules: ReadonlySet<string>;
  private log: LogEntry[] = [];
  /** Lowest `from` a delta can start at (older verifiers need a snapshot). */
  private logBase = 0;

  constructor(opts: ResponseEngineOptions) {
    this.td = opts.trustDomain;
    this.settings = opts.config.settings;
    this.newId = opts.newId ?? randomUUID;
    this.general = new MinuteBudget(this.settings);
    this.reserved = new MinuteBudget(this.settings.reserved);
    this.reservedRules = new Set(this.settings.reserved.rules);
    for (const p of opts.config.playbooks) {
      for (const r of p.rules) {
        const list = this.byRule.get(r) ?? [];
        list.push(p);
        this.byRule.set(r, list);
      }
    }
  }

  get revision(): number {
    return this.currentRevision;
  }

  /** Turns alerts into decisions (one new revision for the whole batch if anything changed). */
  handleAlerts(alerts: readonly Alert[], now: number): ResponseOutcome {
    const applied = new Map<string, Decision>();
    const pending: PendingDecision[] = [];
    const simulated: SimulatedDecision[] = [];
    const skipped: Skipped[] = [];
    const rev = this.currentRevision + 1;
    for (const alert of alerts) {
      for (const pb of this.byRule.get(alert.ruleId) ?? []) {
        for (const act of pb.actions) {
          const raw =
            alert.groupBy[act.from] ??
            (alert.trigger as Readonly<Record<string, string | number | undefined>>)[act.from];
          if (raw === undefined) {
            skipped.push({ alertId: alert.id, playbook: pb.id, reason: 'no-value' });
            continue;
          }
          let scope: DecisionScope;
          try {
            scope = canonicalScope({ type: act.scope, value: String(raw) });
          } catch {
            const given = { type: act.scope, value: String(raw).slice(0, 256) };
            skipped.push({ alertId: alert.id, playbook: pb.id, reason: 'invalid-scope', scope: given });
            continue;
          }
          if (isProtected(scope)) {
            skipped.push({ alertId: alert.id, playbook: pb.id, reason: 'protected', scope });
            continue;
          }
          if (isAllowlisted(scope, this.settings.allowlist)) {
            skipped.push({ alertId: alert.id, playbook: pb.id, reason: 'allowlisted', scope });
            continue;
          }
          const proposal: Proposal = {
            scope,
            action: act.action,
            ttlMs: this.escalatedTtl(scope, act.ttlMs, pb.escalation ?? this.settings.escalation, now),
            reason: `${pb.reason ?? alert.title} (rule ${alert.ruleId})`.slice(0, 512),
            alerts: [alert.id],
            playbook: pb.id,
          };
          if (pb.simulate || this.settings.simulateRules.includes(alert.ruleId)) {
            const sim = { ...proposal, at: now };
            simulated.push(sim);
            this.simulatedLog.push(sim);
            if (this.simulatedLog.length > MAX_SIMULATED) this.simulatedLog.shift();
            continue;
          }
          const existing = this.findActive(scope, act.action);
          const budget = this.reservedRules.has(alert.ruleId) ? this.reserved : this.general;
          const payer = existing === undefined ? budget.payer(alert, now) : null;
          if (existing === undefined && payer === null) {
            const p = this.addPending(proposal, now);
            if (p === null)
              skipped.push({ alertId: alert.id, playbook: pb.id, reason: 'pending-full', scope });
            else pending.push(p);
            continue;
          }
          const d = this.apply(proposal, now, rev, existing);
          if (d !== null) applied.set(d.id, d);
          if (payer !== null) budget.charge(payer.reporter, payer.joint, now);
        }
      }
    }
    const changed = [...applied.values()];
    if (changed.length > 0) this.commit(rev, changed, []);
    return { applied: changed, pending, simulated, skipped, revision: this.currentRevision };
  }

  /** An analyst's decision: allowlist and control-plane protection still win. */
  createManual(m: ManualDecision, now: number): Decision {
    const scope = this.checkScope(m.scope);
    if (!(m.ttlMs > 0 && m.ttlMs <= 365 * 86_400_000)) throw new TypeError('ttlMs out of range');
    const rev = this.currentRevision + 1;
    const proposal: Proposal = {
      ...m,
      scope,
      reason: m.reason.slice(0, 512),
      alerts: [],
      playbook: undefined,
    };
    const existing = this.findActive(scope, m.action);
    const d = this.apply(proposal, now, rev, existing);
    if (d === null) return existing as Decision;
    this.commit(rev, [d], []);
    return d;
  }

  /** Enforces a pending decision (its TTL counts from approval). */
  approve(pendingId: string, now: number): Decision {
    const p = this.pendingById.get(pendingId);
    if (p === undefined) throw new EdgewardError('ERR_SIEM_PENDING_UNKNOWN');
    const scope = this.checkScope(p.scope);
    this.dropPending(p);
    const rev = this.currentRevision + 1;
    const existing = this.findActive(scope, p.action);
    const d = this.apply({ ...p, scope }, now, rev, existing);
    if (d === null) return existing as Decision;
    this.commit(rev, [d], []);
    return d;
  }

  reject(pendingId: string): PendingDecision {
    const p = this.pendingById.get(pendingId);
    if (p === undefined) throw new EdgewardError('ERR_SIEM_PENDING_UNKNOWN');
    this.dropPending(p);
    return p;
  }

  /** Lifts an active decision; the history stays, so a repeat offence still escalates. */
  lift(decisionId: string): Decision {
    const d = this.activeById.get(decisionId);
    if (d === undefined) throw new EdgewardError('ERR_SIEM_DECISION_UNKNOWN');
    this.remove(d);
    this.commit(this.currentRevision + 1, [], [d.id]);
    return d;
  }

  /** Removes decisions past their expiry; returns their ids (one revision if any). */
  expire(now: number): string[] {
    const gone: string[] = [];
    for (const d of this.activeById.values()) {
      if (d.expiresAt <= now) gone.push(d.id);
    }
    for (const id of gone) this.remove(this.activeById.get(id) as Decision);
    if (gone.length > 0) this.commit(this.currentRevision + 1, [], gone);
    return gone;
  }

  snapshot(now: number): DecisionSet {
    return {
      trustDomain: this.td,
      revision: this.currentRevision,
      issuedAt: now,
      decisions: [...this.activeById.values()],
    };
  }

  /** The change from `from` to the current revision, or whether a snapshot is needed instead. */
  deltaSince(from: number, now: number): DeltaAnswer {
    if (from === this.currentRevision) return { kind: 'current' };
    if (!Number.isSafeInteger(from) || from > this.currentRevision || from < this.logBase)
      return { kind: 'snapshot' };
    const upserts = new Map<string, Decision>();
    const removals = new Set<string>();
    for (const e of this.log) {
      if (e.revision <= from) continue;
      for (const id of e.removals) {
        upserts.delete(id);
        removals.add(id);
      }
      for (const d of e.upserts) {
        removals.delete(d.id);
        upserts.set(d.id, d);
      }
    }
    return {
      kind: 'delta',
      delta: {
        trustDomain: this.td,
        from,
        revision: this.currentRevision,
        issuedAt: now,
        upserts: [...upserts.values()],
        removals: [...removals],
      },
    };
  }

  /** Counts changes to the pending list (added, approved, rejected): persist when it moves. */
  get pendingEdits(): number {
    return this.pendingEditCount;
  }

  pending(): PendingDecision[] {
    return [...this.pendingById.values()];
  }

  simulated(): SimulatedDecision[] {
    return [...this.simulatedLog];
  }

  active(): Decision[] {
    return [...this.activeById.values()];
  }

  exportState(): ResponseState {
    return { revision: this.currentRevision, decisions: this.active(), pending: this.pending() };
  }

  /** Restores persisted state into a fresh engine; deltas from before it need a snapshot. */
  importState(s: ResponseState): void {
    if (this.currentRevision !== 0 || this.activeById.size !== 0)
      throw new TypeError('importState needs a fresh engine');
    this.currentRevision = s.revision;
    this.logBase = s.revision;
    for (const d of s.decisions) {
      this.activeById.set(d.id, d);
      this.byScope.set(actionKey(d.scope, d.action), d.id);
      this.remember(d.scope, d.createdAt);
    }
    for (const p of s.pending) this.keepPending(p);
  }

  /**
   * Takes a newer state that another replica stored (one decision set, one revision sequence in a
   * shared store). A change of exactly one revision enters the change log, so a follower at the
   * previous revision gets a delta; a longer jump is not known step by step, and older followers
   * get a snapshot. Returns whether anything was taken (a state not newer is ignored, unless
   * `replace`: after this engine's own change was refused by the store, the stored state replaces
   * whatever the engine made that was never stored, and its followers start again from a snapshot).
   */
  adoptState(s: ResponseState, replace = false): boolean {
    if (!Number.isSafeInteger(s.revision) || s.revision < 0) return false;
    if (s.revision <= this.currentRevision && !replace) return false;
    const next = new Map(s.decisions.map((d) => [d.id, d]));
    const upserts = s.decisions.filter((d) => {
      const had = this.activeById.get(d.id);
      return had === undefined || had.revision !== d.revision;
    });
    const removals = [...this.activeById.keys()].filter((id) => !next.has(id));
    for (const id of removals) this.remove(this.activeById.get(id) as Decision);
    for (const d of upserts) {
      const had = this.activeById.get(d.id);
      if (had !== undefined) this.remove(had);
      else this.remember(d.scope, d.createdAt);
      this.activeById.set(d.id, d);
      this.byScope.set(actionKey(d.scope, d.action), d.id);
    }
    this.pendingById.clear();
    this.pendingByScope.clear();
    for (const p of s.pending) this.keepPending(p);
    this.pendingEditCount++;
    if (s.revision === this.currentRevision + 1 && !replace) this.commit(s.revision, upserts, removals);
    else {
      this.currentRevision = s.revision;
      this.log = [];
      this.logBase = s.revision;
    }
    return true;
  }

  /**
   * Takes a change another replica stored, as its signed delta says (verified by the caller):
   * only on top of exactly this engine's revision, and of this trust domain. It enters the change
   * log, so followers at `from` get this delta. The pending list is the store's to tell (it is
   * not in deltas): it stays. Returns whether it was taken.
   */
  applyDelta(d: DecisionDelta): boolean {
    if (d.from !== this.currentRevision || d.revision <= d.from || d.trustDomain !== this.td) return false;
    for (const id of d.removals) {
      const had = this.activeById.get(id);
      if (had !== undefined) this.remove(had);
    }
    for (const u of d.upserts) {
      const had = this.activeById.get(u.id);
      if (had !== undefined) this.remove(had);
      else this.remember(u.scope, u.createdAt);
      this.activeById.set(u.id, u);
      this.byScope.set(actionKey(u.scope, u.action), u.id);
    }
    this.commit(d.revision, d.upserts, d.removals);
    return true;
  }

  /**
   * Brings decisions stored before scopes had one canonical form (an upgrade) to it: each is
   * rewritten canonical (same id), or lifted when it has no valid form or its canonical form is
   * protected or allowlisted (::ffff:127.0.0.1 was the allowlisted 127.0.0.1 all along) or already
   * decided. Pending ones likewise. One revision if anything changed; run it through the hub.
   */
  repairScopes(): { rewritten: string[]; lifted: string[] } {
    const canonical = (scope: DecisionScope): DecisionScope | null => {
      try {
        return this.checkScope(scope);
      } catch {
        return null;
      }
    };
    const same = (a: DecisionScope, b: DecisionScope): boolean => a.type === b.type && a.value === b.value;
    const rev = this.currentRevision + 1;
    const rewritten: Decision[] = [];
    const lifted: string[] = [];
    for (const d of [...this.activeById.values()]) {
      const scope = canonical(d.scope);
      if (scope !== null && same(scope, d.scope)) continue;
      this.remove(d);
      if (scope === null || this.findActive(scope, d.action) !== undefined) {
        lifted.push(d.id);
        continue;
      }
      const fixed: Decision = { ...d, scope, revision: rev };
      this.activeById.set(fixed.id, fixed);
      this.byScope.set(actionKey(scope, fixed.action), fixed.id);
      rewritten.push(fixed);
    }
    for (const p of this.pending()) {
      const scope = canonical(p.scope);
      if (scope !== null && same(scope, p.scope)) continue;
      this.dropPending(p);
      if (scope !== null && !this.pendingByScope.has(actionKey(scope, p.action)))
        this.keepPending({ ...p, scope });
    }
    if (rewritten.length > 0 || lifted.length > 0) this.commit(rev, rewritten, lifted);
    return { rewritten: rewritten.map((d) => d.id), lifted };
  }

  /** The canonical scope (checked on that form), or a refusal; its cause names what is wrong. */
  private checkScope(given: DecisionScope): DecisionScope {
    let scope: DecisionScope;
    try {
      scope = canonicalScope(given);
    } catch (err) {
      throw new EdgewardError('ERR_SIEM_DECISION_SCOPE', undefined, { cause: err });
    }
    if (isProtected(scope)) throw new EdgewardError('ERR_SIEM_DECISION_PROTECTED');
    if (isAllowlisted(scope, this.settings.allowlist))
      throw new EdgewardError('ERR_SIEM_DECISION_ALLOWLISTED');
    return scope;
  }

  private findActive(scope: DecisionScope, action: DecisionAction): Decision | undefined {
    const id = this.byScope.get(actionKey(scope, action));
    return id === undefined ? undefined : this.activeById.get(id);
  }

  private addPending(p: Proposal, now: number): PendingDecision | null {
    const same = this.pendingByScope.get(actionKey(p.scope, p.action));
    if (same !== undefined) return this.pendingById.get(same) as PendingDecision;
    if (this.pendingById.size >= MAX_PENDING) return null;
    const pd: PendingDecision = { ...p, id: this.newId(), createdAt: now, why: 'blast-radius' };
    this.keepPending(pd);
    return pd;
  }

  private keepPending(p: PendingDecision): void {
    this.pendingById.set(p.id, p);
    this.pendingByScope.set(actionKey(p.scope, p.action), p.id);
    this.pendingEditCount++;
  }

  private dropPending(p: PendingDecision): void {
    this.pendingById.delete(p.id);
    this.pendingByScope.delete(actionKey(p.scope, p.action));
    this.pendingEditCount++;
  }

  private escalatedTtl(scope: DecisionScope, base: number, esc: Escalation, now: number): number {
    const past = (this.history.get(scopeKey(scope)) ?? []).filter((t) => t > now - esc.windowMs).length;
    return Math.min(base * Math.pow(esc.factor, past), Math.max(esc.maxTtlMs, base));
  }

  private remember(scope: DecisionScope, at: number): void {
    const key = scopeKey(scope);
    const list = this.history.get(key) ?? [];
    this.history.delete(key);
    list.push(at);
    if (list.length > 64) list.shift();
    this.history.set(key, list);
    if (this.history.size > MAX_HISTORY_KEYS) {
      const first = this.history.keys().next();
      if (first.done !== true) this.history.delete(first.value);
    }
  }

  /** Creates a decision or extends the active one on the same scope; null if nothing changed. */
  private apply(p: Proposal, now: number, rev: number, existing: Decision | undefined): Decision | null {
    this.remember(p.scope, now);
    const expiresAt = now + p.ttlMs;
    if (existing !== undefined) {
      const alerts = [...new Set([...existing.alerts, ...p.alerts])].slice(-MAX_ALERTS);
      if (expiresAt <= existing.expiresAt && alerts.length === existing.alerts.length) return null;
      const d: Decision = {
        ...existing,
        revision: rev,
        expiresAt: Math.max(expiresAt, existing.expiresAt),
        alerts,
      };
      this.activeById.set(d.id, d);
      return d;
    }
    const d: Decision = {
      id: this.newId(),
      revision: rev,
      scope: p.scope,
      action: p.action,
      reason: p.reason,
      createdAt: now,
      expiresAt,
      alerts: [...p.alerts].slice(-MAX_ALERTS),
    };
    this.activeById.set(d.id, d);
    this.byScope.set(actionKey(d.scope, d.action), d.id);
    return d;
  }

  private remove(d: Decision): void {
    this.activeById.delete(d.id);
    const k = actionKey(d.scope, d.action);
    if (this.byScope.get(k) === d.id) this.byScope.delete(k);
  }

  private commit(rev: number, upserts: readonly Decision[], removals: readonly string[]): void {
    this.currentRevision = rev;
    this.log.push({ revision: rev, upserts, removals });
    if (this.log.length > MAX_LOG) {
      const dropped = this.log.shift() as LogEntry;
      this.logBase = dropped.revision;
    }
  }
}
