// The decision hub: the one writer of decisions. Every change of the response engine is persisted
// (revision and set together), signed once as a delta and handed, in revision order, to every
// publisher (the SSE streams of sse.ts, or another transport); a follower that joins gets a
// signed snapshot or the delta since its revision (signedSince, in order with the changes).
import type { KeyObject } from 'node:crypto';
import { signDecisionDelta, signDecisionSet } from '../../common/decision-jws.js';
import type { Decision, DecisionDelta } from '../../common/decisions.js';
import type { Logger } from '../../common/log.js';
import type { Alert } from '../correlate/index.js';
import type { ResponseEngine, ResponseOutcome } from '../playbooks/index.js';
import type { AckStore, DecisionChanges, SiemStore } from '../store/index.js';
import { AgentLedger } from './agents.js';

export interface DecisionSigner {
  readonly key: KeyObject;
  /** Key id in the JWS header: hex SHA-256 of the signing certificate's SubjectPublicKeyInfo. */
  readonly kid: string;
}

/** One signed change, as a publisher carries it: the delta from revision `from` to `revision`. */
export interface DecisionMessage {
  readonly kind: 'delta';
  readonly from: number;
  readonly revision: number;
  /** The compact JWS of the delta (common/decision-jws.ts). */
  readonly jws: string;
}

/**
 * Where the hub's signed changes go. The hub calls it in revision order, one change at a time;
 * an adapter carries the messages to its followers and never throws back.
 */
export interface DecisionPublisher {
  /**
   * Only the changes this hub stored itself (a bus the replica that stored a change publishes to);
   * changes followed from another replica are not handed to it.
   */
  readonly ownOnly?: boolean;
  publish(m: DecisionMessage): void;
  /** A change could not be signed: every follower must start again from what signedSince gives. */
  resync(): void;
  /** The hub stops: followers are let go. */
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
  /** Where agents' acknowledgements are kept (default: in this process only). */
  readonly acks?: AckStore;
  readonly signer: DecisionSigner;
  readonly now: () => number;
  readonly log: Logger;
  /** Called after a change is durable and published (CA link, metrics, audit). */
  readonly onPublished?: (change: PublishedChange) => void;
}

export interface PublishedChange {
  readonly revision: number;
  readonly upserts: readonly Decision[];
  readonly removals: readonly string[];
  /** From the engine's change to the last publisher's return (persist, sign, publish). */
  readonly publishMs: number;
}

export class DecisionHub {
  private readonly o: HubOptions;
  private readonly publishers: DecisionPublisher[] = [];
  readonly ledger: AgentLedger;
  private signer: DecisionSigner;
  /** Serialises persistence order with fan-out order: revisions go out strictly ascending. */
  private chain: Promise<void> = Promise.resolve();
  /** Serialises the store's writes of changes: revisions are stored strictly ascending. */
  private saves: Promise<void> = Promise.resolve();
  private snapshot: { revision: number; kid: string; jws: Promise<string> } | null = null;
  private deltas = new Map<number, Promise<string>>();
  private deltasAt = -1;
  published = 0;

  constructor(o: HubOptions) {
    this.o = o;
    this.signer = o.signer;
    this.ledger = new AgentLedger(o.engine.revision, o.now(), o.acks);
  }

  get revision(): number {
    return this.o.engine.revision;
  }

  get engine(): ResponseEngine {
    return this.o.engine;
  }

  get kid(): string {
    return this.signer.kid;
  }

  /** Adds a publisher: it receives every change signed from now on. */
  addPublisher(p: DecisionPublisher): void {
    this.publishers.push(p);
  }

  /** A renewed identity brings a new key: later documents are signed with it. */
  setSigner(s: DecisionSigner): void {
    this.signer = s;
    this.snapshot = null;
    this.deltas.clear();
  }

  // ---- changes ----

  /**
   * Runs one engine operation at once; if it changed the decisions, persists the change (in
   * revision order, after every earlier one) before anything is published, then signs and fans
   * it out. Resolves with the operation's result once the change is stored; rejects with the
   * store's error (the change is then not published), or at once with the operation's own.
   */
  change<T>(op: (engine: ResponseEngine, now: number) => T): Promise<T> {
    return this.changeOnce(op).catch(async (err: unknown) => {
      // Another replica stored this revision first: take what it stored, then run the operation
      // again on that state (a few times at most, then the caller gets the conflict).
      for (let attempt = 1; ; attempt++) {
        if ((err as { code?: unknown }).code !== 'ERR_SIEM_REVISION_CONFLICT' || attempt > 3) throw err;
        await this.follow(true);
        try {
          return await this.changeOnce(op);
        } catch (again) {
          err = again;
        }
      }
    });
  }

  /**
   * Catches up with decisions other replicas stored (a store they share, whose adapter tells its
   * revision): when the stored revision is ahead of the engine's, the engine takes the stored
   * state and the change is published (a delta for one step, else followers start from a
   * snapshot), in order with this hub's own changes. `replace`: after a refused save, the stored
   * state replaces the engine's whatever its revision. Resolves with whether anything changed.
   */
  follow(replace = false): Promise<boolean> {
    if (this.o.store.revision === undefined) return Promise.resolve(false);
    return this.serially(() => this.followNow(replace));
  }

  /**
   * Takes a delta another replica stored, as signed on the bus and verified by the caller (with
   * this replica's key: `jws` is then the document every follower gets, unchanged). Applied only
   * on top of exactly the engine's revision; anything else (an older document: ignored; a gap: the
   * stored state is read instead, so followers never get a broken chain).
   */
  applyDelta(delta: DecisionDelta, jws: string): Promise<'applied' | 'old' | 'reloaded'> {
    return this.serially(async () => {
      const engine = this.o.engine;
      if (delta.revision <= engine.revision) return 'old';
      if (delta.from !== engine.revision || !engine.applyDelta(delta)) {
        await this.followNow(false);
        return 'reloaded';
      }
      const m: DecisionMessage = { kind: 'delta', from: delta.from, revision: delta.revision, jws };
      this.snapshot = null;
      this.chain = this.chain.then(() => {
        this.fanOut(m, false);
        this.ledger.published(delta.revision, this.o.now());
        this.published++;
      });
      return 'applied';
    });
  }

  /** Runs `fn` after every store write so far, before any later one. */
  private serially<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.saves.then(fn);
    this.saves = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Hands a change to the publishers (`own`: this hub stored it; else not to the ownOnly ones). */
  private fanOut(m: DecisionMessage, own: boolean): void {
    for (const p of this.publishers) {
      if (!own && p.ownOnly === true) continue;
      try {
        p.publish(m);
      } catch (err) {
        this.o.log.error({ err, revision: m.revision }, 'a decision publisher failed');
      }
    }
  }

  private async followNow(replace: boolean): Promise<boolean> {
    const store = this.o.store;
    const engine = this.o.engine;
    if (!replace && (await store.revision?.()) === engine.revision) return false;
    const state = await store.loadResponseState();
    const before = engine.revision;
    if (!engine.adoptState(state, replace)) return false;
    const now = this.o.now();
    const answer = replace ? { kind: 'snapshot' as const } : engine.deltaSince(before, now);
    this.snapshot = null;
    this.deltas.clear();
    this.chain = this.chain.then(async () => {
      const jws =
        answer.kind === 'delta'
          ? await signDecisionDelta(answer.delta, this.signer.key, this.signer.kid).catch(() => undefined)
          : undefined;
      if (answer.kind === 'delta' && jws !== undefined) {
        const m: DecisionMessage = {
          kind: 'delta',
          from: answer.delta.from,
          revision: answer.delta.revision,
          jws,
        };
        this.fanOut(m, false);
      } else for (const p of this.publishers) if (p.ownOnly !== true) p.resync();
      this.ledger.published(state.revision, this.o.now());
      this.published++;
    });
    return true;
  }

  private changeOnce<T>(op: (engine: ResponseEngine, now: number) => T): Promise<T> {
    const engine = this.o.engine;
    const before = engine.revision;
    const pendingBefore = engine.pendingEdits;
    const now = this.o.now();
    let result: T;
    try {
      result = op(engine, now);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const after = engine.revision;
    if (after === before) {
      // Pending decisions may have changed (blast-radius cap, reject): persist them alone.
      if (engine.pendingEdits === pendingBefore) return Promise.resolve(result);
      const saved = this.save({
        revision: after,
        upserts: [],
        removals: [],
        at: now,
        pending: engine.pending(),
      });
      return saved.then(() => result);
    }
    const t0 = performance.now();
    const answer = engine.deltaSince(before, now);
    if (answer.kind !== 'delta') return Promise.reject(new TypeError('the engine lost its own change log'));
    const delta = answer.delta;
    const saved = this.save({
      revision: after,
      upserts: delta.upserts,
      removals: delta.removals,
      at: now,
      pending: engine.pending(),
    });
    const signer = this.signer;
    const signed = signDecisionDelta(delta, signer.key, signer.kid);
    signed.catch(() => undefined);
    this.chain = this.chain
      .then(() => saved)
      .then(
        async () => {
          let jws: string;
          try {
            jws = await signed;
          } catch (err) {
            this.o.log.error({ err, revision: after }, 'could not sign a decision delta; followers resync');
            for (const p of this.publishers) p.resync();
            return;
          }
          const m: DecisionMessage = { kind: 'delta', from: delta.from, revision: delta.revision, jws };
          this.fanOut(m, true);
          this.ledger.published(after, this.o.now());
          this.published++;
          this.o.onPublished?.({
            revision: after,
            upserts: delta.upserts,
            removals: delta.removals,
            publishMs: performance.now() - t0,
          });
        },
        () => undefined,
      );
    return saved.then(() => result);
  }

  /** Stores one change after every change before it has been stored (or failed to be). */
  private save(c: DecisionChanges): Promise<void> {
    const saved = this.saves.then(() => this.o.store.saveDecisionChanges(c));
    this.saves = saved.catch(() => undefined);
    return saved;
  }

  handleAlerts(alerts: readonly Alert[]): Promise<ResponseOutcome> {
    return this.change((e, now) => e.handleAlerts(alerts, now));
  }

  /** Removes expired decisions (one new revision if any expired). */
  expire(): Promise<string[]> {
    return this.change((e, now) => e.expire(now));
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

  /**
   * Runs `fn` after every change so far has been published and before any later one is: a
   * follower's first frames, written here, never miss or repeat a change. Rejects as `fn` does.
   */
  inOrder<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Waits until every change so far has been stored and fanned out (tests, shutdown). */
  async settled(): Promise<void> {
    await this.saves;
    await this.chain;
  }

  /** Lets every publisher's followers go (shutdown). */
  close(): void {
    for (const p of this.publishers) p.close();
  }
}
