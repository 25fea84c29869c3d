// One canonical form for every decision scope, and the property that every part that reads an
// address agrees on it in every spelling: the SIEM's event schema, a rule's `|cidr`, the
// playbooks' allowlist, the decision signer and verifier, and the agent's enforcement.
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Enforcer, type LiveConn } from '../../agent/index.js';
import { fakeClock } from '../../common/clock.js';
import { signDecisionSet, verifyDecisions } from '../../common/decision-jws.js';
import { canonicalScope, isCanonicalScope } from '../../common/decision-scope.js';
import type { Decision, DecisionScope } from '../../common/decisions.js';
import { validateEvent } from '../../common/events.js';
import { parseIp } from '../../common/ip.js';
import { checkRuleFile } from '../../policies/rules/index.js';
import { ResponseEngine } from '../../siem/playbooks/index.js';
import { parsePlaybookTexts } from '../../policies/index.js';
import { addressOf, arbAddress, holds, spellings, type Address } from '../helpers/ip-spellings.js';

const TD = 'factory.example';
const NOW = Date.UTC(2026, 0, 1, 12);
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });

describe('canonicalScope', () => {
  it('writes each scope type in its one form', () => {
    const cases: [DecisionScope['type'], string, DecisionScope][] = [
      ['ip', '::ffff:127.0.0.1', { type: 'ip', value: '127.0.0.1' }],
      ['ip', '2001:DB8:0::1', { type: 'ip', value: '2001:db8::1' }],
      ['cidr', '::ffff:0.0.0.0/96', { type: 'cidr', value: '0.0.0.0/0' }],
      ['cidr', '::ffff:10.0.0.0/104', { type: 'cidr', value: '10.0.0.0/8' }],
      ['cidr', '10.0.0.1/32', { type: 'ip', value: '10.0.0.1' }],
      ['cidr', '2001:db8::1/128', { type: 'ip', value: '2001:db8::1' }],
      ['serial', '00:AB:CD', { type: 'serial', value: 'abcd' }],
      ['serial', '000', { type: 'serial', value: '0' }],
      ['spki', 'AB'.repeat(32), { type: 'spki', value: 'ab'.repeat(32) }],
      [
        'identity',
        'spiffe://factory.example/device/*',
        { type: 'identity', value: 'spiffe://factory.example/device/*' },
      ],
      [
        'node',
        'spiffe://factory.example/node/n1',
        { type: 'node', value: 'spiffe://factory.example/node/n1' },
      ],
    ];
    for (const [type, value, want] of cases) {
      expect(canonicalScope({ type, value }), value).toEqual(want);
      expect(isCanonicalScope(want), value).toBe(true);
      expect(isCanonicalScope({ type, value }), value).toBe(type === want.type && value === want.value);
    }
  });

  it('refuses what has no canonical form, with the code of the reason', () => {
    const cases: [string, string, string][] = [
      ['ip', 'fe80::1%eth0', 'ERR_IP_ZONE'],
      ['cidr', 'fe80::%eth0/64', 'ERR_IP_ZONE'],
      ['ip', '010.0.0.1', 'ERR_IP_INVALID'],
      ['ip', '10.0.0.0/8', 'ERR_IP_INVALID'],
      ['cidr', '10.0.0.1/8', 'ERR_IP_CIDR_HOST_BITS'],
      ['cidr', '10.0.0.0', 'ERR_IP_CIDR_INVALID'],
      ['serial', 'xyz', 'ERR_SERIAL_INVALID'],
      ['serial', 'a'.repeat(65), 'ERR_SERIAL_INVALID'],
      ['spki', 'ab', 'ERR_INPUT_MALFORMED'],
      ['identity', 'spiffe://Factory.example/x', 'ERR_ID_INVALID'],
      ['node', 'spiffe://factory.example/device/d1', 'ERR_ID_INVALID'],
      ['other', 'x', 'ERR_INPUT_MALFORMED'],
    ];
    for (const [type, value, code] of cases)
      expect(() => canonicalScope({ type, value }), value).toThrow(expect.objectContaining({ code }));
  });
});

function conn(ip: string): LiveConn & { killed: boolean } {
  const c = {
    identity: 'spiffe://factory.example/device/d1',
    serial: 'abc1',
    spki: 'f'.repeat(64),
    ip,
    notAfter: NOW + 86_400_000,
    direction: 'inbound' as const,
    listener: 'in',
    killed: false,
    kill: () => {
      c.killed = true;
    },
  };
  return c;
}

function engine(allowlist: DecisionScope | null): ResponseEngine {
  const list = allowlist === null ? '[]' : `[{ type: ${allowlist.type}, value: '${allowlist.value}' }]`;
  return new ResponseEngine({
    trustDomain: TD,
    config: parsePlaybookTexts([{ name: 's.yaml', text: `kind: response-settings\nallowlist: ${list}\n` }]),
  });
}

function rule(block: string) {
  const text = `title: t\nid: r1\nlogsource: { product: edgeward }\ndetection:\n  sel:\n    source.ip|cidr: '${block}'\n  condition: sel\n`;
  const r = checkRuleFile(text).detections[0];
  if (r === undefined) throw new Error('no rule');
  return r;
}

/** A block of the address's family with a random prefix, in a random accepted spelling. */
const arbBlock = fc
  .tuple(arbAddress, fc.nat(128), fc.nat(100))
  .map(([a, raw, pick]): { base: Address; bits: number; text: string } => {
    const max = a.family === 4 ? 32 : 128;
    const bits = raw % (max + 1);
    const shift = BigInt(max - bits);
    const base = addressOf(a.family, (a.n >> shift) << shift);
    // A mapped spelling of an IPv4 block carries the prefix over the mapped range.
    const forms = spellings(base).map((s) =>
      s.includes(':') && a.family === 4 ? `${s}/${bits + 96}` : `${s}/${bits}`,
    );
    return { base, bits, text: forms[pick % forms.length] as string };
  });

describe('every part reads an address alike, in every spelling', () => {
  it('event schema, rules, allowlist, signer, verifier and agent agree', async () => {
    await fc.assert(
      fc.asyncProperty(arbAddress, arbBlock, fc.nat(100), async (a, block, pick) => {
        const forms = spellings(a);
        const spelled = forms[pick % forms.length] as string;
        const canonical = parseIp(a.text).text;
        const inside = holds(block.base, block.bits, a);

        // The SIEM stores the canonical address whatever the reporter wrote.
        const ev = validateEvent({
          '@timestamp': NOW,
          'event.action': 'handshake.failure',
          'source.ip': spelled,
        });
        expect(ev['source.ip']).toBe(canonical);
        // A rule's |cidr matches the stored event exactly when the block holds the address.
        expect(rule(block.text).match(ev)).toBe(inside);

        // The allowlist wins by overlap: an ip decision inside an allowlisted block is refused.
        const allowed = engine({ type: 'cidr', value: block.text });
        const manual = { action: 'quarantine' as const, ttlMs: 60_000, reason: 'p' };
        if (inside) {
          expect(() =>
            allowed.createManual({ ...manual, scope: { type: 'ip', value: spelled } }, NOW),
          ).toThrow(expect.objectContaining({ code: 'ERR_SIEM_DECISION_ALLOWLISTED' }));
          // ...and so is a block decision over an allowlisted address.
          expect(() =>
            engine({ type: 'ip', value: spelled }).createManual(
              { ...manual, scope: { type: 'cidr', value: block.text } },
              NOW,
            ),
          ).toThrow(expect.objectContaining({ code: 'ERR_SIEM_DECISION_ALLOWLISTED' }));
        } else {
          const d = allowed.createManual({ ...manual, scope: { type: 'ip', value: spelled } }, NOW);
          expect(d.scope).toEqual({ type: 'ip', value: canonical });
        }

        // A block decision is created canonical, signed, verified, and cuts exactly the
        // connections whose socket address (in any spelling) it holds.
        const d = engine(null).createManual({ ...manual, scope: { type: 'cidr', value: block.text } }, NOW);
        expect(isCanonicalScope(d.scope)).toBe(true);
        const set = { trustDomain: TD, revision: 1, issuedAt: NOW, decisions: [d] as Decision[] };
        const doc = await verifyDecisions(await signDecisionSet(set, privateKey, 'k'), {
          publicKey,
          trustDomain: TD,
          lastApplied: null,
          now: NOW,
        });
        if (doc.kind !== 'snapshot') throw new Error('not a snapshot');
        const enforcer = new Enforcer(fakeClock(NOW));
        const c = conn(spelled);
        enforcer.add(c);
        enforcer.applyDecisions(doc.set);
        expect(c.killed).toBe(inside);
        expect(enforcer.check(conn(spelled), 'inbound') !== null).toBe(inside);
      }),
      { numRuns: 150 },
    );
  });
});
