// Where the seed corpora live (test/fuzz/corpus/<target>/, one sample a file) and how they load,
// from the sources (vitest) and from dist/ (npm run fuzz) alike.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The repository root: the nearest folder above this file with a package.json. */
export function repoRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('fuzz: no package.json above the fuzz harness');
    dir = up;
  }
  root = dir;
  return dir;
}

export function corpusDir(target: string): string {
  return join(repoRoot(), 'test', 'fuzz', 'corpus', target);
}

/** Every sample of a target's corpus, in file-name order (*.md and _* files, such as an issuer's certificate, are not samples). */
export function loadCorpus(target: string): Buffer[] {
  const dir = corpusDir(target);
  if (!existsSync(dir)) throw new Error(`fuzz: no corpus folder ${dir}`);
  return readdirSync(dir)
    .filter((f) => !f.endsWith('.md') && !f.startsWith('_'))
    .sort()
    .map((f) => readFileSync(join(dir, f)));
}

/** The samples with their file names. */
export function loadCorpusFiles(target: string): { name: string; data: Buffer }[] {
  const dir = corpusDir(target);
  if (!existsSync(dir)) throw new Error(`fuzz: no corpus folder ${dir}`);
  return readdirSync(dir)
    .filter((f) => !f.endsWith('.md') && !f.startsWith('_'))
    .sort()
    .map((name) => ({ name, data: readFileSync(join(dir, name)) }));
}

/**
 * The samples a signed-input oracle may see accepted: the corpus less the inputs of findings
 * (`finding-*`), which are kept as samples so that every run replays them.
 */
export function validSamples(target: string): Set<string> {
  const dir = corpusDir(target);
  return new Set(
    readdirSync(dir)
      .filter((f) => !f.endsWith('.md') && !f.startsWith('_') && !f.startsWith('finding-'))
      .map((f) => readFileSync(join(dir, f)).toString('hex')),
  );
}

/** A file of the repository, read once (recorded vectors, default policy files). */
export function repoFile(...parts: string[]): Buffer {
  return readFileSync(join(repoRoot(), ...parts));
}
