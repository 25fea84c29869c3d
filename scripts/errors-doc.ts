// Renders docs/errors.md from the code table (npm run docs:errors); a test keeps them in step.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CODES } from '../common/codes.js';

const PARTS: Array<[string, string]> = [
  ['ERR_CA_', 'CA service'],
  ['ERR_ENROLL_', 'Enrollment and renewal client'],
  ['ERR_ATT_TPM_', 'TPM attestation'],
  ['ERR_ATT_PUF_', 'PUF attestation'],
  ['ERR_ATT_', 'Attestation'],
  ['ERR_POLICY_', 'Policies'],
  ['ERR_AGENT_', 'Edge agent'],
  ['ERR_DECISION_', 'Decisions'],
  ['ERR_SIEM_', 'SIEM'],
  ['ERR_DASH_', 'Dashboard'],
  ['ERR_', 'Common'],
];

export function renderErrorsDoc(): string {
  const groups = new Map<string, string[]>();
  for (const code of Object.keys(CODES)) {
    const part = PARTS.find(([p]) => code.startsWith(p))?.[1] ?? 'Common';
    groups.set(part, [...(groups.get(part) ?? []), code]);
  }
  const lines = [
    '# Error codes',
    '',
    'Every refusal carries one of these codes. Clients get `{statusCode, code, error, message}` with the',
    'generic message below; the detail goes to the logs and the audit trail. Generated from',
    '`common/codes.ts` by `npm run docs:errors`; a test fails when this file is out of date.',
    '',
  ];
  for (const [, part] of PARTS) {
    const codes = groups.get(part);
    if (!codes) continue;
    lines.push(`## ${part}`, '', '| code | HTTP | meaning |', '| --- | --- | --- |');
    for (const c of codes) {
      const def = CODES[c as keyof typeof CODES];
      lines.push(`| \`${c}\` | ${def.status} | ${def.message} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(new URL('../../docs/errors.md', import.meta.url), renderErrorsDoc());
}
