// The one schema library for configuration and policy files (agent configs, rules, playbooks,
// attestation and reporter policies, decision documents): JSON Schema compiled once with ajv,
// prototype-poisoning keys refused before validation, and refusals that name where they are.
import { Ajv, type ErrorObject } from 'ajv';
import { EdgewardError, type ErrorCode } from './errors.js';

/** Keys that would reach an object's prototype if a later step merged the input. */
export const POISON_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Where a value came from, for the refusal's message and detail: file, YAML document, key path. */
export interface SchemaContext {
  readonly file?: string;
  /** 0-based index of the YAML document in a multi-document file. */
  readonly document?: number;
  /** Path of the validated value inside its document (e.g. `rules[3]`), prefixed to the key. */
  readonly at?: string;
}

/** Validates an unknown value against a compiled schema; returns it typed, or throws `code`. */
export type SchemaValidator<T> = (value: unknown, ctx?: SchemaContext) => T;

const ajv = new Ajv({
  allErrors: false,
  coerceTypes: false,
  useDefaults: false,
  removeAdditional: false,
  strict: true,
  // Patterns are the schema author's, never the input's; unicode for \p{...} classes.
  unicodeRegExp: true,
  // Errors carry the failing schema, so that its `must` can word the refusal.
  verbose: true,
});
// `must: 'text of 1..256 characters'` beside a value's constraints: the refusal says "must be
// text of 1..256 characters" instead of naming the failed constraint (a pattern, a bound).
ajv.addKeyword({ keyword: 'must', schemaType: 'string' });

const MAX_DEPTH = 64;

/** The keys of ajv's JSON pointer `/a/b/0/c` (and the one that is missing or extra). */
function keyParts(e: ErrorObject): string[] {
  const parts = e.instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const extra =
    e.keyword === 'additionalProperties'
      ? (e.params as { additionalProperty?: string }).additionalProperty
      : e.keyword === 'required'
        ? (e.params as { missingProperty?: string }).missingProperty
        : undefined;
  if (extra !== undefined) parts.push(extra);
  return parts;
}

function joinPath(parts: readonly string[]): string {
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}

function describe(e: ErrorObject): string {
  const must = (e.parentSchema as { must?: unknown } | undefined)?.must;
  if (typeof must === 'string' && e.keyword !== 'additionalProperties' && e.keyword !== 'required')
    return `must be ${must}`;
  switch (e.keyword) {
    case 'additionalProperties':
      return 'unknown key';
    case 'required':
      return 'missing key';
    case 'enum':
      return `must be one of ${((e.params as { allowedValues?: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return e.message ?? 'invalid';
  }
}

/** `file#doc.a.b.0.c`: Sigma's place of a key, every step after a dot (rule files). */
function sigmaPlace(ctx: SchemaContext | undefined, parts: readonly string[]): string {
  const steps = [ctx?.at, ...parts].filter((s) => s !== undefined && s !== '');
  return [`${ctx?.file ?? 'rules'}#${ctx?.document ?? 0}`, ...steps].join('.');
}

function where(ctx: SchemaContext | undefined, path: string): string {
  const key = [ctx?.at, path]
    .filter((s) => s !== undefined && s !== '')
    .join(path.startsWith('[') ? '' : '.');
  return [
    ctx?.file,
    ctx?.document !== undefined ? `document ${ctx.document}` : undefined,
    key === '' ? '(top level)' : key,
  ]
    .filter((s) => s !== undefined)
    .join(': ');
}

/** The path of the first poison key in `v` (bounded depth), or undefined. */
function poisonPath(v: unknown, path: string[] = [], depth = 0): string[] | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  if (depth > MAX_DEPTH) return path;
  const entries: Array<[string, unknown]> = Array.isArray(v)
    ? v.map((x, i) => [String(i), x] as [string, unknown])
    : Object.keys(v).map((k) => [k, (v as Record<string, unknown>)[k]] as [string, unknown]);
  for (const [k, x] of entries) {
    if (!Array.isArray(v) && POISON_KEYS.has(k)) return [...path, k];
    const p = poisonPath(x, [...path, k], depth + 1);
    if (p !== undefined) return p;
  }
  return undefined;
}

/**
 * Compiles `schema` once (at module load or start-up) into a validator that refuses, with `code`
 * and a message naming the file, the document and the key: poison keys anywhere, nesting deeper
 * than 64, and anything the schema refuses (unknown keys when it says additionalProperties: false).
 */
export function compileSchema<T>(
  schema: object,
  code: ErrorCode,
  what: string,
  options: {
    /** A code of its own for an unknown or forbidden key, where the callers' users already know one. */
    readonly unknownKey?: ErrorCode;
    /**
     * `path` starts messages with the key path (`<path>: ...`) instead of `what`; `sigma` with
     * Sigma's place of the key (`file#doc.key.0.sub: ...`), as rule files' refusals do.
     */
    readonly prefix?: 'what' | 'path' | 'sigma';
  } = {},
): SchemaValidator<T> {
  const validate = ajv.compile(schema);
  const place = (ctx: SchemaContext | undefined, parts: readonly string[]): string =>
    options.prefix === 'sigma'
      ? sigmaPlace(ctx, parts)
      : `${options.prefix === 'path' ? '' : `${what} `}${where(ctx, joinPath(parts))}`;
  return (value, ctx) => {
    const poison = poisonPath(value);
    if (poison !== undefined) {
      throw new EdgewardError(
        options.unknownKey ?? code,
        `${place(ctx, poison)}: forbidden or too deeply nested key`,
        { detail: { ...ctx, path: joinPath(poison) } },
      );
    }
    if (validate(value)) return value as T;
    const e = validate.errors?.[0];
    const parts = e === undefined ? [] : keyParts(e);
    throw new EdgewardError(
      e?.keyword === 'additionalProperties' ? (options.unknownKey ?? code) : code,
      `${place(ctx, parts)}: ${e === undefined ? 'invalid' : describe(e)}`,
      { detail: { ...ctx, path: joinPath(parts) } },
    );
  };
}
