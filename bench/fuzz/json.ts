// Structure-aware mutation of JSON-shaped documents (event batches, decision payloads, PUF records,
// YAML policy files): parse a real sample, change its tree (replace, delete, add, retype a node),
// write it back. Replacement values come from fast-check's arbitraries, sampled once per seed.
import * as fc from 'fast-check';
import type { Rng } from './engine.js';

const pools = new Map<number, unknown[]>();

/** Arbitrary JSON values and strings (property-based generation), sampled once per seed. */
export function valuePool(seed: number): unknown[] {
  let pool = pools.get(seed);
  if (pool) return pool;
  pool = [
    ...fc.sample(fc.jsonValue({ maxDepth: 3 }), { seed, numRuns: 600 }),
    ...fc.sample(fc.string({ unit: 'grapheme', maxLength: 80 }), { seed: seed + 1, numRuns: 200 }),
    ...fc.sample(fc.string({ unit: 'binary', maxLength: 40 }), { seed: seed + 2, numRuns: 100 }),
    ...fc.sample(fc.oneof(fc.integer(), fc.double(), fc.maxSafeInteger()), { seed: seed + 3, numRuns: 100 }),
    null,
    true,
    false,
    0,
    -1,
    -0,
    1e308,
    Number.MAX_SAFE_INTEGER + 2,
    '',
    ' ',
    'a'.repeat(5000),
    '\u0000',
    '\ud800',
    '__proto__',
    '*',
    'spiffe://factory.example/node/a',
    'spiffe://factory.example/',
    '10.0.0.1',
    '::ffff:10.0.0.1',
    '2026-12-07T06:00:00Z',
    [],
    {},
    Array.from({ length: 50 }, () => 0),
  ];
  pools.set(seed, pool);
  return pool;
}

/** A pool value as text (strings as they are, anything else as JSON). */
function text(v: unknown): string {
  return typeof v === 'string' ? v : (JSON.stringify(v) ?? '');
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

interface Slot {
  readonly parent: Json[] | { [k: string]: Json } | null;
  readonly key: string | number;
  readonly value: Json;
}

function slots(v: Json, out: Slot[], parent: Slot['parent'], key: string | number, depth: number): void {
  out.push({ parent, key, value: v });
  if (depth > 12 || v === null || typeof v !== 'object') return;
  if (Array.isArray(v)) v.forEach((c, i) => slots(c, out, v, i, depth + 1));
  else for (const k of Object.keys(v)) slots(v[k] as Json, out, v, k, depth + 1);
}

function set(s: Slot, value: Json | undefined): void {
  if (!s.parent) return;
  if (Array.isArray(s.parent)) {
    if (value === undefined) s.parent.splice(s.key as number, 1);
    else s.parent[s.key as number] = value;
  } else if (value === undefined) delete s.parent[s.key as string];
  else
    Object.defineProperty(s.parent, s.key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * One to three changes to a copy of `doc`. `keys` are names the format knows (schema fields):
 * added keys are mostly those, so mutations reach the validators past "unknown field".
 */
export function mutateTree(
  doc: unknown,
  rng: Rng,
  pool: readonly unknown[],
  keys: readonly string[],
): unknown {
  const root = { v: structuredClone(doc) as Json };
  const n = 1 + rng.below(3);
  for (let i = 0; i < n; i++) {
    const all: Slot[] = [];
    slots(root.v, all, root, 'v', 0);
    const s = rng.pick(all);
    const pooled = (): Json => structuredClone(rng.pick(pool)) as Json;
    switch (rng.below(7)) {
      case 0:
        set(s, pooled());
        break;
      case 1:
        if (s.parent !== (root as unknown)) set(s, undefined);
        break;
      case 2:
        // add a known (or odd) key to an object, or an element to an array
        if (Array.isArray(s.value))
          s.value.push(rng.chance(0.5) && s.value.length > 0 ? structuredClone(rng.pick(s.value)) : pooled());
        else if (s.value && typeof s.value === 'object') {
          const k = keys.length > 0 && rng.chance(0.8) ? rng.pick(keys) : text(rng.pick(pool));
          Object.defineProperty(s.value, k, {
            value: pooled(),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        break;
      case 3:
        // retype: numbers as strings and back, strings cut or grown
        if (typeof s.value === 'number')
          set(s, rng.chance(0.5) ? String(s.value) : s.value + rng.below(5) - 2);
        else if (typeof s.value === 'string') {
          const num = Number(s.value);
          set(
            s,
            s.value !== '' && !Number.isNaN(num) && rng.chance(0.3)
              ? num
              : rng.chance(0.5)
                ? s.value.slice(0, rng.below(s.value.length + 1))
                : s.value + text(rng.pick(pool)).slice(0, 16),
          );
        } else set(s, pooled());
        break;
      case 4:
        // wrap in, or take out of, a list
        set(s, Array.isArray(s.value) ? (s.value[0] ?? null) : [s.value]);
        break;
      case 5:
        // a sibling's value (a string where an identity goes, a list where a list goes)
        if (s.parent && !Array.isArray(s.parent)) {
          const sib = Object.values(s.parent);
          if (sib.length > 0) set(s, structuredClone(rng.pick(sib)));
        }
        break;
      default:
        // duplicate the node in its parent array (duplicate ids, double entries)
        if (Array.isArray(s.parent)) s.parent.push(structuredClone(s.value));
        break;
    }
  }
  return root.v;
}
