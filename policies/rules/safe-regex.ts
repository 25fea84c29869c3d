// Compiles a rule's regular expression after a conservative catastrophic-backtracking check:
// bounded source length, no backreferences, star height at most one, no alternation under an
// unbounded quantifier. Subjects are bounded too (event fields are at most 1024 characters).
import { EdgewardError } from '../../common/errors.js';

export const MAX_REGEX_LENGTH = 256;
export const MAX_REGEX_SUBJECT = 1024;

interface Frame {
  /** The group contains an unbounded quantifier somewhere inside. */
  unbounded: boolean;
  /** The group contains a top-level `|`. */
  alternation: boolean;
}

/** Why the pattern is unsafe, or null. Exported for tests. */
export function unsafeReason(src: string): string | null {
  const stack: Frame[] = [{ unbounded: false, alternation: false }];
  // What the next quantifier applies to: a closed group's frame, or an atom (null).
  let last: Frame | null | undefined;
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === '\\') {
      const n = src[i + 1] ?? '';
      if (/[1-9]/.test(n) || n === 'k') return 'backreferences are not allowed';
      i += 2;
      last = null;
      continue;
    }
    if (c === '[') {
      // Skip the class; escapes inside it cannot close it.
      i++;
      if (src[i] === '^') i++;
      if (src[i] === ']') i++;
      while (i < src.length && src[i] !== ']') i += src[i] === '\\' ? 2 : 1;
      i++;
      last = null;
      continue;
    }
    if (c === '(') {
      stack.push({ unbounded: false, alternation: false });
      i++;
      if (src[i] === '?') {
        // (?: (?= (?! (?<= (?<! (?<name>
        i++;
        if (src[i] === '<' && src[i + 1] !== '=' && src[i + 1] !== '!') {
          const end = src.indexOf('>', i);
          i = end < 0 ? src.length : end + 1;
        } else {
          i += src[i] === '<' ? 2 : 1;
        }
      }
      last = undefined;
      continue;
    }
    if (c === ')') {
      const frame = stack.pop();
      if (frame === undefined || stack.length === 0) return 'unbalanced parenthesis';
      const parent = stack[stack.length - 1];
      if (parent !== undefined && frame.unbounded) parent.unbounded = true;
      last = frame;
      i++;
      continue;
    }
    if (c === '|') {
      const top = stack[stack.length - 1];
      if (top !== undefined) top.alternation = true;
      last = undefined;
      i++;
      continue;
    }
    let unbounded: boolean | null = null;
    let len = 1;
    if (c === '*' || c === '+') unbounded = true;
    else if (c === '?') unbounded = false;
    else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(i));
      if (m) {
        len = m[0].length;
        unbounded = m[2] !== undefined && (m[3] === '' || Number(m[3]) > 16);
      }
    }
    if (unbounded === null) {
      last = null;
      i++;
      continue;
    }
    if (src[i + len] === '?' || src[i + len] === '+') len++;
    if (last && unbounded) {
      if (last.unbounded) return 'nested unbounded quantifiers (star height > 1)';
      if (last.alternation) return 'alternation under an unbounded quantifier';
    }
    const top = stack[stack.length - 1];
    if (top !== undefined && (unbounded || last?.unbounded === true)) top.unbounded = true;
    last = undefined;
    i += len;
  }
  if (stack.length !== 1) return 'unbalanced parenthesis';
  return null;
}

/** Compiles a rule regex or throws ERR_POLICY_RULE_REGEX / ERR_POLICY_RULE_REGEX_UNSAFE. */
export function compileSafeRegex(src: unknown, flags: '' | 'i', where: string): RegExp {
  if (typeof src !== 'string' || src.length === 0 || src.length > MAX_REGEX_LENGTH) {
    throw new EdgewardError(
      'ERR_POLICY_RULE_REGEX',
      `${where}: regex must be 1..${MAX_REGEX_LENGTH} characters`,
    );
  }
  let re: RegExp;
  try {
    re = new RegExp(src, flags);
  } catch (err) {
    throw new EdgewardError('ERR_POLICY_RULE_REGEX', `${where}: invalid regular expression`, { cause: err });
  }
  const why = unsafeReason(src);
  if (why !== null) throw new EdgewardError('ERR_POLICY_RULE_REGEX_UNSAFE', `${where}: ${why}`);
  return re;
}
