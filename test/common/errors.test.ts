// Keeps the code table honest: every code used in the source is defined, every code defined is
// documented in docs/errors.md (generated), and clients see only the fixed shape.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CODES, EdgewardError, toClientError } from '../../common/errors.js';
import { renderErrorsDoc } from '../../scripts/errors-doc.js';

const ROOT = join(import.meta.dirname, '..', '..');
/** Codes of Node.js's own errors, which the agent inspects on sockets. */
const NODE_CODES = /^ERR_(TLS|SSL|SOCKET|STREAM|HTTP|PARSE_ARGS|OSSL)(_|$)/;
const SOURCE_DIRS = ['common', 'ca', 'agent', 'attestation', 'siem', 'policies', 'cli'];

function* sourceFiles(dir: string): Generator<string> {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) yield* sourceFiles(p);
    else if (e.endsWith('.ts')) yield p;
  }
}

describe('error codes', () => {
  it('defines every code the source uses', () => {
    const undefinedCodes: string[] = [];
    for (const d of SOURCE_DIRS) {
      for (const f of sourceFiles(join(ROOT, d))) {
        // A literal ending in `_` is a prefix test, not a code.
        for (const m of readFileSync(f, 'utf8').matchAll(/'(ERR_[A-Z0-9_]*[A-Z0-9])'/g)) {
          const code = m[1] ?? '';
          if (NODE_CODES.test(code)) continue;
          if (!Object.hasOwn(CODES, code)) undefinedCodes.push(`${code} in ${f.slice(ROOT.length + 1)}`);
        }
      }
    }
    expect(undefinedCodes).toEqual([]);
  });

  it('gives every code a 4xx/5xx status and a message', () => {
    for (const [code, def] of Object.entries(CODES)) {
      expect(def.status, code).toBeGreaterThanOrEqual(400);
      expect(def.status, code).toBeLessThan(600);
      expect(def.message.length, code).toBeGreaterThan(3);
    }
  });

  it('documents every code (docs/errors.md is up to date: npm run docs:errors)', () => {
    expect(readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8')).toBe(renderErrorsDoc());
  });

  it('shows clients the generic message, never the detail', () => {
    const e = new EdgewardError('ERR_CA_CSR_SIGNATURE', 'secret internal detail', { detail: { key: 'x' } });
    expect(toClientError(e)).toEqual({
      statusCode: 400,
      code: 'ERR_CA_CSR_SIGNATURE',
      error: 'Bad Request',
      message: 'CSR signature does not verify',
    });
  });
});
