// Operator files read through YAML and their schemas: rule files, playbooks, attestation policies,
// the reporter policy and agent configurations. Mutated as text and as trees (parsed, changed,
// written back as YAML), seeded with the default policy files and the documented examples.
import { tmpdir } from 'node:os';
import { parseAllDocuments, stringify as stringifyYaml } from 'yaml';
import { METHOD_NAMES } from '../../../attestation/index.js';
import { parseAgentConfig } from '../../../agent/index.js';
import { CODES, type ErrorCode } from '../../../common/errors.js';
import { checkAttestationPolicy, parsePlaybookTexts, parseReporterPolicy } from '../../../policies/index.js';
import { checkRuleFile } from '../../../policies/rules/index.js';
import type { FuzzTarget, Rng } from '../engine.js';
import { loadCorpus } from '../corpus.js';
import { mutateTree, valuePool } from '../json.js';

// The YAML library reports odd tags through process warnings; at a million inputs those are noise
// (the parsers' own verdicts are what the oracles judge), so the fuzz process drops them.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning: string | Error, ...rest: unknown[]) => {
  if (warning instanceof Error && warning.name === 'YAMLWarning') return;
  if (typeof warning === 'string' && warning.startsWith('Keys with collection values')) return;
  (emitWarning as (w: string | Error, ...r: unknown[]) => void)(warning, ...rest);
};

const YAML_DICT = [
  '&a ',
  '*a',
  '<<: *a',
  '!!binary ',
  '!!str ',
  '!!map ',
  '!!js/function ',
  '? ',
  '- ',
  ': ',
  '{',
  '}',
  '[',
  ']',
  '|',
  '>-',
  '---\n',
  '...\n',
  '%YAML 1.1\n',
  '"\\u0000"',
  '~',
  '.inf',
  '0x1F',
  '1_000',
  'yes',
  'no',
  '__proto__: ',
  '\t',
  '\n  ',
  '#',
  "'",
  '"',
];

/** Codes of these prefixes, and the shared input codes, are what a YAML file may be refused with. */
function codesOf(...prefixes: string[]): ErrorCode[] {
  const shared = ['ERR_CONFIG_INVALID', 'ERR_ID_INVALID', 'ERR_INPUT_MALFORMED', 'ERR_SERIAL_INVALID'];
  return (Object.keys(CODES) as ErrorCode[]).filter(
    (c) => shared.includes(c) || c.startsWith('ERR_IP_') || prefixes.some((p) => c.startsWith(p)),
  );
}

function yamlTarget(o: {
  name: string;
  about: string;
  sources: string[];
  codes: ErrorCode[];
  keys: string[];
  run: (text: string) => unknown;
}): FuzzTarget<unknown> {
  let docs: unknown[] | undefined;
  return {
    name: o.name,
    about: o.about,
    sources: o.sources,
    codes: o.codes,
    dictionary: [...YAML_DICT, ...o.keys.map((k) => `${k}: `)],
    generateShare: 0.5,
    maxBytes: 64 * 1024,
    seeds: () => loadCorpus(o.name),
    generate(rng: Rng) {
      // A file may hold several documents (rules with their tests): each is a tree of its own.
      docs ??= loadCorpus(o.name).map((b) =>
        parseAllDocuments(b.toString('utf8')).map((d) => d.toJS() as unknown),
      );
      const file = [...(rng.pick(docs) as unknown[])];
      const i = rng.below(file.length);
      file[i] = mutateTree(file[i], rng, valuePool(19), o.keys);
      const style = rng.chance(0.3) ? 'flow' : 'any';
      return Buffer.from(file.map((d) => stringifyYaml(d, { collectionStyle: style })).join('---\n'));
    },
    run: (input) => o.run(input.toString('utf8')),
  };
}

export const rules = yamlTarget({
  name: 'rules',
  about: 'rule files (policies/rules checkRuleFile: YAML, the rule schema, detections, conditions, regexes)',
  sources: [
    'policies/rules/parse.ts',
    'policies/rules/detection.ts',
    'policies/rules/condition.ts',
    'policies/rules/linear-regex.ts',
  ],
  codes: codesOf('ERR_POLICY_RULE_'),
  keys: [
    'title',
    'id',
    'status',
    'level',
    'logsource',
    'detection',
    'condition',
    'selection',
    'filter',
    'correlation',
    'type',
    'rules',
    'group-by',
    'timespan',
    'gte',
    'tests',
    'fields',
    'tags',
    'contains',
    'startswith',
    'endswith',
    're',
    'cidr',
    'all',
    'exists',
  ],
  run: (text) => checkRuleFile(text, 'fuzz.yaml'),
});

export const playbooks = yamlTarget({
  name: 'playbooks',
  about: 'playbooks (policies/playbooks parsePlaybookTexts: YAML and the playbook schema)',
  sources: ['policies/playbooks/parse-playbooks.ts'],
  codes: codesOf('ERR_SIEM_PLAYBOOK_', 'ERR_POLICY_'),
  keys: [
    'playbooks',
    'settings',
    'id',
    'match',
    'rules',
    'levels',
    'action',
    'scope',
    'duration',
    'escalate',
    'budget',
    'allowlist',
    'protected',
    'type',
    'value',
  ],
  run: (text) => parsePlaybookTexts([{ name: 'fuzz.yaml', text }]),
});

const BASE_DIR = tmpdir();
export const attestationPolicy = yamlTarget({
  name: 'attestation-policy',
  about:
    'attestation policies (policies/attestation-policy.ts checkAttestationPolicy: YAML, schema, certificates, PCRs, allow-lists)',
  sources: ['policies/attestation-policy.ts'],
  codes: codesOf('ERR_POLICY_ATT_', 'ERR_PEM_'),
  keys: [
    'version',
    'ek',
    'roots',
    'intermediates',
    'allow',
    'pem',
    'file',
    'sha256',
    'identities',
    'match',
    'methods',
    'tpm',
    'pcrs',
    'bank',
    'nonceTtl',
    'puf',
  ],
  run: (text) => checkAttestationPolicy(text, { methods: METHOD_NAMES, baseDir: BASE_DIR }),
});

export const reporterPolicy = yamlTarget({
  name: 'reporter-policy',
  about: 'the reporter policy (policies/reporter-policy.ts parseReporterPolicy)',
  sources: ['policies/reporter-policy.ts'],
  codes: codesOf('ERR_POLICY_REPORTER_'),
  keys: [
    'kind',
    'reporters',
    'id',
    'description',
    'kinds',
    'actions',
    'about',
    'budgets',
    'subscribers',
    'eventsPerSecond',
    'eventsBurst',
  ],
  run: (text) => parseReporterPolicy(text, 'fuzz.yaml'),
});

export const agentConfig = yamlTarget({
  name: 'agent-config',
  about: 'agent configurations (agent/config.ts parseAgentConfig: YAML and the config schema)',
  sources: ['agent/config.ts'],
  codes: codesOf('ERR_AGENT_CONFIG_'),
  keys: [
    'identity',
    'dir',
    'id',
    'ca',
    'url',
    'fingerprint',
    'crlInterval',
    'enroll',
    'attest',
    'tcti',
    'puf',
    'siem',
    'admin',
    'listen',
    'decisions',
    'key',
    'file',
    'limits',
    'inbound',
    'outbound',
    'forward',
    'allow',
    'deny',
    'proxyProtocol',
    'connect',
    'expect',
  ],
  run: (text) => parseAgentConfig(text, 'fuzz.yaml'),
});
