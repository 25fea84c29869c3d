// Who is subscribed to the decision stream, which revision each agent acknowledged, and how far
// behind it is (revisions, and ms since the first revision it has not acknowledged was published).
// The caller passes `now`. Acknowledgements are also written to an AckStore (shared by SIEM
// replicas, kept across restarts); live connections are this process's own.
import { ACK_HISTORY, type AckStore } from '../store/index.js';

export interface AgentView {
  readonly identity: string;
  /** Open stream connections of this identity. */
  readonly connected: number;
  /** Last acknowledged revision, or null if it never acknowledged. */
  readonly acked: number | null;
  readonly ackedAt: number | null;
  /** Revisions behind the current one (current when it never acknowledged). */
  readonly behind: number;
  /** ms since the oldest revision it has not acknowledged was published (0 when current). */
  readonly lagMs: number;
  readonly lastSeen: number;
}

interface AgentState {
  connected: number;
  acked: number | null;
  ackedAt: number | null;
  lastSeen: number;
  /** The latest acknowledgements, oldest first: [revision, at] (when each revision was applied). */
  history: [number, number][];
}

const MAX_AGENTS = 100_000;
const MAX_PUBLISHED = 4096;

export class AgentLedger {
  private readonly agents = new Map<string, AgentState>();
  /** Publish time of recent revisions (bounded; older ones count from the oldest kept). */
  private readonly publishTimes = new Map<number, number>();
  private currentRevision = 0;

  constructor(
    revision: number,
    now: number,
    private readonly acks?: AckStore,
  ) {
    this.currentRevision = revision;
    this.publishTimes.set(revision, now);
  }

  /**
   * Takes in what the AckStore holds (at start, and before a view of every agent, so that
   * acknowledgements made on another replica show): a stored acknowledgement newer than the one
   * known here replaces it.
   */
  async refresh(): Promise<void> {
    if (this.acks === undefined) return;
    for (const r of await this.acks.list(MAX_AGENTS)) {
      const known = this.agents.get(r.identity);
      if (known !== undefined && known.ackedAt !== null && known.ackedAt > r.ackedAt) continue;
      if (known === undefined && this.agents.size >= MAX_AGENTS) this.evictIdle();
      const a = known ?? { connected: 0, acked: null, ackedAt: null, lastSeen: r.ackedAt, history: [] };
      a.acked = r.acked;
      a.ackedAt = r.ackedAt;
      a.history = r.history.map(([rev, at]) => [rev, at]);
      a.lastSeen = Math.max(a.lastSeen, r.ackedAt);
      this.agents.set(r.identity, a);
    }
  }

  get revision(): number {
    return this.currentRevision;
  }

  published(revision: number, now: number): void {
    this.currentRevision = revision;
    this.publishTimes.set(revision, now);
    if (this.publishTimes.size > MAX_PUBLISHED) {
      const first = this.publishTimes.keys().next();
      if (first.done !== true) this.publishTimes.delete(first.value);
    }
  }

  private stateOf(identity: string, now: number): AgentState {
    let a = this.agents.get(identity);
    if (a === undefined) {
      if (this.agents.size >= MAX_AGENTS) this.evictIdle();
      a = { connected: 0, acked: null, ackedAt: null, lastSeen: now, history: [] };
      this.agents.set(identity, a);
    }
    a.lastSeen = now;
    return a;
  }

  private evictIdle(): void {
    // Drop the least recently seen disconnected agent; connected ones stay.
    let victim: string | undefined;
    let oldest = Infinity;
    for (const [id, a] of this.agents) {
      if (a.connected === 0 && a.lastSeen < oldest) {
        oldest = a.lastSeen;
        victim = id;
      }
    }
    if (victim !== undefined) this.agents.delete(victim);
  }

  connect(identity: string, now: number): void {
    this.stateOf(identity, now).connected++;
  }

  disconnect(identity: string, now: number): void {
    const a = this.agents.get(identity);
    if (a === undefined) return;
    a.connected = Math.max(0, a.connected - 1);
    a.lastSeen = now;
  }

  /**
   * Records an acknowledgement (here at once, in the AckStore on return); the caller has checked
   * 0 <= revision <= current.
   */
  async ack(identity: string, revision: number, now: number): Promise<void> {
    const a = this.stateOf(identity, now);
    if (a.acked === null || revision > a.acked) {
      a.history.push([revision, now]);
      if (a.history.length > ACK_HISTORY) a.history.shift();
    }
    a.acked = revision;
    a.ackedAt = now;
    await this.acks?.ack(identity, revision, now);
  }

  /**
   * When the agent first acknowledged `revision` or a later one: null if it has not yet, undefined
   * when that is older than what is kept (it did, at an unknown time).
   */
  appliedAt(identity: string, revision: number): number | null | undefined {
    const a = this.agents.get(identity);
    if (a === undefined || a.acked === null || a.acked < revision) return null;
    const first = a.history.find(([r]) => r >= revision);
    if (first === undefined) return undefined;
    // The oldest kept acknowledgement may stand for earlier ones that were dropped.
    return first === a.history[0] && a.history.length === ACK_HISTORY && first[0] > revision
      ? undefined
      : first[1];
  }

  connectedStreams(): number {
    let n = 0;
    for (const a of this.agents.values()) n += a.connected;
    return n;
  }

  private publishedAt(revision: number): number {
    const t = this.publishTimes.get(revision);
    if (t !== undefined) return t;
    // Older than what is kept: the oldest publish time we know is a lower bound on the lag.
    const first = this.publishTimes.values().next();
    return first.done === true ? 0 : first.value;
  }

  view(identity: string, now: number): AgentView | undefined {
    const a = this.agents.get(identity);
    if (a === undefined) return undefined;
    const acked = a.acked ?? 0;
    const behind = Math.max(0, this.currentRevision - acked);
    const lagMs = behind === 0 ? 0 : Math.max(0, now - this.publishedAt(acked + 1));
    return {
      identity,
      connected: a.connected,
      acked: a.acked,
      ackedAt: a.ackedAt,
      behind,
      lagMs,
      lastSeen: a.lastSeen,
    };
  }

  list(now: number): AgentView[] {
    const out: AgentView[] = [];
    for (const id of this.agents.keys()) {
      const v = this.view(id, now);
      if (v !== undefined) out.push(v);
    }
    return out.sort((x, y) => (x.identity < y.identity ? -1 : x.identity > y.identity ? 1 : 0));
  }

  /** Largest lag (ms) over connected agents, for /metrics. */
  maxLag(now: number): { behind: number; lagMs: number } {
    let behind = 0;
    let lagMs = 0;
    for (const id of this.agents.keys()) {
      const v = this.view(id, now);
      if (v === undefined || v.connected === 0) continue;
      behind = Math.max(behind, v.behind);
      lagMs = Math.max(lagMs, v.lagMs);
    }
    return { behind, lagMs };
  }
}
