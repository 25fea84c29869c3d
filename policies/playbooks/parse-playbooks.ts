// Parses playbook and response-settings YAML (refusing unknown keys) and loads a folder of them.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseDuration } from '../../common/clock.js';
import { canonicalScope } from '../../common/decision-scope.js';
import type { DecisionScope } from '../../common/decisions.js';
import { EdgewardError } from '../../common/errors.js';
import { isEventField } from '../../common/events.js';
import { compileSchema, type SchemaContext } from '../../common/schema.js';
import {
  DEFAULT_SETTINGS,
  type DecisionBudget,
  type Escalation,
  type Playbook,
  type PlaybookAction,
  type PlaybookConfig,
  type ReservedBudget,
  type ResponseSettings,
} from './types.js';

const MAX_FILE = 256 * 1024;
const ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const SCOPES = ['identity', 'serial', 'spki', 'ip', 'node'] as const;
const MAX_TTL = 30 * 86_400_000;

const SLUG = { type: 'string', pattern: ID.source } as const;
// Durations (`15m` or a number of ms) are read by `duration`, which refuses anything else.
const DURATION = {} as const;
const ESCALATION = {
  type: 'object',
  additionalProperties: false,
  properties: { window: DURATION, factor: { type: 'number', minimum: 1, maximum: 100 }, 'max-ttl': DURATION },
} as const;

/** The shape of a playbook document; durations, event fields and scopes are read after it. */
const playbookShape = compileSchema<Rec>(
  {
    type: 'object',
    additionalProperties: false,
    required: ['kind', 'id', 'rules', 'decisions'],
    properties: {
      kind: { const: 'playbook' },
      id: SLUG,
      description: { type: 'string', maxLength: 4096 },
      rules: { type: 'array', minItems: 1, maxItems: 64, items: SLUG },
      decisions: {
        type: 'array',
        minItems: 1,
        maxItems: 8,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['scope', 'from'],
          properties: {
            scope: { type: 'string', enum: [...SCOPES] },
            from: { type: 'string' },
            action: { type: 'string', enum: ['quarantine', 'isolate'] },
            ttl: DURATION,
          },
        },
      },
      reason: { type: 'string', maxLength: 256 },
      escalation: ESCALATION,
      simulate: { type: 'boolean' },
    },
  },
  'ERR_SIEM_PLAYBOOK_INVALID',
  'playbook',
);

const COUNT = { type: 'integer', minimum: 0, maximum: 100_000 } as const;

/** The shape of the response-settings document. */
const settingsShape = compileSchema<Rec>(
  {
    type: 'object',
    additionalProperties: false,
    required: ['kind'],
    properties: {
      kind: { const: 'response-settings' },
      allowlist: {
        type: 'array',
        maxItems: 10_000,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['type', 'value'],
          properties: { type: {}, value: {} },
        },
      },
      'blast-radius': {
        type: 'object',
        additionalProperties: false,
        properties: {
          'max-per-minute': COUNT,
          'per-reporter': COUNT,
          'shared-evidence': COUNT,
          reserved: {
            type: 'object',
            additionalProperties: false,
            properties: {
              rules: { type: 'array', maxItems: 64, items: SLUG },
              'max-per-minute': COUNT,
              'per-reporter': COUNT,
              'shared-evidence': COUNT,
            },
          },
        },
      },
      escalation: ESCALATION,
      'simulate-rules': { type: 'array', items: SLUG },
    },
  },
  'ERR_SIEM_PLAYBOOK_INVALID',
  'response settings',
);

type Rec = Readonly<Record<string, unknown>>;

function bad(where: string, msg: string, cause?: unknown): never {
  throw new EdgewardError(
    'ERR_SIEM_PLAYBOOK_INVALID',
    `${where}: ${msg}`,
    cause === undefined ? undefined : { cause },
  );
}

function duration(v: unknown, where: string, max = MAX_TTL): number {
  if (typeof v !== 'string' && typeof v !== 'number') bad(where, 'must be a duration such as 15m');
  let ms: number;
  try {
    ms = parseDuration(String(v));
  } catch (err) {
    bad(where, 'must be a duration such as 15m', err);
  }
  if (ms <= 0 || ms > max) bad(where, 'duration out of range');
  return ms;
}

/** An escalation block already checked by its schema: the durations are read here. */
function escalation(v: unknown, where: string, dflt: Escalation): Escalation {
  if (v === undefined) return dflt;
  const o = v as Rec;
  return {
    windowMs:
      o['window'] === undefined ? dflt.windowMs : duration(o['window'], `${where}.window`, 365 * 86_400_000),
    factor: (o['factor'] as number | undefined) ?? dflt.factor,
    maxTtlMs: o['max-ttl'] === undefined ? dflt.maxTtlMs : duration(o['max-ttl'], `${where}.max-ttl`),
  };
}

interface Located {
  readonly where: string;
  readonly ctx: SchemaContext;
  readonly doc: Rec;
}

function parsePlaybook(d: Located, dflt: Escalation): Playbook {
  const doc = playbookShape(d.doc, d.ctx);
  const where = d.where;
  const actions = (doc['decisions'] as Rec[]).map((x, i): PlaybookAction => {
    const w = `${where}: decisions[${i}]`;
    const from = x['from'] as string;
    if (!isEventField(from)) bad(`${w}.from`, 'must be an event field');
    return {
      scope: x['scope'] as PlaybookAction['scope'],
      from,
      action: (x['action'] as PlaybookAction['action'] | undefined) ?? 'quarantine',
      ttlMs: duration(x['ttl'], `${w}.ttl`),
    };
  });
  return {
    id: doc['id'] as string,
    description: (doc['description'] as string | undefined) ?? '',
    rules: doc['rules'] as string[],
    actions,
    reason: doc['reason'] as string | undefined,
    escalation:
      doc['escalation'] === undefined
        ? undefined
        : escalation(doc['escalation'], `${where}: escalation`, dflt),
    simulate: (doc['simulate'] as boolean | undefined) ?? false,
  };
}

/**
 * `max-per-minute`, `per-reporter` and `shared-evidence` of a budget. With a total (of 2 or more),
 * one reporter's share must be less than it (else one reporter could spend it all); the
 * joint share is at most the share, half of it unless given.
 */
function decisionBudget(o: Rec, dflt: DecisionBudget, where: string): DecisionBudget {
  const maxPerMinute = (o['max-per-minute'] as number | undefined) ?? dflt.maxPerMinute;
  const given = o['per-reporter'] as number | undefined;
  const perReporter =
    given ??
    (maxPerMinute === Infinity || maxPerMinute < 2
      ? Math.min(dflt.perReporter, maxPerMinute)
      : Math.min(dflt.perReporter, maxPerMinute - 1));
  if (maxPerMinute !== Infinity && maxPerMinute >= 2 && perReporter >= maxPerMinute)
    bad(
      `${where}.per-reporter`,
      `must be less than max-per-minute (${maxPerMinute}): one reporter's evidence could spend the whole budget`,
    );
  const shared = o['shared-evidence'] as number | undefined;
  if (shared !== undefined && shared > perReporter)
    bad(`${where}.shared-evidence`, `must be at most per-reporter (${perReporter})`);
  return { maxPerMinute, perReporter, sharedEvidence: shared ?? Math.ceil(perReporter / 2) };
}

function parseSettings(d: Located): ResponseSettings {
  const doc = settingsShape(d.doc, d.ctx);
  const where = d.where;
  const allowlist = ((doc['allowlist'] as Rec[] | undefined) ?? []).map((x, i): DecisionScope => {
    try {
      return canonicalScope({ type: x['type'], value: x['value'] });
    } catch (err) {
      return bad(`${where}: allowlist[${i}]`, 'invalid scope', err);
    }
  });
  const dflt = DEFAULT_SETTINGS;
  let budget: DecisionBudget = {
    maxPerMinute: dflt.maxPerMinute,
    perReporter: dflt.perReporter,
    sharedEvidence: dflt.sharedEvidence,
  };
  let reserved: ReservedBudget = dflt.reserved;
  const br = doc['blast-radius'] as Rec | undefined;
  if (br !== undefined) {
    budget = decisionBudget(br, dflt, `${where}: blast-radius`);
    const rs = br['reserved'] as Rec | undefined;
    if (rs !== undefined)
      reserved = {
        rules: (rs['rules'] as string[] | undefined) ?? dflt.reserved.rules,
        ...decisionBudget(rs, dflt.reserved, `${where}: blast-radius.reserved`),
      };
  }
  return {
    allowlist,
    ...budget,
    reserved,
    escalation: escalation(doc['escalation'], `${where}: escalation`, DEFAULT_SETTINGS.escalation),
    simulateRules: (doc['simulate-rules'] as string[] | undefined) ?? [],
  };
}

/** Parses the YAML documents of several files (settings first, then playbooks) into one config. */
export function parsePlaybookTexts(files: readonly { name: string; text: string }[]): PlaybookConfig {
  const docs: Located[] = [];
  for (const f of files) {
    if (f.text.length > MAX_FILE) bad(f.name, 'larger than 256 KiB');
    parseAllDocuments(f.text, { uniqueKeys: true }).forEach((d, i) => {
      const where = `${f.name}: document ${i}`;
      if (d.errors.length > 0) bad(where, `invalid YAML: ${d.errors[0]?.message.split('\n')[0] ?? ''}`);
      let v: unknown;
      try {
        v = d.toJS({ maxAliasCount: 0 });
      } catch (err) {
        bad(where, 'YAML aliases are not allowed', err);
      }
      if (v === null || v === undefined) return;
      if (typeof v !== 'object' || Array.isArray(v)) bad(where, 'must be a map');
      docs.push({ where, ctx: { file: f.name, document: i }, doc: v as Rec });
    });
  }
  const settingsDocs = docs.filter((d) => d.doc['kind'] === 'response-settings');
  if (settingsDocs.length > 1)
    bad(settingsDocs[1]?.where ?? '', 'only one response-settings document is allowed');
  const s = settingsDocs[0];
  const settings = s === undefined ? DEFAULT_SETTINGS : parseSettings(s);
  const playbooks: Playbook[] = [];
  const ids = new Set<string>();
  for (const d of docs) {
    if (d.doc['kind'] === 'response-settings') continue;
    if (d.doc['kind'] !== 'playbook') bad(d.where, 'kind must be playbook or response-settings');
    const p = parsePlaybook(d, settings.escalation);
    if (ids.has(p.id)) bad(d.where, `playbook id ${p.id} is used twice`);
    ids.add(p.id);
    playbooks.push(p);
  }
  return { settings, playbooks };
}

/** Loads every *.yaml / *.yml file of a folder (not recursive), sorted by name. */
export async function loadPlaybooks(dir: string): Promise<PlaybookConfig> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.')).sort();
  } catch (err) {
    bad(dir, 'cannot read the folder', err);
  }
  const files: { name: string; text: string }[] = [];
  for (const n of names) {
    const p = join(dir, n);
    try {
      if ((await stat(p)).size > MAX_FILE) bad(p, 'larger than 256 KiB');
      files.push({ name: p, text: await readFile(p, 'utf8') });
    } catch (err) {
      if (err instanceof EdgewardError) throw err;
      bad(p, 'cannot read the file', err);
    }
  }
  return parsePlaybookTexts(files);
}
