// Loads every *.yaml / *.yml rule file under a folder (sorted, recursive to a small depth) into
// one resolved RuleSet. The only I/O of the rule language.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EdgewardError } from '../../common/errors.js';
import { MAX_RULE_FILE, parseRuleText, resolveRules, type ParsedFile, type ParseOptions } from './parse.js';
import { parsePipeline, parsePlaceholders } from './pipeline.js';
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

/**
 * Loads a rule folder. Besides rule files it may hold field-mapping pipelines (`kind:
 * field-mapping`, applied to every rule of the folder in file order) and placeholder values
 * (`kind: placeholders`, for `expand`); `opts` adds to them.
 */
export async function loadRules(dir: string, opts: ParseOptions = {}): Promise<RuleSet> {
  const files: string[] = [];
  await listRuleFiles(dir, 0, files);
  const texts: { file: string; text: string }[] = [];
  for (const f of files) {
    try {
      const st = await stat(f);
      if (st.size > MAX_RULE_FILE)
        throw new EdgewardError('ERR_POLICY_RULE_TOO_LARGE', `${f}: larger than 256 KiB`);
      texts.push({ file: f, text: await readFile(f, 'utf8') });
    } catch (err) {
      if (err instanceof EdgewardError) throw err;
      throw new EdgewardError('ERR_POLICY_RULE_READ', `cannot read ${f}`, { cause: err });
    }
  }
  const pipelines = [...(opts.pipelines ?? [])];
  const placeholders = new Map(opts.placeholders ?? []);
  const rules: { file: string; text: string }[] = [];
  for (const t of texts) {
    if (/^kind:\s*field-mapping\s*$/m.test(t.text)) pipelines.push(parsePipeline(t.text, t.file));
    else if (/^kind:\s*placeholders\s*$/m.test(t.text)) {
      for (const [k, v] of parsePlaceholders(t.text, t.file)) placeholders.set(k, v);
    } else rules.push(t);
  }
  const o: ParseOptions = { pipelines, placeholders };
  return resolveRules(rules.map((t): ParsedFile => parseRuleText(t.text, t.file, o)));
}
