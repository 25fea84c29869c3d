// Every relative link in the repository's Markdown (README, SECURITY, CHANGELOG, docs/, deploy/)
// names a file of the repository, so the links work in a clone.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const FILES = [
  'README.md',
  'SECURITY.md',
  'CHANGELOG.md',
  ...['docs', 'deploy'].flatMap((d) =>
    readdirSync(join(ROOT, d))
      .filter((f) => f.endsWith('.md'))
      .map((f) => join(d, f)),
  ),
];

/** Targets of inline links `[text](target)`, without a #fragment; external ones left out. */
function relativeLinks(md: string): string[] {
  const out: string[] = [];
  for (const m of md.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const target = m[1]!;
    if (/^[a-z]+:/i.test(target) || target.startsWith('#')) continue;
    out.push(target.split('#')[0]!);
  }
  return out;
}

describe('Markdown links', () => {
  it('the LICENSE is the Apache-2.0 text package.json names', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { license: string };
    expect(pkg.license).toBe('Apache-2.0');
    const text = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
    expect(text).toContain('Apache License');
    expect(text).toContain('Version 2.0, January 2004');
    expect(text).toContain('END OF TERMS AND CONDITIONS');
  });

  for (const file of FILES) {
    it(`${file}: every relative link names a file in the repository`, () => {
      const md = readFileSync(join(ROOT, file), 'utf8');
      const broken = relativeLinks(md).filter((t) => {
        const abs = join(ROOT, dirname(file), t);
        return !existsSync(abs) || relative(ROOT, abs).startsWith('..');
      });
      expect(broken).toEqual([]);
    });
  }
});
