// A reporter policy for a test SIEM: the default one (policies/default/reporter-policy.yaml) with
// some of its budgets replaced, written to a temporary file for `siem serve --reporter-policy`.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { tempDir } from './tmp.js';

export const DEFAULT_REPORTER_POLICY = join(
  import.meta.dirname,
  '..',
  '..',
  'policies',
  'default',
  'reporter-policy.yaml',
);

export type ReporterBudgetName =
  'events-per-second' | 'events-burst' | 'correlation-keys' | 'decision-streams';

/** The default reporter policy with `budgets` replaced where given; returns the file. */
export function reporterPolicyFile(budgets: Partial<Record<ReporterBudgetName, number>>): string {
  const doc = parseDocument(readFileSync(DEFAULT_REPORTER_POLICY, 'utf8'));
  for (const [name, value] of Object.entries(budgets)) doc.setIn(['budgets', name], value);
  const file = join(tempDir('edgeward-reporter-policy-'), 'reporter-policy.yaml');
  writeFileSync(file, doc.toString(), { mode: 0o600 });
  return file;
}
