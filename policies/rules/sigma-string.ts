// Sigma string values: `*` and `?` wildcards, `\` escapes exactly as the specification's "Escape
// Character" section, placeholders for `expand`, the value-transforming modifiers (contains,
// startswith, endswith, base64, base64offset, utf16*, wide, windash), and a compiled matcher per
// value (case-insensitive unless `cased`). Wildcard patterns run on RE2, never on backtracking.
import { compileGlobRegex } from './linear-regex.js';

export const ANY = 0;
export const ONE = 1;
/** A part of a Sigma string: literal text, or ANY (`*`) / ONE (`?`). */
export type Part = string | typeof ANY | typeof ONE;

export interface SigmaString {
  readonly parts: readonly Part[];
  /** The text is bytes (each char one byte, 0..255), as utf16* leaves it for base64. */
  readonly bytes: boolean;
}

function push(parts: Part[], p: Part): void {
  const last = parts[parts.length - 1];
  if (typeof p === 'string' && typeof last === 'string') parts[parts.length - 1] = last + p;
  else if (p !== '') parts.push(p);
}

/**
 * Reads a rule value. `\` escapes `*`, `?` and `\` (so `\\` is one backslash); before anything
 * else it is a plain backslash, and a trailing one is plain too.
 */
export function parseSigmaString(raw: string): SigmaString {
  const parts: Part[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as string;
    if (c === '\\') {
      const n = raw[i + 1];
      if (n === '*' || n === '?' || n === '\\') {
        push(parts, n);
        i++;
      } else push(parts, '\\');
    } else if (c === '*') push(parts, ANY);
    else if (c === '?') push(parts, ONE);
    else push(parts, c);
  }
  return { parts, bytes: false };
}

export function literal(text: string): SigmaString {
  return { parts: text === '' ? [] : [text], bytes: false };
}

export function hasWildcards(s: SigmaString): boolean {
  return s.parts.some((p) => typeof p !== 'string');
}

export function plainText(s: SigmaString): string {
  return s.parts.map((p) => (typeof p === 'string' ? p : p === ANY ? '*' : '?')).join('');
}

/** `contains`: wildcards on both ends (kept single where the value has them already). */
export function wrap(s: SigmaString, head: boolean, tail: boolean): SigmaString {
  const parts = [...s.parts];
  if (head && parts[0] !== ANY) parts.unshift(ANY);
  if (tail && parts[parts.length - 1] !== ANY) parts.push(ANY);
  return { parts, bytes: s.bytes };
}

/** Splits `%name%` placeholders out of a raw value; `\%` is a plain percent sign. */
export function placeholders(raw: string): ({ text: string } | { name: string })[] {
  const out: ({ text: string } | { name: string })[] = [];
  let text = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as string;
    if (c === '\\' && raw[i + 1] === '%') {
      text += '%';
      i++;
    } else if (c === '%') {
      const end = raw.indexOf('%', i + 1);
      const name = end < 0 ? '' : raw.slice(i + 1, end);
      if (end < 0 || !/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
        text += c;
        continue;
      }
      if (text !== '') out.push({ text });
      text = '';
      out.push({ name });
      i = end;
    } else text += c;
  }
  if (text !== '') out.push({ text });
  return out;
}

export function concat(a: SigmaString, b: SigmaString): SigmaString {
  const parts = [...a.parts];
  for (const p of b.parts) push(parts, p);
  return { parts, bytes: a.bytes || b.bytes };
}

function bytesOf(s: SigmaString): Buffer {
  const text = plainText(s);
  return Buffer.from(text, s.bytes ? 'latin1' : 'utf8');
}

export function base64(s: SigmaString): SigmaString {
  return literal(bytesOf(s).toString('base64'));
}

/**
 * The three encodings of a value at byte offsets 0, 1 and 2 inside a longer base64 text, with the
 * characters that depend on the neighbouring bytes cut off.
 */
export function base64offset(s: SigmaString): SigmaString[] {
  const b = bytesOf(s);
  const starts = [0, 2, 3];
  const ends = [0, -3, -2];
  const out: SigmaString[] = [];
  for (let i = 0; i < 3; i++) {
    const enc = Buffer.concat([Buffer.alloc(i, 0x20), b]).toString('base64');
    const end = ends[(b.length + i) % 3] as number;
    const piece = enc.slice(starts[i], end === 0 ? undefined : end);
    if (piece !== '') out.push(literal(piece));
  }
  return out;
}

export function utf16(s: SigmaString, order: 'le' | 'be' | 'bom'): SigmaString {
  const text = plainText(s);
  const le = Buffer.from(text, 'utf16le');
  let bytes = le;
  if (order === 'be') {
    bytes = Buffer.from(le);
    bytes.swap16();
  } else if (order === 'bom') bytes = Buffer.concat([Buffer.from([0xff, 0xfe]), le]);
  return { parts: bytes.length === 0 ? [] : [bytes.toString('latin1')], bytes: true };
}

const DASHES = ['-', '/', '\u2013', '\u2014', '\u2015'];
const WORD = /[A-Za-z0-9_]/;

/**
 * `windash`: every `-` or `/` that starts a word (after a non-word character or the start, before
 * a word character) in each of its five spellings, all combinations (at most `cap` values).
 */
export function windash(s: SigmaString, cap: number): SigmaString[] | null {
  let results: Part[][] = [[]];
  for (const p of s.parts) {
    if (typeof p !== 'string') {
      results = results.map((r) => [...r, p]);
      continue;
    }
    let chunks: string[] = [''];
    for (let i = 0; i < p.length; i++) {
      const c = p[i] as string;
      const prev = i > 0 ? p[i - 1] : undefined;
      const next = p[i + 1];
      const starts =
        (c === '-' || c === '/') &&
        (prev === undefined || !WORD.test(prev)) &&
        next !== undefined &&
        WORD.test(next);
      if (starts) {
        chunks = chunks.flatMap((x) => DASHES.map((d) => x + d));
        if (chunks.length * results.length > cap) return null;
      } else chunks = chunks.map((x) => x + c);
    }
    results = results.flatMap((r) => chunks.map((ch) => [...r, ch]));
  }
  return results.map((parts) => {
    const out: Part[] = [];
    for (const p of parts) push(out, p);
    return { parts: out, bytes: s.bytes };
  });
}

// Many rules fold the same event value in a row: a one-entry memo saves the repeated copies.
let foldIn = '';
let foldOut = '';
function lower(text: string): string {
  if (text !== foldIn) {
    foldIn = text;
    foldOut = text.toLowerCase();
  }
  return foldOut;
}

/** Tests one text against a compiled value. */
export type TextTest = (text: string) => boolean;

function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, (c) => `\\${c}`);
}

/**
 * Compiles a value into a test over whole texts: equality, a prefix, suffix or substring test
 * where the wildcards allow, else an anchored RE2 pattern. `cased: false` folds letter case.
 */
export function compileTextTest(s: SigmaString, cased: boolean): TextTest {
  const parts = s.parts;
  const fold = cased ? (x: string) => x : lower;
  const lits = parts.filter((p): p is string => typeof p === 'string');
  const onlyAny = parts.every((p) => p !== ONE);
  if (onlyAny && lits.length <= 1) {
    const lit = fold(lits[0] ?? '');
    const head = parts[0] === ANY;
    const tail = parts.length > 0 && parts[parts.length - 1] === ANY;
    if (lits.length === 0) return parts.length === 0 ? (t) => t === '' : () => true;
    if (head && tail) return (t) => fold(t).includes(lit);
    if (head) return (t) => fold(t).endsWith(lit);
    if (tail) return (t) => fold(t).startsWith(lit);
    return cased ? (t) => t === lit : (t) => t.length === lit.length && lower(t) === lit;
  }
  const src = `^${parts
    .map((p) => (typeof p === 'string' ? escapeRegex(p) : p === ANY ? '.*' : '.'))
    .join('')}$`;
  const re = compileGlobRegex(src, !cased);
  return (t) => re.test(t);
}
