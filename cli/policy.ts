// `edgeward policy check FILE|DIR...` and `edgeward policy pcrs`: validate policy files before they
// are deployed (attestation policies, detection/correlation rules, playbooks and response
// settings, reporter policies, agent configurations), and read a reference device's PCRs into the
// attestation policy format.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseCommand, UsageError } from '../common/args.js';
import { command } from '../common/commands.js';
import {
  describeAttestationPolicy,
  loadAttestationPolicy,
  describeReporterPolicy,
  parseReporterPolicy,
  parsePlaybookTexts,
} from '../policies/index.js';
import { checkRuleFile, parsePipeline, parsePlaceholders } from '../policies/rules/index.js';
import { assertRuleTests } from '../siem/correlate/index.js';

/** Which kind of policy a file holds, from its top-level keys. */
function kindOf(
  text: string,
): 'attestation' | 'playbook' | 'reporters' | 'pipeline' | 'placeholders' | 'agent' | 'rules' {
  if (/^(ek|identities)\s*:/m.test(text)) return 'attestation';
  if (/^kind:\s*(playbook|response-settings)\s*$/m.test(text)) return 'playbook';
  if (/^kind:\s*reporter-policy\s*$/m.test(text)) return 'reporters';
  if (/^kind:\s*field-mapping\s*$/m.test(text)) return 'pipeline';
  if (/^kind:\s*placeholders\s*$/m.test(text)) return 'placeholders';
  // An agent configuration has an identity section and its CA; a rule file has neither.
  if (/^identity\s*:/m.test(text) && /^ca\s*:/m.test(text)) return 'agent';
  return 'rules';
}

/** The files to check: a folder stands for the .yaml and .yml files in it, in name order. */
function filesOf(args: readonly string[]): string[] {
  return args.flatMap((arg) => {
    if (!statSync(arg).isDirectory()) return [arg];
    const found = readdirSync(arg)
      .filter((n) => /\.ya?ml$/.test(n))
      .sort()
      .map((n) => join(arg, n));
    if (found.length === 0) throw new UsageError(`${arg} holds no .yaml or .yml file`);
    return found;
  });
}

export async function runPolicyCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const [verb, ...rest] = argv;
  // The attestation part loads only for what needs it (a TPM, the attestation registry).
  if (verb === 'pcrs') return (await import('../attestation/tpm/index.js')).runPolicyPcrsCommand(rest, out);
  const spec = command('policy check');
  const a = parseCommand(rest, spec);
  for (const file of filesOf(a._)) {
    const text = readFileSync(file, 'utf8');
    switch (kindOf(text)) {
      case 'attestation': {
        const { METHOD_NAMES } = await import('../attestation/index.js');
        const policy = loadAttestationPolicy(file, METHOD_NAMES);
        out(`${file}: attestation policy OK\n${describeAttestationPolicy(policy)}`);
        break;
      }
      case 'playbook':
        parsePlaybookTexts([{ name: basename(file), text }]);
        out(`${file}: playbook OK`);
        break;
      case 'reporters':
        out(
          `${file}: reporter policy OK\n${describeReporterPolicy(parseReporterPolicy(text, basename(file)))}`,
        );
        break;
      case 'agent': {
        const { describeAgentConfig } = await import('./agent-check.js');
        const { parseAgentConfig } = await import('../agent/index.js');
        out(`${file}: agent configuration OK\n${describeAgentConfig(parseAgentConfig(text, file))}`);
        break;
      }
      case 'pipeline': {
        const p = parsePipeline(text, basename(file));
        out(`${file}: field-mapping pipeline OK (${p.id}, ${p.mappings.length} mappings)`);
        break;
      }
      case 'placeholders':
        out(`${file}: placeholders OK (${parsePlaceholders(text, basename(file)).size} names)`);
        break;
      default: {
        const rules = checkRuleFile(text, basename(file));
        // The tests a rule file carries run on the real engine: a rule that misses its own
        // examples is refused before it is deployed.
        const tests = assertRuleTests(rules);
        out(
          `${file}: rules OK (${rules.detections.length} detection, ${rules.correlations.length} correlation, ${tests.length} embedded tests pass)`,
        );
      }
    }
  }
  return 0;
}
