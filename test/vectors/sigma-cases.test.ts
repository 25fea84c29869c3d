// The Sigma conformance vectors (test/vectors/sigma/*.yaml) are well-formed and carry their
// provenance; and the checker refuses a case that lacks either. The engine runner is separate.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkCaseFile, checkCaseFiles } from './sigma/check-cases.js';

const DIR = join(import.meta.dirname, 'sigma');
const FILES = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((name) => ({ name, text: readFileSync(join(DIR, name), 'utf8') }));

const GOOD = `area: t
spec: { repo: SigmaHQ/sigma-specification, commit: ba9251aa834b11a70dbf80836b453dba99c5159e }
cases:
  - id: one
    about: a case
    from: { doc: specification/sigma-rules-specification.md, section: Maps, basis: spec }
    rule: |
      title: t
      logsource: { category: test }
      detection:
        selection: { A: 1 }
        condition: selection
    events:
      - { A: 1 }
    expect: { matches: [0] }
`;

describe('Sigma conformance vectors', () => {
  const checked = checkCaseFiles(FILES);

  it('every case file parses, names its source and has a well-formed expectation', () => {
    expect(checked.flatMap((f) => f.problems)).toEqual([]);
  });

  it('holds every area of the README, with 250 to 400 cases in all', () => {
    const areas = checked.map((f) => f.area);
    for (const a of ['values', 'wildcards', 'modifiers-strings', 'modifiers-encoding', 'modifiers-regex'])
      expect(areas).toContain(a);
    for (const a of [
      'modifiers-other',
      'null-and-keywords',
      'conditions',
      'validity',
      'correlation-chaining',
    ])
      expect(areas).toContain(a);
    const total = checked.reduce((n, f) => n + f.cases.length, 0);
    expect(total).toBeGreaterThanOrEqual(250);
    expect(total).toBeLessThanOrEqual(400);
  });

  it('the checker passes a good file', () => {
    expect(checkCaseFile(GOOD, 't.yaml').problems).toEqual([]);
  });

  it('the checker refuses a case without provenance', () => {
    const text = GOOD.replace(
      'from: { doc: specification/sigma-rules-specification.md, section: Maps, basis: spec }',
      'from: { doc: specification/sigma-rules-specification.md, section: Maps, basis: choice }',
    );
    expect(checkCaseFile(text, 't.yaml').problems).toEqual([
      't.yaml one: from.note is required for basis choice',
    ]);
  });

  it('the checker refuses a section that is not a heading of the document', () => {
    const text = GOOD.replace('section: Maps', 'section: Mappings');
    expect(checkCaseFile(text, 't.yaml').problems[0]).toMatch(/"Mappings" is not a heading/);
  });

  it('the checker refuses a match index beyond the events', () => {
    const text = GOOD.replace('expect: { matches: [0] }', 'expect: { matches: [0, 1] }');
    expect(checkCaseFile(text, 't.yaml').problems).toEqual([
      't.yaml one: expect.matches: sorted distinct event indices',
    ]);
  });

  it('the checker refuses a refusal whose key path is not in the rule', () => {
    const text = GOOD.replace(
      'expect: { matches: [0] }',
      'expect: { refused: { doc: 0, path: [detektion, selection], kind: schema, about: x } }',
    );
    expect(checkCaseFile(text, 't.yaml').problems).toEqual([
      't.yaml one: expect.refused.path: detektion is not in the rule',
    ]);
  });

  it('the checker refuses an id used twice across files', () => {
    const twice = checkCaseFiles([
      { name: 't.yaml', text: GOOD },
      { name: 'u.yaml', text: GOOD.replace('area: t', 'area: u') },
    ]);
    expect(twice[1]?.problems).toEqual(['u.yaml one: id also used in t.yaml']);
  });
});
