// Parses playbook and response-settings YAML (refusing unknown keys) and loads a folder of them.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseDuration } from '../../common/clock.js';
import { canonicalScope } from '../../common/decision-scope.js';
import type { DecisionScope } from '../../common/decisions.js';
import { EdgewardError } from '../../common/errors.js';
import { isEventField } from '../../common/events.js';
import { POISON_KEYS } from '../../common/schema.js';
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

type Rec = Readonly<Record<string, unknown>>;

function bad(where: string, msg: string, cause?: unknown): never {
  throw new EdgewardError(
    'ERR_SIEM_PLAYBOOK_INVALID',
    `${where}: ${msg}`,
    cause === undefined ? undefined : { cause },
  );
}

function rec(v: unknown, keys: readonly string[], where: string): Rec {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(where, 'must be a map');
  for (const k of Object.keys(v))
    if (POISON_KEYS.has(k) || !keys.includes(k)) bad(where, `unknown key ${k.slice(0, 64)}`);
  return v as Rec;
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

function escalation(v: unknown, where: string, dflt: Escalation): Escalation {
  if (v === undefined) return dflt;
  const o = rec(v, ['window', 'factor', 'max-ttl'], where);
  const factor = o['factor'] ?? dflt.factor;
  if (typeof factor !== 'number' || !(factor >= 1 && factor <= 100)) bad(`${where}.factor`, 'must be 1..100');
  return {
    windowMs:
      o['window'] === undefined ? dflt.windowMs : duration(o['window'], `${where}.window`, 365 * 86_400_000),
    factor,
    maxTtlMs: o['max-ttl'] === undefined ? dflt.maxTtlMs : duration(o['max-ttl'], `${where}.max-ttl`),
  };
}

function parsePlaybook(o: Rec, where: string, dflt: Escalation): Playbook {
  const doc = rec(
    o,
    ['kind', 'id', 'description', 'rules', 'decisions', 'reason', 'escalation', 'simulate'],
    where,
  );
  const id = doc['id'];
  if (typeof id !== 'string' || !ID.test(id)) bad(`${where}.id`, 'must be a lower-case slug');
  const rules = doc['rules'];
  if (!Array.isArray(rules) || rules.length === 0 || rules.length > 64)
    bad(`${where}.rules`, 'must list 1..64 rule ids');
  for (const r of rules) if (typeof r !== 'string' || !ID.test(r)) bad(`${where}.rules`, 'must be rule ids');
  const acts = doc['decisions'];
  if (!Array.isArray(acts) || acts.length === 0 || acts.length > 8)
    bad(`${where}.decisions`, 'must list 1..8 decisions');
  const actions = acts.map((a, i): PlaybookAction => {
    const w = `${where}.decisions[${i}]`;
    const x = rec(a, ['scope', 'from', 'action', 'ttl'], w);
    const scope = x['scope'];
    if (typeof scope !== 'string' || !(SCOPES as readonly string[]).includes(scope))
      bad(`${w}.scope`, `must be one of ${SCOPES.join(', ')}`);
    const from = x['from'];
    if (typeof from !== 'string' || !isEventField(from)) bad(`${w}.from`, 'must be an event field');
    const action = x['action'] ?? 'quarantine';
    if (action !== 'quarantine' && action !== 'isolate') bad(`${w}.action`, 'must be quarantine or isolate');
    return {
      scope: scope as PlaybookAction['scope'],
      from: from,
      action,
      ttlMs: duration(x['ttl'], `${w}.ttl`),
    };
  });
  const reason = doc['reason'];
  if (reason !== undefined && (typeof reason !== 'string' || reason.length > 256))
    bad(`${where}.reason`, 'must be text');
  const description = doc['description'] ?? '';
  if (typeof description !== 'string' || description.length > 4096)
    bad(`${where}.description`, 'must be text');
  const simulate = doc['simulate'] ?? false;
  if (typeof simulate !== 'boolean') bad(`${where}.simulate`, 'must be true or false');
  return {
    id,
    description,
    rules: rules as string[],
    actions,
    reason: reason,
    escalation:
      doc['escalation'] === undefined
        ? undefined
        : escalation(doc['escalation'], `${where}.escalation`, dflt),
    simulate,
  };
}

function count(v: unknown, where: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 100_000) bad(where, 'must be 0..100000');
  return v;
}

/** `max-per-minute` and `per-reporter` of a budget; per-reporter defaults to at most the whole. */
function decisionBudget(o: Rec, where: string, dflt: DecisionBudget): DecisionBudget {
  const maxPerMinute = count(o['max-per-minute'], `${where}.max-per-minute`, dflt.maxPerMinute);
  const perReporter = count(
    o['per-reporter'],
    `${where}.per-reporter`,
    Math.min(dflt.perReporter, maxPerMinute),
  );
  return { maxPerMinute, perReporter };
}

function parseSettings(o: Rec, where: string): ResponseSettings {
  const doc = rec(o, ['kind', 'allowlist', 'blast-radius', 'escalation', 'simulate-rules'], where);
  const list = doc['allowlist'] ?? [];
  if (!Array.isArray(list) || list.length > 10_000) bad(`${where}.allowlist`, 'must be a list');
  const allowlist = list.map((e, i): DecisionScope => {
    const x = rec(e, ['type', 'value'], `${where}.allowlist[${i}]`);
    try {
      return canonicalScope({ type: x['type'], value: x['value'] });
    } catch (err) {
      return bad(`${where}.allowlist[${i}]`, 'invalid scope', err);
    }
  });
  const dflt = DEFAULT_SETTINGS;
  let budget: DecisionBudget = { maxPerMinute: dflt.maxPerMinute, perReporter: dflt.perReporter };
  let reserved: ReservedBudget = dflt.reserved;
  if (doc['blast-radius'] !== undefined) {
    const w = `${where}.blast-radius`;
    const br = rec(doc['blast-radius'], ['max-per-minute', 'per-reporter', 'reserved'], w);
    budget = decisionBudget(br, w, dflt);
    if (br['reserved'] !== undefined) {
      const rs = rec(br['reserved'], ['rules', 'max-per-minute', 'per-reporter'], `${w}.reserved`);
      const rules = rs['rules'] ?? dflt.reserved.rules;
      if (
        !Array.isArray(rules) ||
        rules.length > 64 ||
        !rules.every((r) => typeof r === 'string' && ID.test(r))
      )
        bad(`${w}.reserved.rules`, 'must list at most 64 rule ids');
      reserved = { rules: rules as string[], ...decisionBudget(rs, `${w}.reserved`, dflt.reserved) };
    }
  }
  const sim = doc['simulate-rules'] ?? [];
  if (!Array.isArray(sim) || !sim.every((r) => typeof r === 'string' && ID.test(r)))
    bad(`${where}.simulate-rules`, 'must list rule ids');
  return {
    allowlist,
    ...budget,
    reserved,
    escalation: escalation(doc['escalation'], `${where}.escalation`, DEFAULT_SETTINGS.escalation),
    simulateRules: sim as string[],
  };
}

/** Parses the YAML documents of several files (settings first, then playbooks) into one config. */
export function parsePlaybookTexts(files: readonly { name: string; text: string }[]): PlaybookConfig {
  const docs: { where: string; doc: Rec }[] = [];
  for (const f of files) {
    if (f.text.length > MAX_FILE) bad(f.name, 'larger than 256 KiB');
    parseAllDocuments(f.text, { uniqueKeys: true }).forEach((d, i) => {
      const where = `${f.name}#${i}`;
      if (d.errors.length > 0) bad(where, `invalid YAML: ${d.errors[0]?.message.split('\n')[0] ?? ''}`);
      let v: unknown;
      try {
        v = d.toJS({ maxAliasCount: 0 });
      } catch (err) {
        bad(where, 'YAML aliases are not allowed', err);
      }
      if (v === null || v === undefined) return;
      if (typeof v !== 'object' || Array.isArray(v)) bad(where, 'must be a map');
      docs.push({ where, doc: v as Rec });
    });
  }
  const settingsDocs = docs.filter((d) => d.doc['kind'] === 'response-settings');
  if (settingsDocs.length > 1)
    bad(settingsDocs[1]?.where ?? '', 'only one response-settings document is allowed');
  const s = settingsDocs[0];
  const settings = s === undefined ? DEFAULT_SETTINGS : parseSettings(s.doc, s.where);
  const playbooks: Playbook[] = [];
  const ids = new Set<string>();
  for (const d of docs) {
    if (d.doc['kind'] === 'response-settings') continue;
    if (d.doc['kind'] !== 'playbook') bad(d.where, 'kind must be playbook or response-settings');
    const p = parsePlaybook(d.doc, d.where, settings.escalation);
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
