// `npm run lint` formats the repository's own files only: a data folder made inside the checkout
// (here by a real `edgeward ca init --data`, plus the YAML and JSON a demo writes) is ignored by
// Prettier whatever its name, while every tracked source, config and policy file is still checked.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as prettier from 'prettier';
import { afterAll, describe, expect, it } from 'vitest';
import { edgeward } from '../helpers/cli.js';

const ROOT = join(import.meta.dirname, '..', '..');
const IGNORE = [join(ROOT, '.gitignore'), join(ROOT, '.prettierignore')];
const probe = mkdtempSync(join(ROOT, 'lint-probe-'));
afterAll(() => rmSync(probe, { recursive: true, force: true }));

async function ignored(file: string): Promise<boolean> {
  return (await prettier.getFileInfo(file, { ignorePath: IGNORE })).ignored;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

describe('lint ignores data folders', () => {
  it('a CA data folder and demo files inside the checkout are not read by prettier', async () => {
    const ca = join(probe, 'ca');
    const r = edgeward(['ca', 'init', '--data', ca, '--trust-domain', 'factory.example']);
    expect(r.status, r.stderr).toBe(0);
    writeFileSync(join(probe, 'agent-n1.yaml'), 'identity:   {dir: ./n1}\n');
    writeFileSync(join(probe, 'decisions.json'), '{"v":2}');
    writeFileSync(join(probe, '.edgeward-demo.lock'), `${process.pid}\n`);
    const files = walk(probe);
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) expect(await ignored(f), relative(ROOT, f)).toBe(true);
  });

  it('every tracked source, configuration and policy file is still checked', async () => {
    const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' })
      .split('\n')
      .filter((f) => /\.(ts|js|json|ya?ml)$/.test(f))
      .filter((f) => f !== 'package-lock.json' && !/^test\/vectors\/.*\.json$/.test(f));
    expect(tracked.length).toBeGreaterThan(100);
    const skipped: string[] = [];
    for (const f of tracked) if (await ignored(join(ROOT, f))) skipped.push(f);
    expect(skipped).toEqual([]);
  });
});
