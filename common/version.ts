// The edgeward version, package.json's: found from the source tree (tsx, tests) or from dist/
// (both sit under the repository root), read once.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function edgewardVersion(): string {
  if (cached !== undefined) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      const p = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (p.name === 'edgeward' && typeof p.version === 'string') return (cached = p.version);
    } catch {
      // not here: one folder up
    }
    dir = dirname(dir);
  }
  return (cached = 'unknown');
}
