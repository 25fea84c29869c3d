// The decisions subject's message, shared by the SIEM and the agents: names of a prefix, and every
// malformed or hostile message refused with the caller's code (the agent's, or the SIEM's).
import { describe, expect, it } from 'vitest';
import { busDecisionNames, parseBusDecision } from '../../common/bus-decisions.js';
import { peekDecision } from '../../client/index.js';

const enc = (v: unknown): Uint8Array =>
  new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
const GOOD = { kind: 'delta', from: 3, revision: 4, kid: 'a'.repeat(64), jws: 'h.p.s' };

describe('bus decision messages', () => {
  it('names the stream and subject of a prefix', () => {
    expect(busDecisionNames('edgeward')).toEqual({
      stream: 'EDGEWARD_DECISIONS',
      subject: 'edgeward.decisions',
    });
    expect(() => busDecisionNames('Edge')).toThrow(TypeError);
  });

  it('reads a delta or a snapshot; a message without kind is a delta', () => {
    expect(parseBusDecision(enc(GOOD))).toEqual(GOOD);
    expect(parseBusDecision(enc({ ...GOOD, kind: 'snapshot' })).kind).toBe('snapshot');
    const old = { from: GOOD.from, revision: GOOD.revision, kid: GOOD.kid, jws: GOOD.jws };
    expect(parseBusDecision(enc(old)).kind).toBe('delta');
  });

  it('refuses what is not a decision message, with the code of the reader', () => {
    const bad: unknown[] = [
      'not json',
      '[]',
      'null',
      { ...GOOD, kind: 'other' },
      { ...GOOD, from: -1 },
      { ...GOOD, revision: 3 },
      { ...GOOD, from: 1.5 },
      { ...GOOD, revision: 2 ** 53 },
      { ...GOOD, kid: 'bad kid' },
      { ...GOOD, kid: 7 },
      { ...GOOD, jws: { x: 1 } },
      '{"__proto__": {"from": 1}, "revision": 2, "kid": "k", "jws": "j"}',
    ];
    for (const b of bad) {
      expect(() => parseBusDecision(enc(b), 'ERR_AGENT_DECISION_BUS'), JSON.stringify(b)).toThrow(
        expect.objectContaining({ code: 'ERR_AGENT_DECISION_BUS' }),
      );
      expect(() => parseBusDecision(enc(b))).toThrow(
        expect.objectContaining({ code: 'ERR_SIEM_BUS_MESSAGE' }),
      );
    }
    expect(() => parseBusDecision(new Uint8Array([0xff, 0xfe]), 'ERR_AGENT_DECISION_BUS')).toThrow(
      expect.objectContaining({ code: 'ERR_AGENT_DECISION_BUS' }),
    );
    expect(() => parseBusDecision(new Uint8Array(8 * 1024 * 1024 + 4097))).toThrow(/too large/);
  });

  it('peeks at a JWS payload without trusting it, and gives null for anything else', () => {
    const payload = Buffer.from(JSON.stringify({ kind: 'delta', from: 1, revision: 2 })).toString(
      'base64url',
    );
    expect(peekDecision(`e30.${payload}.sig`)).toEqual({ kind: 'delta', from: 1, revision: 2 });
    expect(peekDecision('one.two')).toBeNull();
    expect(peekDecision(`e30.${Buffer.from('[1]').toString('base64url')}.s`)).toBeNull();
    expect(peekDecision('e30.!!!.s')).toBeNull();
    const proto = Buffer.from('{"__proto__":{"revision":9}}').toString('base64url');
    expect(peekDecision(`e30.${proto}.s`)?.revision).toBeUndefined();
  });
});
