// The decision hub: the one writer of decisions. Every change of the response engine is persisted
// (revision and set together), signed once as a delta and fanned out, in revision order, to every
// stream subscriber; new subscribers get a signed snapshot or the delta since their revision.
import type { KeyObject } from 'node:crypto';
import { signDecisionDelta, signDecisionSet } from '../../common/decision-jws.js';
import type { Decision } from '../../common/decisions.js';
import { EdgewardError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { Alert } from '../correlate/index.js';
import type { ResponseEngine, ResponseOutcome } from '../playbooks/index.js';
import type { SiemStore } from '../store/index.js';
import { AgentLedger } from './agents.js';
import { sseComment, sseFrame } from './sse.js';

export interface DecisionSigner {
  readonly key: KeyObject;
  /** Key id in the JWS header: hex SHA-256 of the signing certificate's SubjectPublicKeyInfo. */
  readonly kid: string;
}

/** One open stream. `sent` is the revision the subscriber holds after what we wrote. */
export interface Subscriber {
  readonly identity: string;
  sent: number;
  /** Writes a frame; false when the subscriber is too far behind (it is then closed). */
  send(frame: string): boolean;
  close(): void;
}

export interface Signed {
  readonly kind: 'snapshot' | 'delta' | 'current';
  readonly revision: number;
  readonly jws?: string;
}

export interface HubOptions {
  readonly engine: ResponseEngine;
  readonly store: SiemStore;
  readonly signer: DecisionSigner;
  readonly now: () => number;
  readonly log: Logger;
  readonly maxSubscribers?: number;
  /** Called after a change is durable and published (CA link, metrics, audit). */
  readonly onPublished?: (change: PublishedChange) => void;
}

export interface PublishedChange {
  readonly revision: number;
  readonly upserts: readonly Decision[];
  readonly removals: readonly string[];
  /** From the engine's change to the last subscriber's write (persist, sign, fan-out). */
  readonly publishMs: number;
}

export class DecisionHub {
  private readonly o: HubOptions;
  private readonly subs = new Set<Subscriber>();
  readonly ledger: AgentLedger;
  private signer: DecisionSigner;
  /** Serialises persistence order with fan-out order: revisions go out strictly ascending. */
  private chain: Promise<void> = Promise.resolve();
  private snapshot: { revision: number; kid: string; jws: Promise<string> } | null = null;
  private deltas = new Map<number, Promise<string>>();
  private deltasAt = -1;
  published = 0;
  dropped = 0;

  constructor(o: HubOptions) {
    this.o = o;
    this.signer = o.signer;
    this.ledger = new AgentLedger(o.engine.revision, o.now());
  }

  get revision(): number {
    return this.o.engine.revision;
  }

  get engine(): ResponseEngine {
    return this.o.engine;
  }

  get subscribers(): number {
    return this.subs.size;
  }

  get kid(): string {
    return this.signer.kid;
  }

  /** A renewed identity brings a new key: later documents are signed with it. */
  setSigner(s: DecisionSigner): void {
    this.signer = s;
    this.snapshot = null;
    this.deltas.clear();
  }

  // ---- changes ----

  /**
   * Runs one engine operation; if it moved the revision, persists the change before anything is
   * published, then signs and fans it out. Returns the operation's result.
   */
  change<T>(op: (engine: ResponseEngine, now: number) => T): T {
    const engine = this.o.engine;
    const before = engine.revision;
    const pendingBefore = engine.pendingEdits;
    const now = this.o.now();
    const result = op(engine, now);
    const after = engine.revision;
    if (after === before) {
      // Pending decisions may have changed (blast-radius cap, reject): persist them alone.
      if (engine.pendingEdits !== pendingBefore) {
        this.o.store.saveDecisionChanges({
          revision: after,
          upserts: [],
          removals: [],
          at: now,
          pending: engine.pending(),
        });
      }
      return result;
    }
    const t0 = performance.now();
    const answer = engine.deltaSince(before, now);
    if (answer.kind !== 'delta') throw new TypeError('the engine lost its own change log');
    const delta = answer.delta;
    this.o.store.saveDecisionChanges({
      revision: after,
      upserts: delta.upserts,
      removals: delta.removals,
      at: now,
      pending: engine.pending(),
    });
    const signer = this.signer;
    const signed = signDecisionDelta(delta, signer.key, signer.kid);
    this.chain = this.chain.then(async () => {
      let jws: string;
      try {
        jws = await signed;
      } catch (err) {
        this.o.log.error({ err, revision: after }, 'could not sign a decision delta; subscribers resync');
        for (const s of [...this.subs]) this.drop(s);
        return;
      }
      this.fanOut(delta.from, delta.revision, jws);
      this.ledger.published(after, this.o.now());
      this.published++;
      this.o.onPublished?.({
        revision: after,
        upserts: delta.upserts,
        removals: delta.removals,
        publishMs: performance.now() - t0,
      });
    });
    return result;
  }

  handleAlerts(alerts: readonly Alert[]): ResponseOutcome {
    return this.change((e, now) => e.handleAlerts(alerts, now));
  }

  /** Removes expired decisions (one new revision if any expired). */
  expire(): string[] {
    return this.change((e, now) => e.expire(now));
  }

  private fanOut(from: number, revision: number, jws: string): void {
    const frame = sseFrame('delta', jws, revision);
    for (const s of this.subs) {
      if (s.sent >= revision) continue; // it got a snapshot or delta at or past this already
      if (s.sent !== from) {
        this.drop(s); // cannot happen in order; a reconnect resyncs it
        continue;
      }
      s.sent = revision;
      if (!s.send(frame)) this.drop(s);
    }
  }

  private drop(s: Subscriber): void {
    this.unsubscribe(s);
    this.dropped++;
    s.close();
  }

  // ---- reading the signed state ----

  private signedSnapshot(): Promise<string> {
    const rev = this.o.engine.revision;
    const signer = this.signer;
    if (this.snapshot?.revision !== rev || this.snapshot.kid !== signer.kid) {
      const jws = signDecisionSet(this.o.engine.snapshot(this.o.now()), signer.key, signer.kid);
      this.snapshot = { revision: rev, kid: signer.kid, jws };
      jws.catch(() => {
        if (this.snapshot?.jws === jws) this.snapshot = null;
      });
    }
    return this.snapshot.jws;
  }

  /** What a verifier at `from` (null: nothing applied) needs now: current, a delta or a snapshot. */
  signedSince(from: number | null): Promise<Signed> {
    const engine = this.o.engine;
    const rev = engine.revision;
    if (from !== null && from === rev && from > 0) return Promise.resolve({ kind: 'current', revision: rev });
    const answer =
      from === null || from === 0 ? { kind: 'snapshot' as const } : engine.deltaSince(from, this.o.now());
    if (answer.kind === 'current') return Promise.resolve({ kind: 'current', revision: rev });
    if (answer.kind === 'snapshot')
      return this.signedSnapshot().then((jws) => ({ kind: 'snapshot', revision: rev, jws }));
    if (this.deltasAt !== rev) {
      this.deltas.clear();
      this.deltasAt = rev;
    }
    let p = this.deltas.get(answer.delta.from);
    if (p === undefined) {
      p = signDecisionDelta(answer.delta, this.signer.key, this.signer.kid);
      if (this.deltas.size < 1024) this.deltas.set(answer.delta.from, p);
      p.catch(() => this.deltas.delete(answer.delta.from));
    }
    return p.then((jws) => ({ kind: 'delta', revision: rev, jws }));
  }

  // ---- subscribers ----

  /**
   * Adds a stream subscriber: its first frames (snapshot or delta, then `ready`) are written in
   * the same order as the fan-out, so it never sees a delta that does not follow what it holds.
   */
  subscribe(s: Subscriber, from: number | null): Promise<void> {
    if (this.subs.size >= (this.o.maxSubscribers ?? 20_000)) {
      return Promise.reject(new EdgewardError('ERR_SIEM_STREAM_LIMIT'));
    }
    const start = this.chain.then(async () => {
      const first = await this.signedSince(from);
      if (first.kind === 'current') s.sent = first.revision;
      else {
        s.sent = first.revision;
        if (!s.send(sseFrame(first.kind, first.jws as string, first.revision))) return s.close();
      }
      if (!s.send(sseFrame('ready', JSON.stringify({ revision: s.sent, kid: this.signer.kid }))))
        return s.close();
      this.subs.add(s);
      this.ledger.connect(s.identity, this.o.now());
    });
    this.chain = start.catch(() => undefined);
    return start;
  }

  unsubscribe(s: Subscriber): void {
    if (this.subs.delete(s)) this.ledger.disconnect(s.identity, this.o.now());
  }

  heartbeat(): void {
    const frame = sseComment(`hb ${this.o.engine.revision}`);
    for (const s of this.subs) if (!s.send(frame)) this.drop(s);
  }

  /** Waits until every change so far has been fanned out (tests, shutdown). */
  settled(): Promise<void> {
    return this.chain;
  }

  closeAll(): void {
    for (const s of [...this.subs]) {
      this.unsubscribe(s);
      s.close();
    }
  }
}
