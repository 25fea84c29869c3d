// The one schema library: compile once, refuse poison keys anywhere, name file, document and key.
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { EdgewardError } from '../../common/errors.js';
import { compileSchema } from '../../common/schema.js';

const check = compileSchema<{ name: string; items: Array<{ id: string; n?: number }> }>(
  {
    type: 'object',
    required: ['name', 'items'],
    additionalProperties: false,
    properties: {
      name: { type: 'string', minLength: 1 },
      items: {
        type: 'array',
        items: {
          type: 'object',
          required: ['id'],
          additionalProperties: false,
          properties: {
            id: { type: 'string' },
            n: { type: 'integer', minimum: 0 },
            kind: { enum: ['a', 'b'] },
          },
        },
      },
    },
  },
  'ERR_CONFIG_INVALID',
  'test config',
);

function refusal(v: unknown, ctx = {}): EdgewardError {
  try {
    check(v, ctx);
  } catch (err) {
    if (err instanceof EdgewardError) return err;
    throw err;
  }
  throw new Error('accepted');
}

describe('compileSchema', () => {
  it('returns a valid value as it is', () => {
    const v = { name: 'x', items: [{ id: 'a', n: 1 }] };
    expect(check(v)).toBe(v);
  });

  it('names the file, the document and the key path of an unknown, missing or mistyped key', () => {
    const ctx = { file: 'rules.yaml', document: 2 };
    expect(refusal({ name: 'x', items: [{ id: 'a', nn: 1 }] }, ctx).message).toBe(
      'test config rules.yaml: document 2: items[0].nn: unknown key',
    );
    expect(refusal({ name: 'x', items: [{}] }, ctx).message).toBe(
      'test config rules.yaml: document 2: items[0].id: missing key',
    );
    const e = refusal({ name: 'x', items: [{ id: 'a', n: -1 }] }, ctx);
    expect(e.code).toBe('ERR_CONFIG_INVALID');
    expect(e.message).toBe('test config rules.yaml: document 2: items[0].n: must be >= 0');
    expect(e.detail).toEqual({ file: 'rules.yaml', document: 2, path: 'items[0].n' });
    expect(refusal({ name: 'x', items: [{ id: 'a', kind: 'c' }] }).message).toBe(
      'test config items[0].kind: must be one of "a", "b"',
    );
    expect(refusal([]).message).toBe('test config (top level): must be object');
  });

  it('prefixes the path where the value sits in its document', () => {
    expect(refusal({ name: 1, items: [] }, { at: 'rules[3]' }).message).toBe(
      'test config rules[3].name: must be string',
    );
  });

  it('refuses prototype-poisoning keys at any depth, as YAML and JSON parsers deliver them', () => {
    for (const v of [
      JSON.parse('{"name":"x","items":[],"__proto__":{"polluted":1}}') as unknown,
      parse('name: x\nitems:\n  - id: a\n    constructor: 1\n') as unknown,
      { name: 'x', items: [{ id: 'a', prototype: {} }] },
    ]) {
      const e = refusal(v);
      expect(e.code).toBe('ERR_CONFIG_INVALID');
      expect(e.message).toMatch(/forbidden or too deeply nested key/);
    }
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('refuses nesting deeper than it walks, never overflowing the stack', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 10_000; i++) deep = [deep];
    expect(refusal({ name: 'x', items: deep }).message).toMatch(/too deeply nested/);
  });

  it("words a refusal with the schema's `must`, and names Sigma's place of the key", () => {
    const rule = compileSchema<unknown>(
      {
        type: 'object',
        properties: {
          related: {
            type: 'array',
            items: {
              type: 'object',
              properties: { type: { enum: ['derived'], must: 'derived or nothing' } },
            },
          },
          date: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$', must: 'a date YYYY-MM-DD' },
        },
      },
      'ERR_POLICY_RULE_SCHEMA',
      'rule',
      { prefix: 'sigma' },
    );
    const refused = (v: unknown): string => {
      try {
        rule(v, { file: 'r.yml', document: 2 });
      } catch (err) {
        return (err as EdgewardError).message;
      }
      return 'accepted';
    };
    expect(refused({ related: [{ type: 'derived' }, { type: 'cousin' }] })).toBe(
      'r.yml#2.related.1.type: must be derived or nothing',
    );
    expect(refused({ date: '31.01.2024' })).toBe('r.yml#2.date: must be a date YYYY-MM-DD');
    expect(refused({ related: [{ __proto__x: 1, constructor: 1 }] })).toBe(
      'r.yml#2.related.0.constructor: forbidden or too deeply nested key',
    );
  });
});
