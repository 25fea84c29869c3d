// Response playbooks: alerts to decisions with TTLs, escalation, allowlists that win, protected
// control-plane identities, the blast-radius cap, simulation, manual decisions and revisions.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EdgeEvent } from '../../../common/events.js';
import type { Alert } from '../../../siem/correlate/index.js';
import { ResponseEngine } from '../../../siem/playbooks/index.js';
import { loadPlaybooks, parsePlaybookTexts, type PlaybookConfig } from '../../../policies/index.js';
import { SAMPLE_PLAYBOOKS } from '../../helpers/playbooks.js';

const NOW = Date.UTC(2026, 0, 1, 12);
const TD = 'factory.example';
const DEV = 'spiffe://factory.example/device/d1';

const SETTINGS = `kind: response-settings
allowlist:
  - { type: identity, value: spiffe://factory.example/node/gateway }
  - { type: cidr, value: 10.255.0.0/16 }
blast-radius: { max-per-minute: 3 }
escalation: { window: 24h, factor: 2, max-ttl: 4h }
`;

function config(settings = SETTINGS): PlaybookConfig {
  return parsePlaybookTexts([
    { name: 'settings.yaml', text: settings },
    { name: 'pb.yaml', text: SAMPLE_PLAYBOOKS },
  ]);
}

let n = 0;
function alert(ruleId: string, fields: Record<string, string>): Alert {
  n++;
  return {
    id: `a${n}`,
    ruleId,
    title: `rule ${ruleId}`,
    level: 'high',
    type: 'event_count',
    time: NOW,
    windowStart: NOW,
    groupBy: fields,
    count: 3,
    values: [],
    events: [],
    trigger: { '@timestamp': NOW, 'event.action': 'x' },
  };
}

function engine(settings?: string): ResponseEngine {
  let id = 0;
  return new ResponseEngine({ trustDomain: TD, config: config(settings), newId: () => `d${++id}` });
}

describe('ResponseEngine', () => {
  it('turns an alert into a decision with the playbook TTL at a new revision', () => {
    const e = engine();
    const out = e.handleAlerts([alert('r-id', { 'source.identity': DEV })], NOW);
    expect(out.revision).toBe(1);
    expect(out.applied).toEqual([
      {
        id: 'd1',
        revision: 1,
        scope: { type: 'identity', value: DEV },
        action: 'quarantine',
        reason: 'rule r-id (rule r-id)',
        createdAt: NOW,
        expiresAt: NOW + 3_600_000,
        alerts: [out.applied[0]!.alerts[0]!],
      },
    ]);
    expect(e.snapshot(NOW).decisions).toHaveLength(1);
  });

  it('takes the scope value from the triggering event when it is not a group-by field', () => {
    const e = engine();
    const a = {
      ...alert('r-ip', {}),
      trigger: { '@timestamp': NOW, 'event.action': 'x', 'source.ip': '192.0.2.7' } as EdgeEvent,
    };
    expect(e.handleAlerts([a], NOW).applied[0]?.scope).toEqual({ type: 'ip', value: '192.0.2.7' });
    expect(e.handleAlerts([alert('r-ip', {})], NOW).skipped[0]?.reason).toBe('no-value');
  });

  it('escalates repeat offenders: a second decision on the same scope gets twice the TTL, capped', () => {
    const e = engine();
    const first = e.handleAlerts([alert('r-id', { 'source.identity': DEV })], NOW).applied[0]!;
    e.lift(first.id);
    const second = e.handleAlerts([alert('r-id', { 'source.identity': DEV })], NOW + 1000).applied[0]!;
    expect(second.expiresAt - second.createdAt).toBe(2 * 3_600_000);
    e.lift(second.id);
    e.handleAlerts([alert('r-id', { 'source.identity': DEV })], NOW + 2000);
    const fourth = e.active()[0]!;
    expect(fourth.expiresAt - fourth.createdAt).toBe(4 * 3_600_000);
  });

  it('a repeat alert on an active decision extends it instead of adding another', () => {
    const e = engine();
    e.handleAlerts([alert('r-id', { 'source.identity': DEV })], NOW);
    const out = e.handleAlerts([alert('r-id', { 'source.identity': DEV })], NOW + 60_000);
    expect(e.active()).toHaveLength(1);
    expect(out.applied[0]?.alerts).toHaveLength(2);
    expect(out.applied[0]?.expiresAt).toBe(NOW + 60_000 + 2 * 3_600_000);
    expect(out.revision).toBe(2);
  });

  it('allowlists always win, by overlap (CIDR and identity patterns)', () => {
    const e = engine();
    const out = e.handleAlerts(
      [
        alert('r-id', { 'source.identity': 'spiffe://factory.example/node/gateway' }),
        alert('r-ip', { 'source.ip': '10.255.1.2' }),
      ],
      NOW,
    );
    expect(out.applied).toEqual([]);
    expect(out.skipped.map((s) => s.reason)).toEqual(['allowlisted', 'allowlisted']);
    expect(() =>
      e.createManual(
        { scope: { type: 'cidr', value: '10.0.0.0/8' }, action: 'quarantine', ttlMs: 60_000, reason: 'x' },
        NOW,
      ),
    ).toThrow(expect.objectContaining({ code: 'ERR_SIEM_DECISION_ALLOWLISTED' }));
    expect(() =>
      e.createManual(
        {
          scope: { type: 'identity', value: 'spiffe://factory.example/node/*' },
          action: 'quarantine',
          ttlMs: 60_000,
          reason: 'x',
        },
        NOW,
      ),
    ).toThrow(expect.objectContaining({ code: 'ERR_SIEM_DECISION_ALLOWLISTED' }));
  });

  it('never quarantines control-plane identities, automatically or by hand', () => {
    const e = engine();
    const out = e.handleAlerts(
      [alert('r-id', { 'source.identity': 'spiffe://factory.example/svc/siem' })],
      NOW,
    );
    expect(out.skipped[0]?.reason).toBe('protected');
    for (const value of [
      'spiffe://factory.example/svc/ca',
      'spiffe://factory.example/*/ca',
      'spiffe://factory.example/**',
    ]) {
      expect(() =>
        e.createManual(
          { scope: { type: 'identity', value }, action: 'isolate', ttlMs: 60_000, reason: 'x' },
          NOW,
        ),
      ).toThrow(expect.objectContaining({ code: 'ERR_SIEM_DECISION_PROTECTED' }));
    }
    expect(e.revision).toBe(0);
  });

  it('beyond the blast-radius cap, new decisions wait for approval', () => {
    const e = engine();
    const alerts = [1, 2, 3, 4, 5].map((i) => alert('r-ip', { 'source.ip': `192.0.2.${i}` }));
    const out = e.handleAlerts(alerts, NOW);
    expect(out.applied).toHaveLength(3);
    expect(out.pending).toHaveLength(2);
    expect(e.pending()).toHaveLength(2);
    expect(e.pendingEdits).toBe(2);
    // The same scope and action again joins the decision already waiting.
    const again = e.handleAlerts([alert('r-ip', { 'source.ip': '192.0.2.5' })], NOW + 10);
    expect(again.pending).toEqual([out.pending[1]]);
    expect(e.pendingEdits).toBe(2);
    // Pending ones are not enforced; a minute later the cap has room again.
    expect(e.snapshot(NOW).decisions).toHaveLength(3);
    const approved = e.approve(out.pending[0]!.id, NOW + 1000);
    expect(approved.scope.value).toBe('192.0.2.4');
    expect(approved.expiresAt).toBe(NOW + 1000 + 15 * 60_000);
    expect(e.handleAlerts([alert('r-ip', { 'source.ip': '192.0.2.9' })], NOW + 61_000).applied).toHaveLength(
      1,
    );
    expect(e.reject(out.pending[1]!.id).scope.value).toBe('192.0.2.5');
    expect(e.pendingEdits).toBe(4);
    expect(e.pending()).toEqual([]);
    // Gone from the index too: the scope waits anew (the cap is full again at NOW + 61 s).
    e.handleAlerts(
      [alert('r-ip', { 'source.ip': '192.0.2.6' }), alert('r-ip', { 'source.ip': '192.0.2.7' })],
      NOW + 61_000,
    );
    expect(e.handleAlerts([alert('r-ip', { 'source.ip': '192.0.2.5' })], NOW + 61_001).pending).toHaveLength(
      1,
    );
    expect(() => e.approve('nope', NOW)).toThrow(
      expect.objectContaining({ code: 'ERR_SIEM_PENDING_UNKNOWN' }),
    );
  });

  it('simulation mode records the decision without enforcing it', () => {
    const e = engine();
    const out = e.handleAlerts([alert('r-sim', { 'source.identity': DEV })], NOW);
    expect(out.applied).toEqual([]);
    expect(out.simulated).toHaveLength(1);
    expect(e.simulated()[0]?.scope.value).toBe(DEV);
    expect(e.revision).toBe(0);
  });

  it('simulate-rules in the settings turns any rule into simulation', () => {
    const e = engine(`${SETTINGS}simulate-rules: [r-id]\n`);
    expect(e.handleAlerts([alert('r-id', { 'source.identity': DEV })], NOW).simulated).toHaveLength(1);
  });

  it('manual create, lift and expiry each move the revision; deltas chain them', () => {
    const e = engine();
    const m = e.createManual(
      { scope: { type: 'serial', value: '4f1a' }, action: 'quarantine', ttlMs: 60_000, reason: 'analyst' },
      NOW,
    );
    expect(m.alerts).toEqual([]);
    e.handleAlerts([alert('r-id', { 'source.identity': DEV })], NOW);
    expect(e.revision).toBe(2);
    const lifted = e.lift(m.id);
    expect(lifted.id).toBe(m.id);
    expect(e.revision).toBe(3);
    expect(e.expire(NOW + 3_600_000)).toHaveLength(1);
    expect(e.revision).toBe(4);
    expect(e.expire(NOW + 3_600_000)).toEqual([]);
    expect(e.revision).toBe(4);
    const d = e.deltaSince(1, NOW);
    expect(d.kind).toBe('delta');
    if (d.kind === 'delta') {
      expect(d.delta.from).toBe(1);
      expect(d.delta.revision).toBe(4);
      expect(d.delta.upserts).toEqual([]);
      expect([...d.delta.removals].sort()).toEqual(['d1', 'd2']);
    }
    expect(e.deltaSince(4, NOW)).toEqual({ kind: 'current' });
    expect(e.deltaSince(9, NOW)).toEqual({ kind: 'snapshot' });
    expect(() => e.lift('d1')).toThrow(expect.objectContaining({ code: 'ERR_SIEM_DECISION_UNKNOWN' }));
    expect(() =>
      e.createManual(
        { scope: { type: 'ip', value: 'nope' }, action: 'quarantine', ttlMs: 60_000, reason: 'x' },
        NOW,
      ),
    ).toThrow(expect.objectContaining({ code: 'ERR_SIEM_DECISION_SCOPE' }));
  });

  it('makes every scope canonical before checking it: the allowlist sees ::ffff:10.255.1.2 as 10.255.1.2', () => {
    const e = engine();
    const manual = (type: string, value: string) =>
      e.createManual(
        { scope: { type, value } as never, action: 'quarantine', ttlMs: 60_000, reason: 'analyst' },
        NOW,
      );
    for (const v of ['::ffff:10.255.1.2', '::FFFF:AFF:102', '0:0:0:0:0:ffff:10.255.1.2'])
      expect(() => manual('ip', v), v).toThrow(
        expect.objectContaining({ code: 'ERR_SIEM_DECISION_ALLOWLISTED' }),
      );
    // A block that holds an allowlisted address is refused whole; the mapped range is all of IPv4.
    for (const v of ['10.0.0.0/8', '::ffff:0.0.0.0/96', '0.0.0.0/0'])
      expect(() => manual('cidr', v), v).toThrow(
        expect.objectContaining({ code: 'ERR_SIEM_DECISION_ALLOWLISTED' }),
      );
    expect(manual('ip', '::ffff:192.0.2.1').scope).toEqual({ type: 'ip', value: '192.0.2.1' });
    expect(manual('cidr', '2001:DB8::/32').scope).toEqual({ type: 'cidr', value: '2001:db8::/32' });
    expect(manual('serial', '00:4F:1B').scope).toEqual({ type: 'serial', value: '4f1b' });
    // The same address in two spellings is one decision (extended, not doubled).
    manual('ip', '192.0.2.1');
    expect(e.active().filter((d) => d.scope.value === '192.0.2.1')).toHaveLength(1);
    for (const [type, value, cause] of [
      ['ip', 'fe80::1%eth0', 'ERR_IP_ZONE'],
      ['cidr', '10.1.0.1/16', 'ERR_IP_CIDR_HOST_BITS'],
      ['ip', '010.1.2.3', 'ERR_IP_INVALID'],
    ] as const) {
      try {
        manual(type, value);
        throw new Error(`${value} was accepted`);
      } catch (err) {
        expect(err, value).toMatchObject({ code: 'ERR_SIEM_DECISION_SCOPE', cause: { code: cause } });
      }
    }
    // Automatic decisions too: an alert keyed by a spelling the schema did not canonicalise.
    const out = e.handleAlerts(
      [alert('r-ip', { 'source.ip': '::ffff:10.255.9.9' }), alert('r-ip', { 'source.ip': 'fe80::1%lo' })],
      NOW,
    );
    expect(out.skipped.map((x) => x.reason)).toEqual(['allowlisted', 'invalid-scope']);
  });

  it('repairScopes rewrites decisions stored before canonical scopes, or lifts them, in one revision', () => {
    const stored = (id: string, type: string, value: string) => ({
      id,
      revision: 5,
      scope: { type, value } as never,
      action: 'quarantine' as const,
      reason: 'old',
      createdAt: NOW,
      expiresAt: NOW + 3_600_000,
      alerts: [],
    });
    const e = engine();
    e.importState({
      revision: 5,
      decisions: [
        stored('keep', 'ip', '192.0.2.1'),
        stored('mapped', 'ip', '::ffff:192.0.2.2'),
        stored('bypass', 'ip', '::ffff:10.255.0.1'), // the allowlist bypass, stored by an old SIEM
        stored('zone', 'ip', 'fe80::1%eth0'),
        stored('twin', 'serial', '00AB'),
        stored('serial', 'serial', 'ab'),
      ],
      pending: [],
    });
    expect(e.repairScopes()).toEqual({ rewritten: ['mapped'], lifted: ['bypass', 'zone', 'twin'] });
    expect(e.revision).toBe(6);
    expect(e.active().map((d) => [d.id, d.scope.value])).toEqual([
      ['keep', '192.0.2.1'],
      ['serial', 'ab'],
      ['mapped', '192.0.2.2'],
    ]);
    const d = e.deltaSince(5, NOW);
    expect(d.kind === 'delta' && d.delta.removals).toEqual(['bypass', 'zone', 'twin']);
    expect(e.repairScopes()).toEqual({ rewritten: [], lifted: [] });
    expect(e.revision).toBe(6);
  });

  it('restores state with a revision that never goes back', () => {
    const a = engine();
    a.handleAlerts([alert('r-id', { 'source.identity': DEV })], NOW);
    const b = engine();
    b.importState(a.exportState());
    expect(b.revision).toBe(1);
    expect(b.deltaSince(0, NOW)).toEqual({ kind: 'snapshot' });
    // The restored decision is found again: a repeat alert extends it.
    b.handleAlerts([alert('r-id', { 'source.identity': DEV })], NOW + 1000);
    expect(b.active()).toHaveLength(1);
    expect(b.revision).toBe(2);
  });
});

describe('playbook files', () => {
  it('loads the default playbooks', async () => {
    const cfg = await loadPlaybooks(join(import.meta.dirname, '../../../policies/default/playbooks'));
    expect(cfg.playbooks.map((p) => p.id).sort()).toEqual([
      'isolate-lateral-movement',
      'quarantine-cloned-credential',
      'quarantine-failed-attestation',
      'quarantine-failed-attestation-source',
      'quarantine-handshake-flood',
      'simulate-policy-denial-burst',
    ]);
    expect(cfg.settings.maxPerMinute).toBe(60);
    expect(cfg.settings.perReporter).toBe(20);
    expect(cfg.settings.sharedEvidence).toBe(10);
    // The reserve has no total: every reporter has its own share, which no other can spend.
    expect(cfg.settings.reserved).toEqual({
      rules: ['ew-cloned-credential'],
      maxPerMinute: Infinity,
      perReporter: 10,
      sharedEvidence: 5,
    });
  });

  it('keeps the allowlist in canonical form', () => {
    const cfg = parsePlaybookTexts([
      {
        name: 's.yaml',
        text: "kind: response-settings\nallowlist:\n  - { type: ip, value: '::ffff:127.0.0.1' }\n  - { type: cidr, value: '::FFFF:10.0.0.0/104' }\n  - { type: serial, value: '0A:BC' }\n",
      },
    ]);
    expect(cfg.settings.allowlist).toEqual([
      { type: 'ip', value: '127.0.0.1' },
      { type: 'cidr', value: '10.0.0.0/8' },
      { type: 'serial', value: 'abc' },
    ]);
  });

  const bad: [string, string][] = [
    [
      'unknown key',
      'kind: playbook\nid: p\nrules: [r]\nbogus: 1\ndecisions:\n  - { scope: ip, from: source.ip, ttl: 1m }\n',
    ],
    ['unknown kind', 'kind: other\n'],
    [
      'bad scope',
      'kind: playbook\nid: p\nrules: [r]\ndecisions:\n  - { scope: cidr, from: source.ip, ttl: 1m }\n',
    ],
    ['bad field', 'kind: playbook\nid: p\nrules: [r]\ndecisions:\n  - { scope: ip, from: nope, ttl: 1m }\n'],
    [
      'bad ttl',
      'kind: playbook\nid: p\nrules: [r]\ndecisions:\n  - { scope: ip, from: source.ip, ttl: forever }\n',
    ],
    [
      'ttl too long',
      'kind: playbook\nid: p\nrules: [r]\ndecisions:\n  - { scope: ip, from: source.ip, ttl: 90d }\n',
    ],
    ['bad allowlist entry', 'kind: response-settings\nallowlist:\n  - { type: ip, value: 10.0.0.0/8 }\n'],
    [
      'allowlist block with host bits',
      'kind: response-settings\nallowlist:\n  - { type: cidr, value: 10.0.0.1/8 }\n',
    ],
    ['allowlist zone', "kind: response-settings\nallowlist:\n  - { type: ip, value: 'fe80::1%eth0' }\n"],
    ['poisoned key', 'kind: response-settings\n__proto__: { x: 1 }\n'],
    [
      'duplicate id',
      'kind: playbook\nid: p\nrules: [r]\ndecisions:\n  - { scope: ip, from: source.ip, ttl: 1m }\n---\nkind: playbook\nid: p\nrules: [r]\ndecisions:\n  - { scope: ip, from: source.ip, ttl: 1m }\n',
    ],
    [
      'alias',
      'kind: playbook\nid: &a p\nrules: [*a]\ndecisions:\n  - { scope: ip, from: source.ip, ttl: 1m }\n',
    ],
  ];
  for (const [name, text] of bad) {
    it(`refuses ${name} with ERR_SIEM_PLAYBOOK_INVALID`, () => {
      expect(() => parsePlaybookTexts([{ name: 'x.yaml', text }])).toThrow(
        expect.objectContaining({ code: 'ERR_SIEM_PLAYBOOK_INVALID' }),
      );
    });
  }
});

describe('budgets per reporter', () => {
  const R = (name: string) => `spiffe://factory.example/node/${name}`;
  const from = (a: Alert, ...reporters: string[]): Alert => ({ ...a, reporters });
  const BUDGETS = `kind: response-settings
blast-radius:
  max-per-minute: 10
  per-reporter: 4
  reserved: { rules: [r-id], max-per-minute: 2, per-reporter: 1 }
`;

  it('forged floods exhaust the automatic-decision budget of their reporter only', () => {
    const e = engine(BUDGETS);
    const flood = [1, 2, 3, 4, 5, 6].map((i) =>
      from(alert('r-ip', { 'source.ip': `192.0.2.${i}` }), R('forger')),
    );
    const out = e.handleAlerts(flood, NOW);
    expect(out.applied).toHaveLength(4);
    expect(out.pending).toHaveLength(2);
    // Evidence from another reporter still decides at once ...
    expect(
      e.handleAlerts([from(alert('r-ip', { 'source.ip': '198.51.100.1' }), R('n1'))], NOW).applied,
    ).toHaveLength(1);
    // ... and an alert with evidence from both is charged to the one with room.
    const both = e.handleAlerts(
      [from(alert('r-ip', { 'source.ip': '198.51.100.2' }), R('forger'), R('n1'))],
      NOW,
    );
    expect(both.applied).toHaveLength(1);
  });

  it('reserved rules have their own budget, which other rules’ floods cannot spend', () => {
    const e = engine(BUDGETS);
    // Ten reporters spend the whole general budget (10 a minute).
    const general = Array.from({ length: 12 }, (_, i) =>
      from(alert('r-ip', { 'source.ip': `192.0.2.${i + 1}` }), R(`f${i % 10}`)),
    );
    expect(e.handleAlerts(general, NOW).applied).toHaveLength(10);
    const reserved = e.handleAlerts([from(alert('r-id', { 'source.identity': DEV }), R('n1'))], NOW);
    expect(reserved.applied.map((d) => d.scope)).toEqual([{ type: 'identity', value: DEV }]);
    // One reporter gets one reserved decision a minute; the next waits.
    const again = e.handleAlerts(
      [from(alert('r-id', { 'source.identity': 'spiffe://factory.example/device/d2' }), R('n1'))],
      NOW,
    );
    expect(again.pending).toHaveLength(1);
    expect(
      e.handleAlerts(
        [from(alert('r-id', { 'source.identity': 'spiffe://factory.example/device/d3' }), R('n1'))],
        NOW + 61_000,
      ).applied,
    ).toHaveLength(1);
  });
});

describe('budgets per reporter: the reserve cannot be starved by other reporters', () => {
  const R = (name: string) => `spiffe://factory.example/node/${name}`;
  const from = (a: Alert, ...reporters: string[]): Alert => ({ ...a, reporters });
  const serialAlert = (serial: string, ...reporters: string[]) =>
    from(alert('r-id', { 'source.identity': `spiffe://factory.example/device/${serial}` }), ...reporters);
  const RESERVE = `kind: response-settings
blast-radius:
  max-per-minute: 10
  per-reporter: 4
  reserved: { rules: [r-id], per-reporter: 3, shared-evidence: 1 }
`;

  it('two compromised reporters flooding forged clone evidence cannot starve an honest reporter’s detection', () => {
    const e = engine(RESERVE);
    const flood = Array.from({ length: 400 }, (_, i) => serialAlert(`f${i}`, R(i % 2 === 0 ? 'a' : 'b')));
    const spent = e.handleAlerts(flood, NOW);
    // Each forger raised its own share (3), no more; the rest wait for an analyst.
    expect(spent.applied).toHaveLength(6);
    expect(spent.pending).toHaveLength(394);
    // The honest reporter's detection is enforced at once, whatever the others spent.
    const honest = e.handleAlerts([serialAlert('real-clone', R('c'))], NOW + 1);
    expect(honest.pending).toEqual([]);
    expect(honest.applied.map((d) => d.scope.value)).toEqual(['spiffe://factory.example/device/real-clone']);
  });

  it('forged evidence joined to an honest reporter’s spends only its shared-evidence share', () => {
    const e = engine(RESERVE);
    // The forger spends its own share, then joins its events to the honest reporter's.
    e.handleAlerts(
      [1, 2, 3].map((i) => serialAlert(`own${i}`, R('a'))),
      NOW,
    );
    const joint = e.handleAlerts(
      [1, 2, 3].map((i) => serialAlert(`joint${i}`, R('a'), R('c'))),
      NOW,
    );
    expect(joint.applied).toHaveLength(1);
    expect(joint.pending).toHaveLength(2);
    // What the honest reporter's evidence alone raises still has the rest of its share.
    const own = e.handleAlerts(
      [1, 2].map((i) => serialAlert(`c${i}`, R('c'))),
      NOW,
    );
    expect(own.applied).toHaveLength(2);
  });

  it('a detection the honest reporter’s evidence alone raised is its own, whatever a forger joined to it', () => {
    const e = engine(RESERVE);
    e.handleAlerts(
      [1, 2, 3].map((i) => serialAlert(`own${i}`, R('a'))),
      NOW,
    );
    // The forger's joint alerts spend the honest reporter's joint share (1) ...
    e.handleAlerts(
      [1, 2].map((i) => serialAlert(`joint${i}`, R('a'), R('c'))),
      NOW,
    );
    // ... but an alert that the honest evidence alone raised is charged to its whole share.
    const real = { ...serialAlert('real', R('a'), R('c')), alone: [R('c')] };
    expect(e.handleAlerts([real], NOW).applied).toHaveLength(1);
  });

  it('a reserved max-per-minute is a total shared by every reporter', () => {
    const e = engine(RESERVE.replace('per-reporter: 3,', 'max-per-minute: 4, per-reporter: 3,'));
    e.handleAlerts(
      [1, 2, 3, 4].map((i) => serialAlert(`f${i}`, R(i % 2 === 0 ? 'a' : 'b'))),
      NOW,
    );
    expect(e.handleAlerts([serialAlert('real', R('c'))], NOW).pending).toHaveLength(1);
  });

  const refused: [string, string][] = [
    ['a share as large as the total', 'blast-radius: { max-per-minute: 20, per-reporter: 20 }'],
    [
      'a reserved share as large as its total',
      'blast-radius: { reserved: { max-per-minute: 5, per-reporter: 6 } }',
    ],
    ['a joint share larger than the share', 'blast-radius: { per-reporter: 4, shared-evidence: 5 }'],
  ];
  for (const [name, yaml] of refused) {
    it(`refuses ${name} with ERR_SIEM_PLAYBOOK_INVALID`, () => {
      expect(() =>
        parsePlaybookTexts([{ name: 's.yaml', text: `kind: response-settings\n${yaml}\n` }]),
      ).toThrow(expect.objectContaining({ code: 'ERR_SIEM_PLAYBOOK_INVALID' }));
    });
  }

  it('a total alone leaves one reporter less than all of it', () => {
    const cfg = parsePlaybookTexts([
      { name: 's.yaml', text: 'kind: response-settings\nblast-radius: { max-per-minute: 5 }\n' },
    ]);
    expect(cfg.settings).toMatchObject({ maxPerMinute: 5, perReporter: 4, sharedEvidence: 2 });
  });
});

describe('ResponseEngine.adoptState (replicas on one store)', () => {
  const make = (e: ResponseEngine, value: string) =>
    e.createManual(
      { scope: { type: 'ip', value }, action: 'quarantine', ttlMs: 60_000, reason: 'analyst' },
      NOW,
    );

  it('takes a state one revision ahead as one delta; a longer jump needs a snapshot', () => {
    const writer = engine();
    const follower = engine();
    make(writer, '192.0.2.1');
    expect(follower.adoptState(writer.exportState())).toBe(true);
    expect(follower.revision).toBe(1);
    const d = follower.deltaSince(0, NOW);
    expect(d.kind === 'delta' && d.delta.upserts.map((x) => x.scope.value)).toEqual(['192.0.2.1']);
    make(writer, '192.0.2.2');
    writer.lift(writer.active().find((x) => x.scope.value === '192.0.2.1')?.id ?? '');
    follower.adoptState(writer.exportState());
    expect(follower.revision).toBe(3);
    expect(follower.active().map((x) => x.scope.value)).toEqual(['192.0.2.2']);
    expect(follower.deltaSince(1, NOW).kind).toBe('snapshot');
    // Not newer: ignored; `replace` takes it whatever its revision.
    expect(follower.adoptState({ revision: 2, decisions: [], pending: [] })).toBe(false);
    expect(follower.adoptState({ revision: 3, decisions: [], pending: [] }, true)).toBe(true);
    expect(follower.active()).toEqual([]);
    expect(follower.deltaSince(2, NOW).kind).toBe('snapshot');
  });
});
