// The last good, verified decision set on disk. Everything stored is the signed form (snapshot +
// deltas) with the SIEM certificate chains that verified it, re-verified on load without the
// network, so a tampered file is refused and a restart cut off from the SIEM still enforces;
// revisions only move forward.
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EdgewardError } from '../common/errors.js';
import type { Decision, DecisionDelta, DecisionSet } from '../common/decisions.js';
import { privateDir, replacePrivateFile } from '../common/private-files.js';

/** Verifies the SIEM's signed decision tokens (common/decision-jws.ts provides the real one). */
export interface DecisionVerifier {
  /** `lastApplied`: the revision applied so far (null: none), for the verifier's own staleness checks. */
  verifySet(token: string, lastApplied: number | null): Promise<DecisionSet>;
  verifyDelta(token: string, lastApplied: number): Promise<DecisionDelta>;
  /**
   * A verifier whose key rotates (the SIEM's certificate): the key id and chain (PEM) that
   * verified `token`, to persist beside it. Absent for a configured key, which needs no persisting.
   */
  keyOf?(token: string): { readonly kid: string; readonly chainPem: string } | undefined;
  /** Verifies persisted tokens with the persisted chains (by key id), without the network. */
  offline?(chains: Readonly<Record<string, string>>): DecisionVerifier;
}

/**
 * decisions.json. v2 (written now): `keys` maps each key id used by `snapshot` and `deltas` to the
 * SIEM's certificate chain (PEM, leaf first). v1 (older agents) had no keys: it is verified with
 * the live verifier, which may have to fetch the SIEM's chain.
 */
interface StoredForm {
  readonly v: 1 | 2;
  readonly snapshot: string;
  readonly deltas: readonly string[];
  readonly keys?: Readonly<Record<string, string>>;
}

const MAX_STORE_BYTES = 64 * 1024 * 1024;
const MAX_DELTAS = 100_000;

/** Pure: the set after a delta (caller has checked revisions). */
export function applyDelta(set: DecisionSet, delta: DecisionDelta): DecisionSet {
  const byId = new Map<string, Decision>(set.decisions.map((d) => [d.id, d]));
  for (const id of delta.removals) byId.delete(id);
  for (const d of delta.upserts) byId.set(d.id, d);
  return {
    trustDomain: set.trustDomain,
    revision: delta.revision,
    issuedAt: delta.issuedAt,
    decisions: [...byId.values()],
  };
}

function checkRevision(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

export type ApplyResult = {
  readonly changed: boolean;
  readonly set: DecisionSet;
  /** Settles once the new state is on disk (enforcement need not wait; acknowledgement should). */
  readonly persisted: Promise<void>;
};

export class DecisionStore {
  private snapshot: string | null = null;
  private deltas: string[] = [];
  /** Key id to chain (PEM) for the tokens held, when the verifier's key rotates. */
  private keys = new Map<string, string>();
  private set: DecisionSet | null = null;
  private writes: Promise<void> = Promise.resolve();

  constructor(
    readonly file: string,
    private readonly verifier: DecisionVerifier,
    private readonly trustDomain: string,
  ) {}

  get current(): DecisionSet | null {
    return this.set;
  }

  get revision(): number {
    return this.set?.revision ?? 0;
  }

  /** Loads and re-verifies the stored set; null when nothing is stored. */
  async load(): Promise<DecisionSet | null> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new EdgewardError('ERR_AGENT_DECISION_STORE', `cannot read ${this.file}`, { cause: e });
    }
    if (text.length > MAX_STORE_BYTES)
      throw new EdgewardError('ERR_AGENT_DECISION_STORE', 'decision store too large');
    let form: StoredForm;
    try {
      form = JSON.parse(text) as StoredForm;
    } catch (cause) {
      throw new EdgewardError('ERR_AGENT_DECISION_STORE', 'decision store is not JSON', { cause });
    }
    if (
      form === null ||
      typeof form !== 'object' ||
      (form.v !== 1 && form.v !== 2) ||
      typeof form.snapshot !== 'string' ||
      !Array.isArray(form.deltas) ||
      !form.deltas.every((d) => typeof d === 'string') ||
      (form.v === 2 && !isChainMap(form.keys))
    ) {
      throw new EdgewardError('ERR_AGENT_DECISION_STORE', 'decision store has the wrong shape');
    }
    const verifier =
      form.v === 2 && this.verifier.offline ? this.verifier.offline(form.keys ?? {}) : this.verifier;
    try {
      let set = this.checkSet(await verifier.verifySet(form.snapshot, null));
      for (const token of form.deltas)
        set = applyDelta(set, this.checkDelta(await verifier.verifyDelta(token, set.revision), set));
      this.snapshot = form.snapshot;
      this.deltas = [...form.deltas];
      // The stored chains carry over as they are (the verifier holds only its recent keys); a v1
      // store gets those its live verifier fetched.
      this.keys = new Map(form.v === 2 ? Object.entries(form.keys ?? {}) : []);
      for (const t of [form.snapshot, ...form.deltas]) this.remember(verifier, t);
      this.set = set;
      return set;
    } catch (cause) {
      throw new EdgewardError('ERR_AGENT_DECISION_STORE', 'stored decisions do not verify', { cause });
    }
  }

  /** A full set (stream snapshot or the offline decisions file). Older revisions are refused. */
  async applySnapshot(token: string): Promise<ApplyResult> {
    if (this.set && (await this.sameAsApplied(token)))
      return { changed: false, set: this.set, persisted: this.writes };
    const set = this.checkSet(await this.verifyOr('set', token));
    if (this.set && set.revision < this.set.revision) {
      throw new EdgewardError(
        'ERR_AGENT_DECISION_REVISION',
        `snapshot revision ${set.revision} is older than applied ${this.set.revision}`,
      );
    }
    if (this.set && set.revision === this.set.revision)
      return { changed: false, set: this.set, persisted: this.writes };
    this.snapshot = token;
    this.deltas = [];
    this.keys = new Map();
    this.remember(this.verifier, token);
    this.set = set;
    return { changed: true, set, persisted: this.queueWrite() };
  }

  async applyDelta(token: string): Promise<ApplyResult> {
    if (!this.set || this.snapshot === null)
      throw new EdgewardError('ERR_AGENT_DECISION_REVISION', 'a delta needs a snapshot first');
    const delta = this.checkDelta(await this.verifyOr('delta', token), this.set);
    if (this.deltas.length >= MAX_DELTAS)
      throw new EdgewardError('ERR_AGENT_DECISION_REVISION', 'too many deltas; a fresh snapshot is needed');
    const next = applyDelta(this.set, delta);
    this.deltas.push(token);
    this.remember(this.verifier, token);
    this.set = next;
    return { changed: true, set: next, persisted: this.queueWrite() };
  }

  private async verifyOr(kind: 'set', token: string): Promise<DecisionSet>;
  private async verifyOr(kind: 'delta', token: string): Promise<DecisionDelta>;
  private async verifyOr(kind: 'set' | 'delta', token: string): Promise<DecisionSet | DecisionDelta> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 16 * 1024 * 1024) {
      throw new EdgewardError('ERR_AGENT_DECISION_INVALID', 'decision token missing or too large');
    }
    try {
      return kind === 'set'
        ? await this.verifier.verifySet(token, this.set?.revision ?? null)
        : await this.verifier.verifyDelta(token, this.revision);
    } catch (cause) {
      const c = (cause as { code?: string }).code;
      // The verifier's own revision verdicts keep their meaning: stale or gapped, not forged.
      if (c === 'ERR_DECISION_STALE' || c === 'ERR_DECISION_GAP') {
        throw new EdgewardError('ERR_AGENT_DECISION_REVISION', `decision ${kind} revision refused`, {
          cause,
        });
      }
      throw new EdgewardError('ERR_AGENT_DECISION_INVALID', `decision ${kind} does not verify`, { cause });
    }
  }

  /** Keeps the chain that verified `token`, for the next write. */
  private remember(verifier: DecisionVerifier, token: string): void {
    const k = verifier.keyOf?.(token);
    if (k) this.keys.set(k.kid, k.chainPem);
  }

  /** The very snapshot already applied (a reconnect or the offline file read again). */
  private sameAsApplied(token: string): Promise<boolean> {
    return Promise.resolve(this.snapshot === token && this.deltas.length === 0);
  }

  private checkSet(set: DecisionSet): DecisionSet {
    if (
      !set ||
      set.trustDomain !== this.trustDomain ||
      !checkRevision(set.revision) ||
      !Array.isArray(set.decisions)
    ) {
      throw new EdgewardError(
        'ERR_AGENT_DECISION_INVALID',
        'decision set is for another trust domain or malformed',
      );
    }
    return set;
  }

  private checkDelta(delta: DecisionDelta, base: DecisionSet): DecisionDelta {
    if (
      !delta ||
      delta.trustDomain !== this.trustDomain ||
      !checkRevision(delta.revision) ||
      !checkRevision(delta.from)
    ) {
      throw new EdgewardError(
        'ERR_AGENT_DECISION_INVALID',
        'decision delta is for another trust domain or malformed',
      );
    }
    if (!Array.isArray(delta.upserts) || !Array.isArray(delta.removals))
      throw new EdgewardError('ERR_AGENT_DECISION_INVALID', 'decision delta malformed');
    if (delta.from !== base.revision || delta.revision <= delta.from) {
      throw new EdgewardError(
        'ERR_AGENT_DECISION_REVISION',
        `delta ${delta.from}->${delta.revision} does not follow applied ${base.revision}`,
      );
    }
    return delta;
  }

  /** Writes the current state after any earlier write; a failed write does not block later ones. */
  private queueWrite(): Promise<void> {
    const form: StoredForm = {
      v: 2,
      snapshot: this.snapshot ?? '',
      deltas: [...this.deltas],
      keys: Object.fromEntries(this.keys),
    };
    const p = this.writes.then(
      () => this.persist(form),
      () => this.persist(form),
    );
    this.writes = p.catch(() => undefined);
    return p;
  }

  /** Write-to-temp, fsync, rename, fsync the folder (0700, the file 0600): a crash leaves the old or the new file, whole. */
  private async persist(form: StoredForm): Promise<void> {
    privateDir(dirname(this.file));
    await replacePrivateFile(this.file, JSON.stringify(form));
  }
}

/** Key ids in one store: one per SIEM renewal (~16 h) since the last snapshot, which resets them. */
const MAX_KEYS = 256;

function isChainMap(v: unknown): v is Record<string, string> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const entries = Object.entries(v);
  return (
    entries.length <= MAX_KEYS &&
    entries.every(([k, c]) => /^[0-9a-f]{64}$/.test(k) && typeof c === 'string' && c.length <= 64 * 1024)
  );
}
