// The reporter policy (YAML): which kinds of reporter may tell the SIEM which `event.action`s,
// about whom, who may follow the decision stream, and how much one reporter may cost the SIEM.
// Parsed and validated once, then compiled into a pure check the ingest path runs per event.
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { EdgewardError, type ErrorCode } from '../common/errors.js';
import { REPORTER_KINDS, type EdgeEvent, type ReporterKind } from '../common/events.js';
import { compileSchema } from '../common/schema.js';

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
  /**
   * Buffered correlation entries (events held in group windows) per correlation rule from one
   * reporter's events; beyond it that reporter's own least recently updated key is forgotten.
   */
  readonly correlationEntries: number;
  /** New values one reporter may add to each label of a SIEM metric; beyond, `other`. */
  readonly metricLabelValues: number;
  /** Reporter identities named in edgeward_siem_reporter_refusals_total; beyond, `other`. */
  readonly metricReporters: number;
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
  correlationEntries: 100_000,
  metricLabelValues: 16,
  metricReporters: 256,
};

/** Why an event is refused: the action is not one its kind may report, or not about that subject. */
export type ReporterRefusal = 'ERR_SIEM_REPORTER_ACTION' | 'ERR_SIEM_REPORTER_SUBJECT';

const MAX_FILE = 256 * 1024;
const MAX_RULES = 256;
const ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const ACTION = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const PREFIX = /^[a-z0-9][a-z0-9_.-]{0,62}\.\*$/;

function fail(code: ErrorCode, where: string, msg: string, cause?: unknown): never {
  throw new EdgewardError(code, `reporter policy ${where}: ${msg}`, {
    detail: { path: where },
    ...(cause === undefined ? {} : { cause }),
  });
}

const KINDS = {
  type: 'array',
  maxItems: REPORTER_KINDS.length,
  items: { type: 'string', enum: [...REPORTER_KINDS] },
} as const;
const count = (minimum: number, maximum: number): object => ({ type: 'integer', minimum, maximum });

interface PolicyShape {
  readonly reporters?: readonly {
    readonly id: string;
    readonly kinds: readonly ReporterKind[];
    readonly actions: readonly string[];
    readonly about?: About;
  }[];
  readonly subscribers?: readonly ReporterKind[];
  readonly budgets?: {
    readonly 'events-per-second'?: number;
    readonly 'events-burst'?: number;
    readonly 'correlation-keys'?: number;
    readonly 'decision-streams'?: number;
    readonly 'correlation-entries'?: number;
    readonly 'metric-label-values'?: number;
    readonly 'metric-reporters'?: number;
  };
}

const policyShape = compileSchema<PolicyShape>(
  {
    type: 'object',
    additionalProperties: false,
    required: ['kind'],
    properties: {
      kind: { const: 'reporter-policy' },
      reporters: {
        type: 'array',
        maxItems: MAX_RULES,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['id', 'kinds', 'actions'],
          properties: {
            id: { type: 'string', pattern: ID.source },
            kinds: { ...KINDS, minItems: 1 },
            actions: {
              type: 'array',
              minItems: 1,
              maxItems: 256,
              // an event.action, or a prefix such as enroll.*
              items: { type: 'string', pattern: `${ACTION.source}|${PREFIX.source}` },
            },
            about: { type: 'string', enum: [...ABOUT] },
            description: { type: 'string', maxLength: 1024 },
          },
        },
      },
      subscribers: KINDS,
      budgets: {
        type: 'object',
        additionalProperties: false,
        properties: {
          'events-per-second': count(1, 10_000_000),
          // A whole batch (10,000 events) must fit in the bucket, or a reporter could never send one.
          'events-burst': count(10_000, 100_000_000),
          'correlation-keys': count(1, 1_000_000),
          'decision-streams': count(1, 1000),
          // At least one group's window (2,048 entries) must fit.
          'correlation-entries': count(2048, 10_000_000),
          'metric-label-values': count(1, 1024),
          'metric-reporters': count(1, 100_000),
        },
      },
    },
  },
  'ERR_POLICY_REPORTER_SCHEMA',
  'reporter policy',
);

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
  const o = policyShape(v, { file: name });
  const rules: ReporterRule[] = (o.reporters ?? []).map((r) => ({
    id: r.id,
    kinds: [...new Set(r.kinds)],
    actions: [...r.actions],
    about: r.about ?? 'self',
  }));
  const ids = new Set<string>();
  for (const r of rules) {
    if (ids.has(r.id))
      fail('ERR_POLICY_REPORTER_SCHEMA', `${name}.reporters`, `rule id ${r.id} is used twice`);
    ids.add(r.id);
  }
  const b = o.budgets ?? {};
  const d = DEFAULT_BUDGETS;
  const eventsPerSecond = b['events-per-second'] ?? d.eventsPerSecond;
  const budgets: ReporterBudgets = {
    eventsPerSecond,
    eventsBurst: b['events-burst'] ?? Math.max(d.eventsBurst, eventsPerSecond * 2),
    correlationKeys: b['correlation-keys'] ?? d.correlationKeys,
    decisionStreams: b['decision-streams'] ?? d.decisionStreams,
    correlationEntries: b['correlation-entries'] ?? d.correlationEntries,
    metricLabelValues: b['metric-label-values'] ?? d.metricLabelValues,
    metricReporters: b['metric-reporters'] ?? d.metricReporters,
  };
  return Object.freeze({
    rules: Object.freeze(rules),
    subscribers: Object.freeze([...new Set(o.subscribers ?? [])]),
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
    `  per reporter: ${b.eventsPerSecond} events/s (burst ${b.eventsBurst}), ${b.correlationKeys} correlation keys and ${b.correlationEntries} buffered events per rule, ${b.decisionStreams} decision streams, ${b.metricLabelValues} new values per metric label (${b.metricReporters} reporters named in the refusal counter)`,
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
