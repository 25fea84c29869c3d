// The Sigma detection condition language: identifiers, and/or/not, parentheses, and
// `1 of X*` / `all of X*` / `1 of them` / `all of them`. Parsed once into a tree.
import { EdgewardError } from '../../common/errors.js';

export type Cond =
  | { readonly op: 'id'; readonly name: string }
  | { readonly op: 'not'; readonly a: Cond }
  | { readonly op: 'and' | 'or'; readonly items: readonly Cond[] };

const MAX_CONDITION = 1024;
const MAX_DEPTH = 32;
const TOKEN = /\s*(\(|\)|[A-Za-z0-9_.*-]+)/y;

/** Parses `text` against the search identifiers `names`; quantifiers expand to and/or nodes. */
export function parseCondition(text: string, names: readonly string[], where = 'condition'): Cond {
  const fail: (msg: string) => never = (msg) => {
    throw new EdgewardError('ERR_POLICY_RULE_CONDITION', `${where}: ${msg}`);
  };
  if (text.length === 0 || text.length > MAX_CONDITION)
    fail(`condition must be 1..${MAX_CONDITION} characters`);
  const toks: string[] = [];
  TOKEN.lastIndex = 0;
  let pos = 0;
  while (pos < text.length) {
    if (/^\s*$/.test(text.slice(pos))) break;
    TOKEN.lastIndex = pos;
    const m = TOKEN.exec(text);
    if (!m || m[1] === undefined) fail(`unexpected character at ${pos} in condition`);
    toks.push(m[1]);
    pos = TOKEN.lastIndex;
  }
  let i = 0;
  const peek = (): string | undefined => toks[i];
  const lower = (t: string | undefined) => t?.toLowerCase();

  const expand = (pattern: string): string[] => {
    if (pattern === 'them') return names.filter((n) => !n.startsWith('_'));
    if (pattern.includes('*')) {
      // `*` stands for any run of characters, anywhere in the pattern.
      const hit = names.filter((n) => globMatch(pattern, n));
      if (hit.length === 0) fail(`no search identifier matches ${pattern}`);
      return hit;
    }
    if (!names.includes(pattern)) fail(`unknown search identifier ${pattern}`);
    return [pattern];
  };

  const parseOr = (depth: number): Cond => {
    if (depth > MAX_DEPTH) fail('condition nested too deeply');
    const items = [parseAnd(depth)];
    while (lower(peek()) === 'or') {
      i++;
      items.push(parseAnd(depth));
    }
    return items.length === 1 ? (items[0] as Cond) : { op: 'or', items };
  };
  const parseAnd = (depth: number): Cond => {
    const items = [parseNot(depth)];
    while (lower(peek()) === 'and') {
      i++;
      items.push(parseNot(depth));
    }
    return items.length === 1 ? (items[0] as Cond) : { op: 'and', items };
  };
  const parseNot = (depth: number): Cond => {
    if (lower(peek()) === 'not') {
      i++;
      return { op: 'not', a: parseNot(depth + 1) };
    }
    return parseAtom(depth);
  };
  const parseAtom = (depth: number): Cond => {
    const t = peek();
    if (t === undefined) fail('condition ends too early');
    if (t === '(') {
      i++;
      const inner = parseOr(depth + 1);
      if (peek() !== ')') fail('missing )');
      i++;
      return inner;
    }
    if (t === ')') fail('unexpected )');
    const lt = t.toLowerCase();
    if ((lt === '1' || lt === 'all' || lt === 'any') && lower(toks[i + 1]) === 'of') {
      const pattern = toks[i + 2];
      if (pattern === undefined || pattern === '(' || pattern === ')') fail('`of` needs a pattern or `them`');
      i += 3;
      const ids = expand(pattern).map((name): Cond => ({ op: 'id', name }));
      if (ids.length === 1) return ids[0] as Cond;
      return { op: lt === 'all' ? 'and' : 'or', items: ids };
    }
    if (lt === 'and' || lt === 'or' || lt === 'of') fail(`unexpected ${t}`);
    if (!names.includes(t)) fail(`unknown search identifier ${t}`);
    i++;
    return { op: 'id', name: t };
  };

  const tree = parseOr(0);
  if (i !== toks.length) fail(`unexpected ${toks[i] ?? ''} after the condition`);
  return tree;
}

/** `*` matches any run of characters (none included); linear-time greedy matching with one retry point. */
function globMatch(pattern: string, name: string): boolean {
  let p = 0;
  let n = 0;
  let star = -1;
  let mark = 0;
  while (n < name.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === name[n]) {
      p++;
      n++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = n;
    } else if (star >= 0) {
      p = star + 1;
      n = ++mark;
    } else return false;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}
