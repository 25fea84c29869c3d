import { describe, expect, it } from 'vitest';
import {
  MAX_RECORD_BYTES,
  parsePufRecord,
  parsePufRecordText,
  pufRecordToJson,
} from '../../../attestation/puf/record.js';
import { device, provisioned } from './fixtures.js';

const id = device('rec-1');
const good = provisioned(id, 'record-device', 3);
const clone = (): Record<string, unknown> => JSON.parse(JSON.stringify(good)) as Record<string, unknown>;
const expectCode = (f: () => unknown, code: string): void => {
  expect(f).toThrow(expect.objectContaining({ code }));
};

describe('PUF registration record', () => {
  it('round-trips through text and JSON', () => {
    const r = parsePufRecordText(JSON.stringify(good));
    expect(r.id).toBe(id.uri);
    expect(r.crps).toHaveLength(3);
    expect(pufRecordToJson(r)).toEqual(good);
  });

  it('refuses oversized text before parsing it (ERR_ATT_PUF_RECORD_TOO_LARGE)', () => {
    expectCode(() => parsePufRecordText(' '.repeat(MAX_RECORD_BYTES + 1)), 'ERR_ATT_PUF_RECORD_TOO_LARGE');
  });

  it('refuses malformed records with ERR_ATT_PUF_RECORD_MALFORMED', () => {
    const cases: [string, (r: Record<string, unknown>) => unknown][] = [
      ['not JSON', () => '{'],
      ['an array', () => [good]],
      ['unknown field', (r) => ({ ...r, extra: 1 })],
      ['wrong format', (r) => ({ ...r, format: 'x' })],
      ['wrong version', (r) => ({ ...r, version: 2 })],
      ['bad identity', (r) => ({ ...r, id: 'spiffe://UPPER/device/x' })],
      ['unknown profile', (r) => ({ ...r, profile: 'weak' })],
      ['weakened parameters', (r) => ({ ...r, params: { ...(r['params'] as object), repetition: 1 } })],
      ['short public key', (r) => ({ ...r, publicKey: 'ab' })],
      ['upper-case public key', (r) => ({ ...r, publicKey: String(r['publicKey']).toUpperCase() })],
      ['salt wrong size', (r) => ({ ...r, helper: { ...(r['helper'] as object), salt: 'AAAA' } })],
      ['salt not base64url', (r) => ({ ...r, helper: { ...(r['helper'] as object), salt: '+'.repeat(43) } })],
      [
        'offset truncated',
        (r) => ({
          ...r,
          helper: {
            ...(r['helper'] as object),
            offset: String((r['helper'] as Record<string, string>)['offset']).slice(0, 100),
          },
        }),
      ],
      ['mask empty', (r) => ({ ...r, helper: { ...(r['helper'] as object), mask: '' } })],
      [
        'mask with a trailing zero byte',
        (r) => ({
          ...r,
          helper: {
            ...(r['helper'] as object),
            mask: Buffer.concat([
              Buffer.from(String((r['helper'] as Record<string, string>)['mask']), 'base64url'),
              Buffer.of(0),
            ]).toString('base64url'),
          },
        }),
      ],
      ['helper extra field', (r) => ({ ...r, helper: { ...(r['helper'] as object), hint: 'x' } })],
      ['crp threshold changed', (r) => ({ ...r, crp: { ...(r['crp'] as object), threshold: 400 } })],
      ['crp pairs not an array', (r) => ({ ...r, crp: { ...(r['crp'] as object), pairs: {} } })],
      [
        'crp duplicate challenge',
        (r) => {
          const crp = r['crp'] as { pairs: unknown[] };
          return { ...r, crp: { ...crp, pairs: [crp.pairs[0], crp.pairs[0]] } };
        },
      ],
      [
        'crp response wrong size',
        (r) => {
          const crp = r['crp'] as { pairs: { challenge: string }[] };
          return { ...r, crp: { ...crp, pairs: [{ challenge: crp.pairs[0]!.challenge, response: 'AAAA' }] } };
        },
      ],
      ['bad createdAt', (r) => ({ ...r, createdAt: 'yesterday' })],
      ['missing helper', (r) => ({ ...r, helper: undefined })],
    ];
    for (const [name, mutate] of cases) {
      const v = mutate(clone());
      const text = typeof v === 'string' ? v : JSON.stringify(v);
      expect(() => parsePufRecordText(text), name).toThrow(
        expect.objectContaining({ code: 'ERR_ATT_PUF_RECORD_MALFORMED' }),
      );
    }
  });

  it('refuses prototype poisoning in every object', () => {
    const text = JSON.stringify(good);
    expectCode(
      () => parsePufRecordText(text.replace('{', '{"__proto__":{"admin":true},')),
      'ERR_ATT_PUF_RECORD_MALFORMED',
    );
    expectCode(
      () => parsePufRecordText(text.replace('"helper":{', '"helper":{"__proto__":{"x":1},')),
      'ERR_ATT_PUF_RECORD_MALFORMED',
    );
    expectCode(
      () => parsePufRecordText(text.replace('"crp":{', '"crp":{"constructor":{"x":1},')),
      'ERR_ATT_PUF_RECORD_MALFORMED',
    );
  });

  it('refuses more than 1024 CRPs', () => {
    const r = clone();
    const crp = r['crp'] as { pairs: unknown[] };
    const pairs = Array.from({ length: 1025 }, (_, i) => ({
      challenge: Buffer.alloc(16, 0)
        .fill(i & 0xff, 0, 1)
        .fill(i >> 8, 1, 2)
        .toString('base64url'),
      response: Buffer.alloc(64).toString('base64url'),
    }));
    expectCode(() => parsePufRecord({ ...r, crp: { ...crp, pairs } }), 'ERR_ATT_PUF_RECORD_MALFORMED');
  });
});
