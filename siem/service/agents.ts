// Who is subscribed to the decision stream, which revision each agent acknowledged, and how far
// behind it is (revisions, and ms since the first revision it has not acknowledged was published).
// The caller passes `now`. Acknowledgements are also written to an AckStore (shared by SIEM
// replicas, kept across restarts); live connections are this process's own, and on a shared
// store each replica says which agents it holds (sharePresence), so the views count every
// replica's connections.
import type { Logger } from '../../common/log.js';
import { ACK_HISTORY, type AckStore } from '../store/index.js';

export interface AgentView {
  readonly identity: string;
  /** Open stream connections of this identity, here and on the other replicas of a shared store. */
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
/** How often a replica says which agents hold its streams (and soon after a change: PRESENCE_SOON_MS). */
export const PRESENCE_MS = 5000;
const PRESENCE_SOON_MS = 250;
/** What another replica said counts for this long: three of its turns (a replica gone drops out). */
export const PRESENCE_STALE_MS = 3 * PRESENCE_MS;

interface Sharing {
  readonly replica: string;
  readonly log: Logger;
  readonly timer: NodeJS.Timeout;
  soon: NodeJS.Timeout | undefined;
  writing: Promise<void>;
  failing: boolean;
  stopped: boolean;
}

export class AgentLedger {
  private readonly agents = new Map<string, AgentState>();
  /** Publish time of recent revisions (bounded; older ones count from the oldest kept). */
  private readonly publishTimes = new Map<number, number>();
  private currentRevision = 0;
  /** The other replicas' open connections by identity, as last read (refresh). */
  private remote = new Map<string, number>();
  private sharing: Sharing | undefined;

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
    if (this.sharing === undefined || this.acks.presence === undefined) return;
    const now = Date.now();
    this.remote = await this.acks.presence(this.sharing.replica, now - PRESENCE_STALE_MS);
    for (const id of this.remote.keys())
      if (!this.agents.has(id) && this.agents.size < MAX_AGENTS)
        this.agents.set(id, { connected: 0, acked: null, ackedAt: null, lastSeen: now, history: [] });
  }

  /**
   * Says, as replica `replica`, which agents hold this process's streams: every PRESENCE_MS and
   * soon after a connection opens or closes, so that other replicas' views count them (a store
   * shared by replicas only; otherwise nothing to do). `stop` says it holds none any more.
   */
  sharePresence(replica: string, log: Logger): { stop(): Promise<void> } {
    const acks = this.acks;
    if (acks?.setPresence === undefined || acks.presence === undefined)
      return { stop: () => Promise.resolve() };
    const timer = setInterval(() => this.say(), PRESENCE_MS);
    timer.unref();
    this.sharing = {
      replica,
      log,
      timer,
      soon: undefined,
      writing: Promise.resolve(),
      failing: false,
      stopped: false,
    };
    this.say();
    return {
      stop: async () => {
        const sh = this.sharing;
        if (sh === undefined) return;
        clearInterval(sh.timer);
        if (sh.soon !== undefined) clearTimeout(sh.soon);
        sh.stopped = true;
        await sh.writing;
        await acks.setPresence?.(replica, new Map(), Date.now()).catch(() => undefined);
      },
    };
  }

  /** Writes this process's connections now (one write at a time; a failure is logged once until one succeeds). */
  private say(): void {
    const sh = this.sharing;
    if (sh === undefined || sh.stopped) return;
    if (sh.soon !== undefined) clearTimeout(sh.soon);
    sh.soon = undefined;
    sh.writing = sh.writing.then(async () => {
      if (sh.stopped) return;
      const mine = new Map<string, number>();
      for (const [id, a] of this.agents) if (a.connected > 0) mine.set(id, a.connected);
      try {
        await this.acks?.setPresence?.(sh.replica, mine, Date.now());
        if (sh.failing) sh.log.info('sharing the agents connected here with the other replicas again');
        sh.failing = false;
      } catch (err) {
        if (!sh.failing)
          sh.log.warn({ err }, 'could not share the agents connected here with the other replicas');
        sh.failing = true;
      }
    });
  }

  private changed(): void {
    const sh = this.sharing;
    if (sh === undefined || sh.soon !== undefined) return;
    sh.soon = setTimeout(() => this.say(), PRESENCE_SOON_MS);
    sh.soon.unref();
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
    this.changed();
  }

  disconnect(identity: string, now: number): void {
    const a = this.agents.get(identity);
    if (a === undefined) return;
    a.connected = Math.max(0, a.connected - 1);
    a.lastSeen = now;
    this.changed();
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

  /** This process's open streams (for its own /metrics). */
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
      connected: a.connected + (this.remote.get(identity) ?? 0),
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

  /** Largest lag (ms) over the agents connected to this process, for its /metrics. */
  maxLag(now: number): { behind: number; lagMs: number } {
    let behind = 0;
    let lagMs = 0;
    for (const [id, a] of this.agents) {
      if (a.connected === 0) continue;
      const v = this.view(id, now);
      if (v === undefined) continue;
      behind = Math.max(behind, v.behind);
      lagMs = Math.max(lagMs, v.lagMs);
    }
    return { behind, lagMs };
  }
}
