// Who may report to the SIEM, and how much: the reporter policy applied per event, the standing
// of a reporter's certificate (revoked at the CA, or under one of the SIEM's own decisions), and
// each reporter's event budget. Pure state; the HTTP adapter hands in the verified peer and `now`.
import type { Decision } from '../../common/decisions.js';
import type { EdgeEvent } from '../../common/events.js';
import { matchIdentity } from '../../common/identity.js';
import { normalizeSerial } from '../../common/x509.js';
import type { CompiledReporterPolicy, ReporterRefusal } from '../../policies/index.js';
import type { ReporterPeer } from './peer.js';

export type StandingRefusal = 'ERR_SIEM_REPORTER_REVOKED' | 'ERR_SIEM_REPORTER_QUARANTINED';

/** The SIEM's active decisions as far as they concern reporters: identities, serials, keys. */
interface QuarantineIndex {
  readonly revision: number;
  readonly identities: ReadonlySet<string>;
  readonly patterns: readonly string[];
  readonly serials: ReadonlySet<string>;
  readonly spkis: ReadonlySet<string>;
}

const isPattern = (v: string): boolean => v.split('/').some((s) => s === '*' || s === '**');

function indexOf(revision: number, decisions: readonly Decision[]): QuarantineIndex {
  const identities = new Set<string>();
  const patterns: string[] = [];
  const serials = new Set<string>();
  const spkis = new Set<string>();
  for (const d of decisions) {
    const v = d.scope.value;
    if (d.scope.type === 'identity' || d.scope.type === 'node') {
      if (isPattern(v)) patterns.push(v);
      else identities.add(v);
    } else if (d.scope.type === 'serial') serials.add(normalizeSerial(v));
    else if (d.scope.type === 'spki') spkis.add(v.toLowerCase());
  }
  return { revision, identities, patterns, serials, spkis };
}

/**
 * Revoked serials as the SIEM knows them: the CA's last verified CRL, plus the CA's revocation
 * events since (a revocation reaches the SIEM as an event before the next CRL poll).
 */
export class RevokedSerials {
  private crl: ReadonlySet<string> = new Set();
  private crlThisUpdate = -Infinity;
  /** From revocation events reported by the CA, kept until a CRL that lists them. */
  private readonly fromEvents = new Set<string>();

  has(serial: string): boolean {
    return this.crl.has(serial) || this.fromEvents.has(serial);
  }

  get size(): number {
    return this.crl.size + this.fromEvents.size;
  }

  /** Every serial known as revoked. */
  list(): string[] {
    return [...this.crl, ...this.fromEvents];
  }

  /** A verified CRL; an older one than the last applied is ignored (false). */
  applyCrl(serials: ReadonlySet<string>, thisUpdate: number): boolean {
    if (thisUpdate < this.crlThisUpdate) return false;
    this.crl = new Set([...serials].map(normalizeSerial));
    this.crlThisUpdate = thisUpdate;
    for (const s of this.fromEvents) if (this.crl.has(s)) this.fromEvents.delete(s);
    return true;
  }

  /** Learns from committed events: `revocation` reported by the CA (the caller checked that). */
  learn(events: readonly EdgeEvent[]): string[] {
    const added: string[] = [];
    for (const e of events) {
      if (e['event.action'] !== 'revocation' || e['observer.type'] !== 'ca') continue;
      const s = e['tls.client.x509.serial_number'];
      if (s === undefined) continue;
      const serial = normalizeSerial(s);
      // Bounded like the CRL itself: past it, the next CRL poll has them anyway.
      if (!this.has(serial) && this.fromEvents.size < 1_000_000) {
        this.fromEvents.add(serial);
        added.push(serial);
      }
    }
    return added;
  }
}

export interface GateOptions {
  readonly policy: CompiledReporterPolicy;
  readonly revoked: RevokedSerials;
  /** The response engine's revision and active decisions (the index is rebuilt per revision). */
  readonly decisions: () => { revision: number; active: () => readonly Decision[] };
  readonly now: () => number;
  /** Distinct reporters with a budget kept at once (least recently used ones start afresh). */
  readonly maxReporters?: number;
}

export interface Filtered {
  readonly accepted: EdgeEvent[];
  readonly refused: { readonly index: number; readonly code: ReporterRefusal }[];
}

export class ReporterGate {
  private readonly o: GateOptions;
  private index: QuarantineIndex = indexOf(-1, []);
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly maxReporters: number;

  constructor(o: GateOptions) {
    this.o = o;
    this.maxReporters = o.maxReporters ?? 100_000;
  }

  get policy(): CompiledReporterPolicy {
    return this.o.policy;
  }

  private quarantine(): QuarantineIndex {
    const d = this.o.decisions();
    if (d.revision !== this.index.revision) this.index = indexOf(d.revision, d.active());
    return this.index;
  }

  /** Whether the reporter's certificate may be heard at all: revoked, quarantined, or null. */
  standing(p: ReporterPeer): StandingRefusal | null {
    if (this.o.revoked.has(p.serial)) return 'ERR_SIEM_REPORTER_REVOKED';
    const q = this.quarantine();
    if (
      q.identities.has(p.identity) ||
      q.serials.has(p.serial) ||
      q.spkis.has(p.spki) ||
      q.patterns.some((pat) => matchIdentity(pat, p.identity))
    )
      return 'ERR_SIEM_REPORTER_QUARANTINED';
    return null;
  }

  private bucket(identity: string): { tokens: number; at: number } {
    const b = this.o.policy.policy.budgets;
    const t = this.o.now();
    let x = this.buckets.get(identity);
    if (x === undefined) {
      x = { tokens: b.eventsBurst, at: t };
      if (this.buckets.size >= this.maxReporters) {
        const first = this.buckets.keys().next();
        if (first.done !== true) this.buckets.delete(first.value);
      }
    } else {
      x.tokens = Math.min(b.eventsBurst, x.tokens + ((t - x.at) / 1000) * b.eventsPerSecond);
      x.at = t;
      this.buckets.delete(identity);
    }
    this.buckets.set(identity, x);
    return x;
  }

  /** Is there budget for any event now (checked before the body is read)? */
  hasBudget(identity: string): boolean {
    return this.bucket(identity).tokens >= 1;
  }

  /** Takes `n` events from the reporter's budget; false (nothing taken) when it has fewer. */
  spend(identity: string, n: number): boolean {
    const x = this.bucket(identity);
    if (x.tokens < n) return false;
    x.tokens -= n;
    return true;
  }

  /** Seconds until the reporter has `n` events of budget again (Retry-After). */
  retryAfter(identity: string, n: number): number {
    const x = this.bucket(identity);
    const rate = this.o.policy.policy.budgets.eventsPerSecond;
    return Math.max(1, Math.ceil((Math.min(n, this.o.policy.policy.budgets.eventsBurst) - x.tokens) / rate));
  }

  /** The events of one stamped batch the policy lets this reporter report, and the others. */
  filter(p: ReporterPeer, events: readonly EdgeEvent[]): Filtered {
    const policy = this.o.policy;
    // Nearly every batch is all accepted: its array is kept as it is, not copied.
    let refused: { index: number; code: ReporterRefusal }[] | undefined;
    for (let i = 0; i < events.length; i++) {
      const why = policy.check(p, events[i] as EdgeEvent);
      if (why !== null) (refused ??= []).push({ index: i, code: why });
    }
    if (refused === undefined) return { accepted: events as EdgeEvent[], refused: [] };
    const skip = new Set(refused.map((r) => r.index));
    return { accepted: events.filter((_, i) => !skip.has(i)), refused };
  }
}
