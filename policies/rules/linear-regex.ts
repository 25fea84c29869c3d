// Compiles a rule's regular expression with RE2, an automaton engine whose match time is linear in
// the subject and that cannot backtrack: what it cannot run (backreferences, lookarounds) is
// refused. Patterns and subjects stay bounded (event fields are at most 1024 characters).
import { createRequire } from 'node:module';
import type * as RE2Module from 're2';
import { EdgewardError } from '../../common/errors.js';

// re2 is a CommonJS addon (`export =`); loaded through require, typed from its declarations.
type RE2Constructor = typeof RE2Module;
const RE2 = createRequire(import.meta.url)('re2') as RE2Constructor;

export const MAX_REGEX_LENGTH = 256;
/** The longest field value an event may carry (OPEN_LIMITS.maxString in common/events.ts). */
export const MAX_REGEX_SUBJECT = 8192;

/** The flags a rule may ask for: case-insensitive, multi-line anchors, dot matches newlines. */
export type RuleRegexFlag = 'i' | 'm' | 's';

export interface RuleRegex {
  readonly source: string;
  /** The engine that runs it: always RE2, so no rule can make the SIEM backtrack. */
  readonly engine: 're2';
  /** False for subjects longer than MAX_REGEX_SUBJECT (they are never run). */
  test(subject: string): boolean;
}

/**
 * What in the pattern needs a backtracking engine, or null: backreferences (`\1`, `\k<n>`) and
 * lookarounds (`(?=`, `(?!`, `(?<=`, `(?<!`). Scanned ourselves so that the refusal has its own
 * code whichever engine version reports it; RE2 refuses them too.
 */
export function backtrackingConstruct(src: string): string | null {
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') {
      const n = src[i + 1] ?? '';
      if (!inClass && (/[1-9]/.test(n) || (n === 'k' && src[i + 2] === '<'))) return 'a backreference';
      i++;
    } else if (inClass) {
      if (c === ']') inClass = false;
    } else if (c === '[') {
      inClass = true;
      if (src[i + 1] === ']') i++; // a leading ] is a literal in the class
    } else if (c === '(' && src[i + 1] === '?') {
      const a = src[i + 2];
      const b = src[i + 3];
      if (a === '=' || a === '!' || (a === '<' && (b === '=' || b === '!'))) return 'a lookaround';
    }
  }
  return null;
}

/**
 * Compiles a rule regex or throws ERR_POLICY_RULE_REGEX (empty, too long, invalid, or beyond RE2,
 * e.g. a repetition over 1000) / ERR_POLICY_RULE_REGEX_UNSAFE (needs backtracking). `where` names
 * the rule file, document and key, and leads every message.
 */
export function compileRuleRegex(src: unknown, flags: readonly RuleRegexFlag[], where: string): RuleRegex {
  if (typeof src !== 'string' || src.length === 0 || src.length > MAX_REGEX_LENGTH) {
    throw new EdgewardError(
      'ERR_POLICY_RULE_REGEX',
      `${where}: regex must be 1..${MAX_REGEX_LENGTH} characters`,
    );
  }
  const why = backtrackingConstruct(src);
  if (why !== null)
    throw new EdgewardError(
      'ERR_POLICY_RULE_REGEX_UNSAFE',
      `${where}: ${why} needs a backtracking engine; rule regexes run on RE2 (linear time)`,
    );
  let re: InstanceType<typeof RE2>;
  try {
    re = new RE2(src, [...new Set(flags)].join(''));
  } catch (err) {
    throw new EdgewardError(
      'ERR_POLICY_RULE_REGEX',
      `${where}: invalid regular expression or not supported by RE2`,
      { cause: err },
    );
  }
  return {
    source: src,
    engine: 're2',
    test: (s) => s.length <= MAX_REGEX_SUBJECT && re.test(s),
  };
}

/**
 * Compiles the anchored pattern a wildcard value becomes (sigma-string.ts): RE2, `s` so that `*`
 * crosses newlines, `i` unless the value is `cased`. Its length follows the value's (at most 4096).
 */
export function compileGlobRegex(src: string, caseless: boolean): { test(subject: string): boolean } {
  const re = new RE2(src, caseless ? 'si' : 's');
  return { test: (s) => re.test(s) };
}
