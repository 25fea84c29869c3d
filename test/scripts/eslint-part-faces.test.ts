// The import rule (docs/architecture.md) as eslint runs it: each wrong way of reaching another
// part is refused with a message that names the file, the target and the rule.
import { join } from 'node:path';
import { Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const RULE = join(ROOT, 'scripts', 'eslint-part-faces.mjs');

interface RuleModule {
  readonly DEPENDS: Readonly<Record<string, readonly string[]>>;
  refusal(from: string, to: string): string | null;
  readonly default: NonNullable<Linter.Config['plugins']>[string];
}
const mod = (await import(RULE)) as RuleModule;

/** The messages eslint reports for `code` as if it were the file at `path` in the repository. */
function lint(path: string, code: string): string[] {
  const linter = new Linter({ configType: 'flat' });
  return linter
    .verify(
      code,
      [
        {
          files: ['**/*.ts'],
          languageOptions: { parser: tseslint.parser },
          plugins: { edgeward: mod.default },
          rules: { 'edgeward/part-faces': 'error' },
        },
      ],
      { filename: join(ROOT, path) },
    )
    .map((m) => m.message);
}

describe('the import rule', () => {
  it('lets a part reach another part through its face or a sub-face, and common/ from anywhere', () => {
    expect(lint('siem/service/identity.ts', "import { enroll } from '../../client/index.js';")).toEqual([]);
    expect(lint('siem/server.ts', "import type { RuleSet } from '../policies/rules/index.js';")).toEqual([]);
    expect(lint('agent/agent.ts', "import { EdgewardError } from '../common/errors.js';")).toEqual([]);
    expect(lint('cli/policy.ts', "import { assertRuleTests } from '../siem/correlate/index.js';")).toEqual(
      [],
    );
    expect(lint('bench/dashboard.ts', "import { initCa } from '../ca/index.js';")).toEqual([]);
    expect(lint('test/ca/sessions.test.ts', "import { CaService } from '../../ca/service.js';")).toEqual([]);
    expect(lint('agent/run.ts', "import { Agent } from './agent.js';\nimport pino from 'pino';")).toEqual([]);
    // The dispatcher loads a part's command module on its own, and only the dispatcher may.
    expect(lint('cli/edgeward.ts', "await import('../ca/cli.js');")).toEqual([]);
    expect(lint('bench/ca-issuance.ts', "import { runCaCommand } from '../ca/cli.js';")[0]).toContain(
      'ca/cli.ts is inside ca/',
    );
  });

  it("refuses a part importing another part's internal file (static, type-only, re-export and dynamic)", () => {
    const want =
      'siem/service/identity.ts imports client/enroll.ts: client/enroll.ts is inside client/: import the ' +
      'part\'s face (client/index.ts) or a sub-face (a folder\'s index.ts) (docs/architecture.md, "The import rule")';
    expect(lint('siem/service/identity.ts', "import { enroll } from '../../client/enroll.js';")).toEqual([
      want,
    ]);
    expect(
      lint('siem/service/identity.ts', "import type { EnrollOptions } from '../../client/enroll.js';"),
    ).toEqual([want]);
    expect(lint('siem/service/identity.ts', "export { enroll } from '../../client/enroll.js';")).toEqual([
      want,
    ]);
    expect(lint('siem/service/identity.ts', "await import('../../client/enroll.js');")).toEqual([want]);
  });

  it('refuses an arrow against the layering, even through a face', () => {
    expect(lint('client/enroll.ts', "import { Agent } from '../agent/index.js';")).toEqual([
      'client/enroll.ts imports agent/index.ts: client/ may not import agent/: client/ depends on common, ' +
        'attestation only (docs/architecture.md, "The import rule")',
    ]);
    expect(
      lint('attestation/tpm/method.ts', "import type { CaStore } from '../../ca/index.js';")[0],
    ).toContain('attestation/ may not import ca/');
    expect(
      lint('policies/authz.ts', "import { Correlator } from '../siem/correlate/index.js';")[0],
    ).toContain('policies/ may not import siem/');
  });

  it('keeps common/ a kernel, cli/ unimported, tests and benches out of the parts', () => {
    expect(lint('common/x509.ts', "import { FILES } from '../ca/index.js';")[0]).toContain(
      'common/ is the shared kernel and imports no part (here ca/)',
    );
    expect(lint('ca/cli.ts', "import { parse } from '../cli/args.js';")[0]).toContain(
      'ca/ may not import cli/',
    );
    expect(
      lint('test/integration/demo.test.ts', "import { runDemo } from '../../cli/demo.js';")[0],
    ).toContain('cli/ is the command dispatcher: nothing imports it');
    expect(lint('agent/run.ts', "import { tempDir } from '../test/helpers/tmp.js';")[0]).toContain(
      'agent/ is a part and does not import test/',
    );
  });

  it("lets a part's tests reach its internals, and other parts only through faces", () => {
    expect(lint('test/client/spool.test.ts', "import { Spool } from '../../client/spool.js';")).toEqual([]);
    expect(
      lint('test/client/reporter.test.ts', "import { Rotation } from '../../agent/rotation.js';")[0],
    ).toContain('agent/rotation.ts is inside agent/');
    expect(
      lint('test/integration/mesh.test.ts', "import { FILES } from '../../ca/authority.js';")[0],
    ).toContain("import the part's face (ca/index.ts)");
  });

  it('refuses a part importing its own top-level face (a cycle)', () => {
    expect(lint('attestation/tpm/pcrs.ts', "import { METHODS } from '../index.js';")[0]).toContain(
      'import the file itself: attestation/index.ts is the face other parts use',
    );
  });

  it('the layering has no cycle', () => {
    const seen = new Set<string>();
    const visit = (part: string, path: readonly string[]): void => {
      expect(path, `cycle ${[...path, part].join(' -> ')}`).not.toContain(part);
      if (seen.has(part)) return;
      for (const dep of mod.DEPENDS[part] ?? []) visit(dep, [...path, part]);
      seen.add(part);
    };
    for (const part of Object.keys(mod.DEPENDS)) visit(part, []);
    expect(seen.size).toBe(8);
  });
});
