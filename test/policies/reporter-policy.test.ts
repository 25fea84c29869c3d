// The reporter policy: the default file, its schema (each refusal by its code), and the compiled
// check that ingest runs per event (kinds, action prefixes, and about whom).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EdgeEvent } from '../../common/events.js';
import {
  compileReporterPolicy,
  DEFAULT_BUDGETS,
  loadReporterPolicy,
  parseReporterPolicy,
} from '../../policies/reporter-policy.js';
import { edgeward } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const DEFAULT = join(import.meta.dirname, '..', '..', 'policies', 'default', 'reporter-policy.yaml');
const TD = 'spiffe://factory.example';
const CA = { identity: `${TD}/svc/ca`, kind: 'ca' } as const;
const N1 = { identity: `${TD}/node/n1`, kind: 'node' } as const;
const D1 = { identity: `${TD}/device/d1`, kind: 'device' } as const;
const ev = (action: string, extra: Record<string, string> = {}): EdgeEvent => ({
  '@timestamp': 1,
  'event.action': action,
  ...extra,
});

describe('the default reporter policy', () => {
  const p = compileReporterPolicy(loadReporterPolicy(DEFAULT));

  it('lets only the CA speak of enrollment, attestation, renewal and revocation, about anyone', () => {
    for (const a of ['enroll.success', 'attestation.failure', 'renewal.success', 'revocation']) {
      expect(p.check(CA, ev(a, { 'source.identity': `${TD}/node/n9` }))).toBeNull();
      expect(p.check(N1, ev(a, { 'source.identity': N1.identity }))).toBe('ERR_SIEM_REPORTER_ACTION');
      expect(p.check(D1, ev(a))).toBe('ERR_SIEM_REPORTER_ACTION');
    }
    // A prefix matches below it, not the bare word.
    expect(p.check(CA, ev('enroll'))).toBe('ERR_SIEM_REPORTER_ACTION');
  });

  it('lets a node report the connections it terminated or opened, not others’', () => {
    const inbound = { 'source.identity': D1.identity, 'network.direction': 'inbound' };
    expect(
      p.check(N1, ev('connection.accepted', { ...inbound, 'destination.identity': N1.identity })),
    ).toBeNull();
    expect(p.check(N1, ev('handshake.failure', { 'source.ip': '192.0.2.1' }))).toBeNull();
    expect(
      p.check(N1, ev('connection.accepted', { ...inbound, 'destination.identity': `${TD}/node/n2` })),
    ).toBe('ERR_SIEM_REPORTER_SUBJECT');
    const outbound = { 'network.direction': 'outbound', 'destination.identity': `${TD}/node/n2` };
    expect(
      p.check(N1, ev('connection.accepted', { ...outbound, 'source.identity': N1.identity })),
    ).toBeNull();
    expect(p.check(N1, ev('connection.accepted', { ...outbound, 'source.identity': D1.identity }))).toBe(
      'ERR_SIEM_REPORTER_SUBJECT',
    );
  });

  it('lets a device report nothing about others', () => {
    expect(p.check(D1, ev('connection.accepted', { 'destination.identity': D1.identity }))).toBe(
      'ERR_SIEM_REPORTER_ACTION',
    );
    expect(p.check(D1, ev('rotation', { 'source.identity': D1.identity }))).toBeNull();
    expect(p.check(D1, ev('rotation', { 'source.identity': `${TD}/device/d2` }))).toBe(
      'ERR_SIEM_REPORTER_SUBJECT',
    );
    expect(p.check(D1, ev('made.up.action'))).toBe('ERR_SIEM_REPORTER_ACTION');
  });

  it('lets nodes and the CA follow the decision stream, not devices', () => {
    expect(p.maySubscribe('node')).toBe(true);
    expect(p.maySubscribe('ca')).toBe(true);
    expect(p.maySubscribe('device')).toBe(false);
    expect(p.maySubscribe('svc')).toBe(false);
    expect(p.policy.budgets).toEqual(DEFAULT_BUDGETS);
  });

  it('is checked by `edgeward policy check`', () => {
    const r = edgeward(['policy', 'check', DEFAULT]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/reporter policy OK/);
    expect(r.stdout).toMatch(/subscribers: ca, node/);
  });
});

describe('reporter policy schema', () => {
  const base = readFileSync(DEFAULT, 'utf8');
  const code = (text: string): unknown => {
    try {
      parseReporterPolicy(text);
    } catch (err) {
      return (err as { code?: unknown }).code;
    }
    return 'accepted';
  };

  it('refuses each malformed policy with its code', () => {
    expect(code(base)).toBe('accepted');
    expect(code('kind: reporter-policy\nreporters: [\n')).toBe('ERR_POLICY_REPORTER_YAML');
    expect(code('kind: reporter-policy\nkind: reporter-policy\n')).toBe('ERR_POLICY_REPORTER_YAML');
    expect(code('kind: rules\n')).toBe('ERR_POLICY_REPORTER_SCHEMA');
    expect(code('kind: reporter-policy\nbogus: 1\n')).toBe('ERR_POLICY_REPORTER_SCHEMA');
    const rule = (r: string) => `kind: reporter-policy\nreporters:\n  - ${r}\n`;
    expect(code(rule('{ id: a, kinds: [robot], actions: [x.y], about: anyone }'))).toBe(
      'ERR_POLICY_REPORTER_SCHEMA',
    );
    expect(code(rule('{ id: a, kinds: [node], actions: ["*"], about: anyone }'))).toBe(
      'ERR_POLICY_REPORTER_SCHEMA',
    );
    expect(code(rule('{ id: a, kinds: [node], actions: [x.y], about: everyone }'))).toBe(
      'ERR_POLICY_REPORTER_SCHEMA',
    );
    expect(code(rule('{ id: a, kinds: [], actions: [x.y] }'))).toBe('ERR_POLICY_REPORTER_SCHEMA');
    expect(code(rule('{ id: a, kinds: [node], actions: [x.y], __proto__: 1 }'))).toBe(
      'ERR_POLICY_REPORTER_SCHEMA',
    );
    expect(
      code(
        `kind: reporter-policy\nreporters:\n  - { id: a, kinds: [ca], actions: [x] }\n  - { id: a, kinds: [ca], actions: [y] }\n`,
      ),
    ).toBe('ERR_POLICY_REPORTER_SCHEMA');
    expect(code('kind: reporter-policy\nbudgets: { events-burst: 100 }\n')).toBe(
      'ERR_POLICY_REPORTER_SCHEMA',
    );
    expect(code('kind: reporter-policy\nbudgets: { decision-streams: 0 }\n')).toBe(
      'ERR_POLICY_REPORTER_SCHEMA',
    );
    expect(code('a: &x [1]\nkind: reporter-policy\nb: *x\n')).toBe('ERR_POLICY_REPORTER_YAML');
    expect(() => loadReporterPolicy(join(tempDir(), 'missing.yaml'))).toThrow(
      expect.objectContaining({ code: 'ERR_POLICY_REPORTER_FILE' }),
    );
  });

  it('`policy check` prints the code of a bad policy and exits 1', () => {
    const f = join(tempDir(), 'bad.yaml');
    writeFileSync(f, 'kind: reporter-policy\nsubscribers: [robots]\n');
    const r = edgeward(['policy', 'check', f]);
    expect(r.status).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/ERR_POLICY_REPORTER_SCHEMA/);
  });
});
