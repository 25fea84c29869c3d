// The ingest body parser and stamper: formats, limits, observer handling, all-or-nothing batches.
import { describe, expect, it } from 'vitest';
import { EdgewardError, toClientError } from '../../../common/errors.js';
import { stampEvent, validateEvent } from '../../../common/events.js';
import { decodeBatch, stampBatch } from '../../../siem/service/parse-batch.js';

const OBS = 'spiffe://factory.example/node/n1';
const NOW = Date.UTC(2026, 5, 1);
let n = 0;
const ctx = { observer: OBS, now: NOW, newId: () => `id${n++}` };
const ev = (x: Record<string, unknown> = {}) => ({
  '@timestamp': NOW - 1000,
  'event.action': 'connection.denied',
  ...x,
});
const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
};

describe('decodeBatch', () => {
  it('reads a JSON array and NDJSON (blank lines and CRLF allowed)', () => {
    expect(decodeBatch(Buffer.from(JSON.stringify([ev(), ev()])), 'json')).toHaveLength(2);
    const nd = `${JSON.stringify(ev())}\r\n\n${JSON.stringify(ev())}\n`;
    expect(decodeBatch(Buffer.from(nd), 'ndjson')).toHaveLength(2);
  });

  it('refuses what is not a batch, with ERR_SIEM_BATCH_MALFORMED', () => {
    expect(code(() => decodeBatch(Buffer.from('{}'), 'json'))).toBe('ERR_SIEM_BATCH_MALFORMED');
    expect(code(() => decodeBatch(Buffer.from('[1,'), 'json'))).toBe('ERR_SIEM_BATCH_MALFORMED');
    expect(code(() => decodeBatch(Buffer.from([0x5b, 0xc3, 0x28, 0x5d]), 'json'))).toBe(
      'ERR_SIEM_BATCH_MALFORMED',
    );
    expect(code(() => decodeBatch(Buffer.from('{"a":1}\n[oops'), 'ndjson'))).toBe('ERR_SIEM_BATCH_MALFORMED');
  });

  it('refuses more events than the cap in either format (ERR_SIEM_BATCH_TOO_LARGE)', () => {
    expect(code(() => decodeBatch(Buffer.from(JSON.stringify([ev(), ev(), ev()])), 'json', 2))).toBe(
      'ERR_SIEM_BATCH_TOO_LARGE',
    );
    const nd = [ev(), ev(), ev()].map((e) => JSON.stringify(e)).join('\n');
    expect(code(() => decodeBatch(Buffer.from(nd), 'ndjson', 2))).toBe('ERR_SIEM_BATCH_TOO_LARGE');
  });
});

describe('stampBatch', () => {
  it('stamps id, observer from the certificate and ingest time', () => {
    const [e] = stampBatch([ev({ 'source.ip': '192.0.2.1' })], ctx);
    expect(e?.['observer.identity']).toBe(OBS);
    expect(e?.['event.ingested']).toBe(NOW);
    expect(typeof e?.['event.id']).toBe('string');
  });

  it('drops a repeated own observer.identity and refuses another one (ERR_SIEM_OBSERVER_MISMATCH)', () => {
    expect(stampBatch([ev({ 'observer.identity': OBS })], ctx)[0]?.['observer.identity']).toBe(OBS);
    expect(
      code(() => stampBatch([ev(), ev({ 'observer.identity': 'spiffe://factory.example/node/x' })], ctx)),
    ).toBe('ERR_SIEM_OBSERVER_MISMATCH');
    expect(code(() => stampBatch([ev({ 'observer.identity': 42 })], ctx))).toBe('ERR_SIEM_OBSERVER_MISMATCH');
  });

  it('stamps observer.type from the certificate identity, never from the body', () => {
    expect(stampBatch([ev()], ctx)[0]?.['observer.type']).toBe('node');
    // Its own kind, or the old agents' `agent`, is dropped and set again; another kind is refused.
    expect(stampBatch([ev({ 'observer.type': 'node' })], ctx)[0]?.['observer.type']).toBe('node');
    expect(stampBatch([ev({ 'observer.type': 'agent' })], ctx)[0]?.['observer.type']).toBe('node');
    expect(code(() => stampBatch([ev({ 'observer.type': 'ca' })], ctx))).toBe('ERR_SIEM_OBSERVER_MISMATCH');
    const ca = { ...ctx, observer: 'spiffe://factory.example/svc/ca' };
    expect(stampBatch([ev()], ca)[0]?.['observer.type']).toBe('ca');
    expect(code(() => stampBatch([ev({ 'observer.type': 'agent' })], ca))).toBe('ERR_SIEM_OBSERVER_MISMATCH');
  });

  it('refuses the whole batch for one bad event, naming its index', () => {
    try {
      stampBatch([ev(), ev({ 'no|pe': 1 })], ctx);
      expect.unreachable();
    } catch (err) {
      expect((err as { code: string }).code).toBe('ERR_SIEM_EVENT_INVALID');
      expect((err as { detail: { index: number } }).detail.index).toBe(1);
    }
    const poisoned = JSON.parse(
      `{"__proto__": {"polluted": 1}, "@timestamp": ${NOW}, "event.action": "a"}`,
    ) as unknown;
    expect(code(() => stampBatch([poisoned], ctx))).toBe('ERR_SIEM_EVENT_POISONED');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(code(() => stampBatch([ev({ '@timestamp': NOW + 3_600_000 })], ctx))).toBe('ERR_SIEM_EVENT_TIME');
    expect(code(() => stampBatch(['x'], ctx))).toBe('ERR_SIEM_EVENT_INVALID');
  });
});

describe('what the reporter is told about a refused batch', () => {
  const refusal = (batch: unknown[]) => {
    try {
      stampBatch(batch, ctx);
    } catch (err) {
      if (err instanceof EdgewardError) return { err, client: toClientError(err) };
    }
    throw new Error('the batch was not refused');
  };

  it('ERR_SIEM_EVENT_INVALID names the event (0-based) and the field, in detail and in the message', () => {
    const { err, client } = refusal([ev(), ev(), ev({ 'source.port': 70_000 })]);
    expect(err.code).toBe('ERR_SIEM_EVENT_INVALID');
    expect(err.detail).toMatchObject({ index: 2, field: 'source.port' });
    expect(client).toEqual({
      statusCode: 400,
      code: 'ERR_SIEM_EVENT_INVALID',
      error: 'Bad Request',
      message: 'event 2, field source.port: event does not match the schema',
    });
  });

  it('a key outside the schema is not echoed back; the event is still named', () => {
    const { client } = refusal([ev(), ev({ constructor: 1 })]);
    expect(client.code).toBe('ERR_SIEM_EVENT_POISONED');
    expect(client.message).toBe('event 1: event has a forbidden key');
  });

  it('an event that is not an object is named without a field', () => {
    expect(refusal([ev(), 'x']).client.message).toBe('event 1: event does not match the schema');
  });

  it('an observer claim that is not the certificate names the event and the field', () => {
    const { client } = refusal([ev({ 'observer.identity': 'spiffe://factory.example/node/other' })]);
    expect(client.code).toBe('ERR_SIEM_OBSERVER_MISMATCH');
    expect(client.message).toMatch(/^event 0, field observer\.identity: /);
  });
});

describe('stampBatch and stampEvent', () => {
  it('stamps in the same copy exactly as stampEvent after validateEvent does (fields and their order)', () => {
    const raw = ev({
      '@timestamp': new Date(NOW - 5000).toISOString(),
      'source.ip': 'FE80::1',
      'source.identity': 'spiffe://factory.example/device/d1',
      message: 'a\u0000b',
    });
    const [got] = stampBatch([raw], { ...ctx, newId: () => 'id-1' });
    const want = stampEvent(validateEvent(raw, { now: NOW }), { id: 'id-1', observer: OBS, ingested: NOW });
    expect(JSON.stringify(got)).toBe(JSON.stringify(want));
    expect(got?.['source.ip']).toBe('fe80::1');
    expect(got?.['@timestamp']).toBe(NOW - 5000);
  });
});
