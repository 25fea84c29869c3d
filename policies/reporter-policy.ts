// The reporter policy (YAML): which kinds of reporter may tell the SIEM which `event.action`s,
// about whom, who may follow the decision stream, and how much one reporter may cost the SIEM.
// Parsed and validated once, then compiled into a pure check the ingest path runs per event.
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { EdgewardError, type ErrorCode } from '../common/errors.js';
import { REPORTER_KINDS, type EdgeEvent, type ReporterKind } from '../common/events.js';
import { POISON_KEYS } from '../common/schema.js';

/**
 * About whom a reporter may speak, per rule:
 * - `anyone`: no constraint (the CA speaks of every identity it enrolls).
 * - `self`: `source.identity` and `destination.identity` are absent or the reporter itself.
 * - `terminated`: a connection the reporter terminated: `destination.identity` absent or the
 *   reporter, `network.direction` absent or `inbound` (the source is whoever connected).
 * - `initiated`: a connection the reporter opened: `source.identity` is the reporter,
 *   `network.direction` absent or `outbound`.
 */
export const ABOUT = ['anyone', 'self', 'terminated', 'initiated'] as const;
export type About = (typeof ABOUT)[number];

export interface ReporterRule {
  readonly id: string;
  readonly kinds: readonly ReporterKind[];
  /** Exact actions, or prefixes written `enroll.*` (matches `enroll.success`, not `enroll`). */
  readonly actions: readonly string[];
  readonly about: About;
}

/** What one reporter may cost the SIEM (each identity has its own budget). */
export interface ReporterBudgets {
  /** Events per second, as a token bucket refilled at this rate ... */
  readonly eventsPerSecond: number;
  /** ... holding at most this many (a batch larger than what is left waits: 429). */
  readonly eventsBurst: number;
  /** Live correlation group keys per correlation rule created by one reporter's events. */
  readonly correlationKeys: number;
  /** Open decision streams per identity. */
  readonly decisionStreams: number;
}

export interface ReporterPolicy {
  readonly rules: readonly ReporterRule[];
  /** Kinds that may subscribe to and acknowledge the decision stream (and poll it). */
  readonly subscribers: readonly ReporterKind[];
  readonly budgets: ReporterBudgets;
}

export const DEFAULT_BUDGETS: ReporterBudgets = {
  eventsPerSecond: 10_000,
  eventsBurst: 20_000,
  correlationKeys: 10_000,
  decisionStreams: 8,
};

/** Why an event is refused: the action is not one its kind may report, or not about that subject. */
export type ReporterRefusal = 'ERR_SIEM_REPORTER_ACTION' | 'ERR_SIEM_REPORTER_SUBJECT';

const MAX_FILE = 256 * 1024;
const MAX_RULES = 256;
const ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const ACTION = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const PREFIX = /^[a-z0-9][a-z0-9_.-]{0,62}\.\*$/;

type Rec = Readonly<Record<string, unknown>>;

function fail(code: ErrorCode, where: string, msg: string, cause?: unknown): never {
  throw new EdgewardError(code, `reporter policy ${where}: ${msg}`, {
    detail: { path: where },
    ...(cause === undefined ? {} : { cause }),
  });
}

function rec(v: unknown, keys: readonly string[], where: string): Rec {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    fail('ERR_POLICY_REPORTER_SCHEMA', where, 'must be a mapping');
  for (const k of Object.keys(v))
    if (POISON_KEYS.has(k) || !keys.includes(k))
      fail(
        'ERR_POLICY_REPORTER_SCHEMA',
        `${where}.${k.slice(0, 64)}`,
        `unknown key (allowed: ${keys.join(', ')})`,
      );
  return v as Rec;
}

function list(v: unknown, where: string, max: number): unknown[] {
  if (!Array.isArray(v) || v.length > max)
    fail('ERR_POLICY_REPORTER_SCHEMA', where, `must be a list of at most ${max}`);
  return v;
}

function kinds(v: unknown, where: string): ReporterKind[] {
  const out = list(v, where, REPORTER_KINDS.length).map((k, i) => {
    if (typeof k !== 'string' || !(REPORTER_KINDS as readonly string[]).includes(k))
      fail('ERR_POLICY_REPORTER_SCHEMA', `${where}[${i}]`, `must be one of ${REPORTER_KINDS.join(', ')}`);
    return k as ReporterKind;
  });
  return [...new Set(out)];
}

function count(v: unknown, where: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    fail('ERR_POLICY_REPORTER_SCHEMA', where, `must be a whole number in ${min}..${max}`);
  return v;
}

function parseRule(v: unknown, where: string): ReporterRule {
  const o = rec(v, ['id', 'kinds', 'actions', 'about', 'description'], where);
  const id = o['id'];
  if (typeof id !== 'string' || !ID.test(id))
    fail('ERR_POLICY_REPORTER_SCHEMA', `${where}.id`, 'must be a lower-case slug');
  const ks = kinds(o['kinds'], `${where}.kinds`);
  if (ks.length === 0) fail('ERR_POLICY_REPORTER_SCHEMA', `${where}.kinds`, 'must name at least one kind');
  const actions = list(o['actions'], `${where}.actions`, 256).map((a, i) => {
    if (typeof a !== 'string' || !(ACTION.test(a) || PREFIX.test(a)))
      fail(
        'ERR_POLICY_REPORTER_SCHEMA',
        `${where}.actions[${i}]`,
        'must be an event.action or a prefix such as enroll.*',
      );
    return a;
  });
  if (actions.length === 0)
    fail('ERR_POLICY_REPORTER_SCHEMA', `${where}.actions`, 'must name at least one action');
  const about = o['about'] ?? 'self';
  if (typeof about !== 'string' || !(ABOUT as readonly string[]).includes(about))
    fail('ERR_POLICY_REPORTER_SCHEMA', `${where}.about`, `must be one of ${ABOUT.join(', ')}`);
  const description = o['description'];
  if (description !== undefined && (typeof description !== 'string' || description.length > 1024))
    fail('ERR_POLICY_REPORTER_SCHEMA', `${where}.description`, 'must be text of at most 1024 characters');
  return { id, kinds: ks, actions, about: about as About };
}

/** Parses and validates a reporter policy (one YAML document); throws ERR_POLICY_REPORTER_*. */
export function parseReporterPolicy(text: string, name = 'reporter policy'): ReporterPolicy {
  if (text.length > MAX_FILE) fail('ERR_POLICY_REPORTER_SCHEMA', name, 'larger than 256 KiB');
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0)
    fail('ERR_POLICY_REPORTER_YAML', name, doc.errors[0]?.message.split('\n')[0] ?? 'invalid YAML');
  let v: unknown;
  try {
    v = doc.toJS({ maxAliasCount: 0 });
  } catch (err) {
    fail('ERR_POLICY_REPORTER_YAML', name, 'YAML aliases are not allowed', err);
  }
  const o = rec(v, ['kind', 'reporters', 'subscribers', 'budgets'], name);
  if (o['kind'] !== 'reporter-policy')
    fail('ERR_POLICY_REPORTER_SCHEMA', `${name}.kind`, 'must be reporter-policy');
  const rules = list(o['reporters'] ?? [], `${name}.reporters`, MAX_RULES).map((r, i) =>
    parseRule(r, `${name}.reporters[${i}]`),
  );
  const ids = new Set<string>();
  for (const r of rules) {
    if (ids.has(r.id))
      fail('ERR_POLICY_REPORTER_SCHEMA', `${name}.reporters`, `rule id ${r.id} is used twice`);
    ids.add(r.id);
  }
  const b = rec(
    o['budgets'] ?? {},
    ['events-per-second', 'events-burst', 'correlation-keys', 'decision-streams'],
    `${name}.budgets`,
  );
  const d = DEFAULT_BUDGETS;
  const eventsPerSecond = count(
    b['events-per-second'],
    `${name}.budgets.events-per-second`,
    1,
    10_000_000,
    d.eventsPerSecond,
  );
  const budgets: ReporterBudgets = {
    eventsPerSecond,
    // A whole batch (10,000 events) must fit in the bucket, or a reporter could never send one.
    eventsBurst: count(
      b['events-burst'],
      `${name}.budgets.events-burst`,
      10_000,
      100_000_000,
      Math.max(d.eventsBurst, eventsPerSecond * 2),
    ),
    correlationKeys: count(
      b['correlation-keys'],
      `${name}.budgets.correlation-keys`,
      1,
      1_000_000,
      d.correlationKeys,
    ),
    decisionStreams: count(
      b['decision-streams'],
      `${name}.budgets.decision-streams`,
      1,
      1000,
      d.decisionStreams,
    ),
  };
  return Object.freeze({
    rules: Object.freeze(rules),
    subscribers: Object.freeze(kinds(o['subscribers'] ?? [], `${name}.subscribers`)),
    budgets: Object.freeze(budgets),
  });
}

export function loadReporterPolicy(file: string): ReporterPolicy {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    fail('ERR_POLICY_REPORTER_FILE', file, 'cannot read the file', err);
  }
  return parseReporterPolicy(text, file);
}

/** A short summary for `edgeward policy check`. */
export function describeReporterPolicy(p: ReporterPolicy): string {
  const lines = p.rules.map(
    (r) => `  ${r.id}: ${r.kinds.join(', ')} may report ${r.actions.join(', ')} about ${r.about}`,
  );
  const b = p.budgets;
  lines.push(
    `  subscribers: ${p.subscribers.length === 0 ? 'none' : p.subscribers.join(', ')}`,
    `  per reporter: ${b.eventsPerSecond} events/s (burst ${b.eventsBurst}), ${b.correlationKeys} correlation keys per rule, ${b.decisionStreams} decision streams`,
  );
  return lines.join('\n');
}

/** A reporter as its certificate proves it. */
export interface ProvenReporter {
  readonly identity: string;
  readonly kind: ReporterKind;
}

function aboutHolds(about: About, r: ProvenReporter, e: EdgeEvent): boolean {
  switch (about) {
    case 'anyone':
      return true;
    case 'self': {
      const s = e['source.identity'];
      const d = e['destination.identity'];
      return (s === undefined || s === r.identity) && (d === undefined || d === r.identity);
    }
    case 'terminated': {
      const d = e['destination.identity'];
      const dir = e['network.direction'];
      return (d === undefined || d === r.identity) && (dir === undefined || dir === 'inbound');
    }
    case 'initiated': {
      const dir = e['network.direction'];
      return e['source.identity'] === r.identity && (dir === undefined || dir === 'outbound');
    }
  }
}

export interface CompiledReporterPolicy {
  readonly policy: ReporterPolicy;
  /** null when the reporter may report this event; otherwise why not. */
  check(r: ProvenReporter, e: EdgeEvent): ReporterRefusal | null;
  maySubscribe(kind: ReporterKind): boolean;
}

/** Compiles the policy: a per-kind, per-action lookup (cached), then the `about` tests. */
export function compileReporterPolicy(policy: ReporterPolicy): CompiledReporterPolicy {
  const byKind = new Map<ReporterKind, { exact: Map<string, About[]>; prefixes: [string, About][] }>();
  for (const k of REPORTER_KINDS) byKind.set(k, { exact: new Map(), prefixes: [] });
  for (const rule of policy.rules) {
    for (const k of rule.kinds) {
      const t = byKind.get(k) as { exact: Map<string, About[]>; prefixes: [string, About][] };
      for (const a of rule.actions) {
        if (a.endsWith('.*')) t.prefixes.push([a.slice(0, -1), rule.about]);
        else t.exact.set(a, [...(t.exact.get(a) ?? []), rule.about]);
      }
    }
  }
  // Actions are reporter-chosen keywords: the cache of resolved (kind, action) pairs is bounded.
  const cache = new Map<ReporterKind, Map<string, readonly About[]>>();
  let cached = 0;
  const abouts = (kind: ReporterKind, action: string): readonly About[] => {
    let perKind = cache.get(kind);
    if (perKind === undefined) {
      perKind = new Map();
      cache.set(kind, perKind);
    }
    let hit = perKind.get(action);
    if (hit === undefined) {
      const t = byKind.get(kind) as { exact: Map<string, About[]>; prefixes: [string, About][] };
      const found = [...(t.exact.get(action) ?? [])];
      for (const [p, about] of t.prefixes)
        if (action.startsWith(p) && action.length > p.length) found.push(about);
      hit = [...new Set(found)];
      if (cached < 4096) {
        perKind.set(action, hit);
        cached++;
      }
    }
    return hit;
  };
  const subscribers = new Set(policy.subscribers);
  return {
    policy,
    check(r, e) {
      const allowed = abouts(r.kind, e['event.action']);
      if (allowed.length === 0) return 'ERR_SIEM_REPORTER_ACTION';
      for (const about of allowed) if (aboutHolds(about, r, e)) return null;
      return 'ERR_SIEM_REPORTER_SUBJECT';
    },
    maySubscribe: (kind) => subscribers.has(kind),
  };
}
