// Rule regexes run on RE2, which cannot backtrack: pathological patterns finish on bounded input,
// backreferences and lookarounds are refused with their own code, and i/m/s flags work.
import { describe, expect, it } from 'vitest';
import { backtrackingConstruct, compileRuleRegex, MAX_REGEX_LENGTH } from '../../../policies/rules/index.js';

describe('compileRuleRegex', () => {
  it('compiles ordinary patterns with the linear-time engine', () => {
    for (const p of [
      '^spiffe://[^/]+/device/',
      'a+b*c?',
      '(ab)+',
      '(?:x|y)',
      '[a-z]{1,16}',
      '\\d+\\.\\d+',
      '(?<name>ab)c',
      '[(]+',
    ]) {
      const r = compileRuleRegex(p, [], 'w');
      expect(r.engine, p).toBe('re2');
      expect(r.source).toBe(p);
    }
  });

  it('runs what made the old guard hang (catastrophic backtracking on V8) to completion', () => {
    // `.*.*.*.*.*x` took 2.4 s on 100 characters on V8's backtracking engine; the nested and
    // alternating forms are the textbook exponential cases. Behaviour is asserted, not timing:
    // each match completes and answers correctly on the longest subject a rule ever sees.
    const subject = `${'a'.repeat(1023)}!`;
    for (const p of ['.*.*.*.*.*x', '(a+)+$', '(a*)*b', '(a|aa)*c', '(x+x+)+y', '(a|a)*$b']) {
      const r = compileRuleRegex(p, [], 'w');
      expect(r.engine).toBe('re2');
      expect(r.test(subject), p).toBe(false);
    }
    expect(compileRuleRegex('(a+)+$', [], 'w').test('aaaa')).toBe(true);
  });

  it('refuses backreferences and lookarounds with ERR_POLICY_RULE_REGEX_UNSAFE naming where', () => {
    for (const p of ['(a)\\1', '(?<n>a)\\k<n>', 'a(?=b)', 'a(?!b)', '(?<=a)b', '(?<!a)b']) {
      const where = 'rules/x.yaml#0.detection.sel: event.reason|re';
      expect(() => compileRuleRegex(p, [], where), p).toThrow(
        expect.objectContaining({ code: 'ERR_POLICY_RULE_REGEX_UNSAFE' }),
      );
      expect(() => compileRuleRegex(p, [], where), p).toThrow(where);
    }
    // The same characters where they are no construct at all.
    for (const p of ['[(?=]', '\\(?=x', '[\\1]', 'a\\\\1']) expect(backtrackingConstruct(p), p).toBeNull();
  });

  it('refuses invalid, over-long and beyond-RE2 patterns with ERR_POLICY_RULE_REGEX', () => {
    for (const p of ['(', '', 'a'.repeat(MAX_REGEX_LENGTH + 1), 'a{1001}', '(?:a{100}){100}', 42]) {
      expect(() => compileRuleRegex(p, [], 'w'), String(p).slice(0, 20)).toThrow(
        expect.objectContaining({ code: 'ERR_POLICY_RULE_REGEX' }),
      );
    }
  });

  it('supports the i, m and s flags (issue 16 needs them for Sigma re)', () => {
    expect(compileRuleRegex('^a', ['i'], 'w').test('ABC')).toBe(true);
    expect(compileRuleRegex('^a', [], 'w').test('ABC')).toBe(false);
    expect(compileRuleRegex('^b$', ['m'], 'w').test('a\nb')).toBe(true);
    expect(compileRuleRegex('^b$', [], 'w').test('a\nb')).toBe(false);
    expect(compileRuleRegex('a.b', ['s'], 'w').test('a\nb')).toBe(true);
    expect(compileRuleRegex('a.b', [], 'w').test('a\nb')).toBe(false);
  });

  it('never runs on subjects longer than a field may be', () => {
    expect(compileRuleRegex('a', [], 'w').test('a'.repeat(8193))).toBe(false);
    expect(compileRuleRegex('a$', [], 'w').test('b'.repeat(8191) + 'a')).toBe(true);
  });
});
