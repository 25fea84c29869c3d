// Loads every *.yaml / *.yml rule file under a folder (sorted, recursive to a small depth) into
// one resolved RuleSet. The only I/O of the rule language.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EdgewardError } from '../../common/errors.js';
import { MAX_RULE_FILE, parseRuleText, resolveRules, type ParsedFile, type ParseOptions } from './parse.js';
import type { RuleSet } from './types.js';

const MAX_DEPTH = 4;
const MAX_FILES = 1000;

async function listRuleFiles(dir: string, depth: number, out: string[]): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw new EdgewardError('ERR_POLICY_RULE_READ', `cannot read ${dir}`, { cause: err });
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory() && depth < MAX_DEPTH) await listRuleFiles(p, depth + 1, out);
    else if (e.isFile() && /\.ya?ml$/.test(e.name)) out.push(p);
    if (out.length > MAX_FILES)
      throw new EdgewardError('ERR_POLICY_RULE_TOO_LARGE', `more than ${MAX_FILES} rule files`);
  }
}

export async function loadRules(dir: string, opts: ParseOptions = {}): Promise<RuleSet> {
  const files: string[] = [];
  await listRuleFiles(dir, 0, files);
  const parsed: ParsedFile[] = [];
  for (const f of files) {
    let text: string;
    try {
      const st = await stat(f);
      if (st.size > MAX_RULE_FILE)
        throw new EdgewardError('ERR_POLICY_RULE_TOO_LARGE', `${f}: larger than 256 KiB`);
      text = await readFile(f, 'utf8');
    } catch (err) {
      if (err instanceof EdgewardError) throw err;
      throw new EdgewardError('ERR_POLICY_RULE_READ', `cannot read ${f}`, { cause: err });
    }
    parsed.push(parseRuleText(text, f, opts));
  }
  return resolveRules(parsed);
}
