// The shared event schema: strict validation, normalisation, server-owned fields, poisoning.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EdgewardError } from '../../common/errors.js';
import {
  FIELDS,
  KNOWN_ACTIONS,
  createEventIdFactory,
  reporterKind,
  stampEvent,
  validateEvent,
  withVerifiedKind,
  type EdgeEvent,
} from '../../common/events.js';

const T = Date.UTC(2026, 0, 1, 12);
const ok = { '@timestamp': T, 'event.action': 'handshake.failure' };

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof EdgewardError) return err.code;
    throw err;
  }
  throw new Error('did not throw');
}

describe('validateEvent', () => {
  it('accepts a full connection event and returns a fresh copy', () => {
    const input = {
      ...ok,
      'event.action': 'connection.accepted',
      'event.kind': 'event',
      'event.category': 'network',
      'event.outcome': 'success',
      'source.ip': '10.0.0.5',
      'source.port': 40000,
      'destination.ip': '2001:DB8::1',
      'source.identity': 'spiffe://factory.example/device/d1',
      'destination.identity': 'spiffe://factory.example/node/n1',
      'tls.client.x509.serial_number': '4f1a',
      'tls.client.x509.spki_sha256': 'ab'.repeat(32),
      'attestation.method': 'tpm',
      'user_agent.original': 'edgeward-agent/0.1',
    };
    const e = validateEvent(input);
    expect(e).not.toBe(input);
    expect(e['destination.ip']).toBe('2001:db8::1');
    expect(e['source.port']).toBe(40000);
  });

  it('normalises an ISO-8601 @timestamp to epoch ms', () => {
    expect(validateEvent({ ...ok, '@timestamp': '2026-01-01T12:00:00.000Z' })['@timestamp']).toBe(T);
    expect(validateEvent({ ...ok, '@timestamp': '2026-01-01T13:00:00+01:00' })['@timestamp']).toBe(T);
  });

  it('strict mode (open: false) refuses unknown fields, naming them', () => {
    expect(codeOf(() => validateEvent({ ...ok, 'source.nope': 1 }, { open: false }))).toBe(
      'ERR_SIEM_EVENT_UNKNOWN_FIELD',
    );
    try {
      validateEvent({ ...ok, extra: 'x' }, { open: false });
      expect.unreachable();
    } catch (err) {
      expect((err as EdgewardError).detail).toEqual({ field: 'extra' });
    }
  });

  it('refuses prototype-poisoning keys from JSON.parse', () => {
    for (const key of ['__proto__', 'constructor', 'prototype']) {
      const input = JSON.parse(
        `{"@timestamp": ${T}, "event.action": "x", "${key}": {"polluted": true}}`,
      ) as unknown;
      expect(codeOf(() => validateEvent(input))).toBe('ERR_SIEM_EVENT_POISONED');
    }
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('refuses fields only the SIEM may set, unless reading back a stored event', () => {
    for (const f of ['event.id', 'observer.identity', 'observer.type', 'event.ingested']) {
      const v =
        f === 'event.ingested'
          ? T
          : f === 'event.id'
            ? 'abc'
            : f === 'observer.type'
              ? 'ca'
              : 'spiffe://factory.example/node/n1';
      expect(codeOf(() => validateEvent({ ...ok, [f]: v }))).toBe('ERR_SIEM_EVENT_SERVER_FIELD');
      expect(() => validateEvent({ ...ok, [f]: v }, { mode: 'stored' })).not.toThrow();
    }
  });

  it('checks types, enums and lengths', () => {
    const bad: Record<string, unknown>[] = [
      { 'source.port': 70000 },
      { 'source.port': '80' },
      { 'source.port': 1.5 },
      { 'source.ip': '10.0.0.256' },
      { 'source.ip': 'localhost' },
      { 'source.ip': 'fe80::1%eth0' },
      { 'source.ip': '010.0.0.1' },
      { 'event.outcome': 'maybe' },
      { 'event.reason': 'x'.repeat(257) },
      { 'source.identity': 'https://factory.example/device/d1' },
      { 'source.identity': 'spiffe://factory.example/device/../x' },
      { 'tls.client.x509.serial_number': '4F1G' },
      { 'tls.client.x509.serial_number': '' },
      { 'tls.client.x509.spki_sha256': 'ab' },
      { 'attestation.method': 'has space' },
      { 'event.action': 'Bad.Action' },
      { 'event.action': 'x'.repeat(65) },
      { message: { nested: true } },
    ];
    for (const b of bad)
      expect(
        codeOf(() => validateEvent({ ...ok, ...b })),
        JSON.stringify(b),
      ).toBe('ERR_SIEM_EVENT_INVALID');
  });

  it('stores addresses and serials in their one canonical form (common/ip.ts, normalizeSerial)', () => {
    const e = validateEvent({
      ...ok,
      'source.ip': '::ffff:127.0.0.1',
      'destination.ip': '2001:DB8:0:0::1',
      'tls.client.x509.serial_number': '00:4F:1A',
    });
    expect(e['source.ip']).toBe('127.0.0.1');
    expect(e['destination.ip']).toBe('2001:db8::1');
    expect(e['tls.client.x509.serial_number']).toBe('4f1a');
  });

  it('refuses missing or absurd times with ERR_SIEM_EVENT_TIME', () => {
    expect(codeOf(() => validateEvent({ 'event.action': 'x' }))).toBe('ERR_SIEM_EVENT_TIME');
    expect(codeOf(() => validateEvent({ ...ok, '@timestamp': 'yesterday' }))).toBe('ERR_SIEM_EVENT_TIME');
    expect(codeOf(() => validateEvent({ ...ok, '@timestamp': 12 }))).toBe('ERR_SIEM_EVENT_TIME');
    expect(codeOf(() => validateEvent({ ...ok, '@timestamp': 1.5e12 + 0.5 }))).toBe('ERR_SIEM_EVENT_TIME');
    expect(codeOf(() => validateEvent({ ...ok, '@timestamp': T + 600_000 }, { now: T }))).toBe(
      'ERR_SIEM_EVENT_TIME',
    );
    expect(() => validateEvent({ ...ok, '@timestamp': T + 60_000 }, { now: T })).not.toThrow();
  });

  it('refuses non-objects, arrays, class instances and too many keys', () => {
    for (const v of [null, 1, 'x', [], [ok], new Date()])
      expect(codeOf(() => validateEvent(v))).toBe('ERR_SIEM_EVENT_INVALID');
    const many: Record<string, unknown> = { ...ok };
    for (let i = 0; i < 70; i++) many[`k${i}`] = 1;
    expect(codeOf(() => validateEvent(many, { open: false }))).toBe('ERR_SIEM_EVENT_INVALID');
  });

  it('drops null schema fields rather than storing them', () => {
    const probe = { ...ok, 'event.action': 'probe' };
    expect(validateEvent({ ...probe, 'source.ip': null })).toEqual(probe);
  });

  it('documents every field and knows every action the reporters emit', () => {
    for (const spec of Object.values(FIELDS)) {
      expect(spec.doc.length).toBeGreaterThan(3);
      expect(spec.ocsf.length).toBeGreaterThan(0);
    }
    for (const a of KNOWN_ACTIONS) expect(() => validateEvent({ ...ok, 'event.action': a })).not.toThrow();
  });
});

describe('validateEvent on random hostile input', () => {
  it('either returns an event or throws a coded EdgewardError, never anything else', () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const keys = [...Object.keys(FIELDS), '__proto__', 'constructor', 'x', '', 'source', 'event.action '];
    const values = (): unknown => {
      const r = rnd();
      if (r < 0.1) return null;
      if (r < 0.2) return Math.floor(rnd() * 2 ** 53) * (rnd() < 0.5 ? -1 : 1);
      if (r < 0.3) return rnd() * 1e13;
      if (r < 0.4) return 'x'.repeat(Math.floor(rnd() * 2000));
      if (r < 0.5) return { nested: [1, 2] };
      if (r < 0.6) return [T];
      if (r < 0.7) return '2026-01-01T00:00:00Z';
      if (r < 0.8) return 'spiffe://factory.example/node/n1';
      if (r < 0.9) return '10.0.0.1';
      return T;
    };
    let accepted = 0;
    for (let i = 0; i < 3000; i++) {
      const obj: Record<string, unknown> = {};
      const n = Math.floor(rnd() * 8);
      for (let k = 0; k < n; k++) obj[keys[Math.floor(rnd() * keys.length)]!] = values();
      if (rnd() < 0.5) Object.assign(obj, ok);
      try {
        validateEvent(JSON.parse(JSON.stringify(obj)) as unknown);
        accepted++;
      } catch (err) {
        expect(err).toBeInstanceOf(EdgewardError);
        expect((err as EdgewardError).code).toMatch(/^ERR_SIEM_EVENT_/);
      }
    }
    expect(accepted).toBeGreaterThan(0);
  });
});

describe('stampEvent and event ids', () => {
  it('adds the SIEM-owned fields, and the result validates as a stored event', () => {
    const e = stampEvent(validateEvent(ok), {
      id: 'e1',
      observer: 'spiffe://factory.example/node/n1',
      ingested: T,
    });
    expect(validateEvent(e, { mode: 'stored' })).toEqual(e);
    expect(e['observer.identity']).toBe('spiffe://factory.example/node/n1');
  });

  it('makes unique, time-sortable 32-hex ids', () => {
    const next = createEventIdFactory(randomBytes);
    const ids = Array.from({ length: 3000 }, (_, i) => next(T + i));
    expect(new Set(ids).size).toBe(3000);
    expect(ids.every((id) => /^[0-9a-f]{32}$/.test(id))).toBe(true);
    expect([...ids].sort()).toEqual(ids);
  });
});

describe('reporter kinds', () => {
  it('derives the kind from the identity alone', () => {
    const td = 'factory.example';
    expect(reporterKind('spiffe://factory.example/svc/ca', td)).toBe('ca');
    expect(reporterKind('spiffe://factory.example/svc/siem', td)).toBe('siem');
    expect(reporterKind('spiffe://factory.example/svc/admin', td)).toBe('svc');
    expect(reporterKind('spiffe://factory.example/svc/ca/x', td)).toBe('svc');
    expect(reporterKind('spiffe://factory.example/node/n1', td)).toBe('node');
    expect(reporterKind('spiffe://factory.example/device/d1', td)).toBe('device');
    expect(reporterKind('spiffe://factory.example/workload/w', td)).toBe('other');
    expect(reporterKind('spiffe://other.example/svc/ca', td)).toBe('other');
  });

  it('reads a stored event with the kind derived again, whatever the row says', () => {
    const old = {
      '@timestamp': T,
      'event.action': 'attestation.failure',
      'observer.identity': 'spiffe://factory.example/device/d1',
      'observer.type': 'ca',
    } as EdgeEvent;
    expect(withVerifiedKind(old)['observer.type']).toBe('device');
    const none = { '@timestamp': T, 'event.action': 'x', 'observer.type': 'ca' } as EdgeEvent;
    expect(withVerifiedKind(none)['observer.type']).toBeUndefined();
  });
});

describe('open ingest', () => {
  const base = { '@timestamp': T, 'event.action': 'suricata.alert' };

  it('accepts any ECS or sensor field, nested (as Beats send it) or flat, and ecs.version', () => {
    const e = validateEvent({
      ...base,
      ecs: { version: '8.11.0' },
      process: { command_line: 'sh -c id', pid: 42, args: ['sh', '-c', 'id'] },
      'suricata.eve.alert.signature_id': 2019236,
      'falco.rule': 'Terminal shell in container',
      'auditd.data.syscall': 'execve',
      'user.name': null,
      flag: true,
    }) as unknown as Record<string, unknown>;
    expect(e['ecs.version']).toBe('8.11.0');
    expect(e['process.command_line']).toBe('sh -c id');
    expect(e['process.pid']).toBe(42);
    expect(e['process.args']).toEqual(['sh', '-c', 'id']);
    expect(e['suricata.eve.alert.signature_id']).toBe(2019236);
    expect(e['user.name']).toBeNull();
    expect(e['flag']).toBe(true);
  });

  it('known fields keep their types and checks whichever way they are spelled', () => {
    expect(validateEvent({ ...base, source: { ip: '::ffff:10.0.0.5' } })['source.ip']).toBe('10.0.0.5');
    expect(codeOf(() => validateEvent({ ...base, source: { port: 'http' } }))).toBe('ERR_SIEM_EVENT_INVALID');
    expect(codeOf(() => validateEvent({ ...base, event: { id: 'x' } }))).toBe('ERR_SIEM_EVENT_SERVER_FIELD');
    expect(
      codeOf(() => validateEvent({ ...base, source: { ip: '10.0.0.1' }, 'source.ip': '10.0.0.1' })),
    ).toBe('ERR_SIEM_EVENT_INVALID');
    expect(validateEvent({ ...base, 'event.category': ['process', 'network'] })['event.category']).toEqual([
      'process',
      'network',
    ]);
    expect(codeOf(() => validateEvent({ ...base, 'event.category': 'made_up' }))).toBe(
      'ERR_SIEM_EVENT_INVALID',
    );
  });

  it('bounds other fields in count, size and depth', () => {
    const many: Record<string, number> = {};
    for (let i = 0; i < 300; i++) many[`f${i}`] = i;
    expect(codeOf(() => validateEvent({ ...base, ...many }))).toBe('ERR_SIEM_EVENT_INVALID');
    expect(codeOf(() => validateEvent({ ...base, x: 'y'.repeat(8193) }))).toBe('ERR_SIEM_EVENT_INVALID');
    expect(codeOf(() => validateEvent({ ...base, x: Array.from({ length: 65 }, () => 1) }))).toBe(
      'ERR_SIEM_EVENT_INVALID',
    );
    expect(codeOf(() => validateEvent({ ...base, x: [{ a: 1 }] }))).toBe('ERR_SIEM_EVENT_INVALID');
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 10; i++) deep = { d: deep };
    expect(codeOf(() => validateEvent({ ...base, deep }))).toBe('ERR_SIEM_EVENT_INVALID');
    const big: Record<string, string> = {};
    for (let i = 0; i < 20; i++) big[`s${i}`] = 'z'.repeat(4000);
    expect(codeOf(() => validateEvent({ ...base, ...big }))).toBe('ERR_SIEM_EVENT_INVALID');
    expect(codeOf(() => validateEvent({ ...base, 'a|b': 1 }))).toBe('ERR_SIEM_EVENT_INVALID');
    expect(
      codeOf(() =>
        validateEvent(JSON.parse(`{"@timestamp": ${T}, "event.action": "a", "x": {"__proto__": {"p": 1}}}`)),
      ),
    ).toBe('ERR_SIEM_EVENT_POISONED');
  });

  it("fills ECS categorization for edgeward's own actions where the reporter left it out", () => {
    const e = validateEvent({ '@timestamp': T, 'event.action': 'connection.denied' });
    expect([e['event.kind'], e['event.category'], e['event.type']]).toEqual([
      'event',
      'network',
      ['connection', 'denied'],
    ]);
    const ca = validateEvent({ '@timestamp': T, 'event.action': 'enroll.failure', 'event.category': 'iam' });
    expect(ca['event.type']).toEqual(['creation']);
    expect(validateEvent({ ...base })['event.kind']).toBeUndefined();
  });
});
