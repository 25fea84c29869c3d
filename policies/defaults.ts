// Where the default policy files are (policies/default/), found from the source tree or from
// dist/ (both under the repository root), for the commands and services that fall back on them.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** policies/default/<what>: a folder (rules, playbooks) or a file (reporter-policy.yaml). */
export function defaultPolicyPath(what: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const p = join(dir, 'policies', 'default', what);
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  return join('policies', 'default', what);
}
