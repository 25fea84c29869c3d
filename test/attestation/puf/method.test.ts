import { describe, expect, it } from 'vitest';
import type { BeginResult, CsrKey, MethodContext, Verdict } from '../../../attestation/method.js';
import type { Identity } from '../../../common/identity.js';
import { createPufMethod, type PufMethod } from '../../../attestation/puf/method.js';
import { createPufProver } from '../../../attestation/puf/prover.js';
import { ca, csrKey, device, provisioned, type Ca } from './fixtures.js';

type Obj = Record<string, unknown>;

async function enroll(
  c: Ca,
  method: PufMethod,
  id: Identity,
  seed: string,
  opts: {
    mode?: 'key' | 'crp';
    csr?: CsrKey;
    tamper?: (challenge: Obj) => void;
    spec?: string;
    ctx?: MethodContext;
  } = {},
): Promise<{ begun: BeginResult; response: Obj; csr: CsrKey; finish: () => Promise<Verdict> }> {
  const ctx = opts.ctx ?? c.ctx;
  const prover = createPufProver({
    puf: opts.spec ?? `sim:${seed}`,
    id: id.uri,
    mode: opts.mode ?? 'key',
    noiseSeed: `${seed}/field`,
  });
  const begun = await method.begin(ctx, id, await prover.evidence());
  const challenge = JSON.parse(JSON.stringify(begun.challenge)) as Obj; // what crosses the wire
  opts.tamper?.(challenge);
  const csr = opts.csr ?? csrKey();
  const response = await prover.respond(challenge, csr);
  return {
    begun,
    response,
    csr,
    finish: async () => method.finish(ctx, id, begun.state, response, csr),
  };
}

async function commit(c: Ca, v: Verdict): Promise<void> {
  await c.store.transaction(async (tx) => v.commit?.(tx));
}

/** Sync throws and async rejections alike. */
const expectCode = async (f: () => unknown, code: string): Promise<void> => {
  await expect(Promise.resolve().then(f)).rejects.toMatchObject({ code });
};

describe('puf attestation method, key mode', () => {
  it('enrolls a provisioned device: nonce and helper data out, signature bound to the CSR back', async () => {
    const c = ca();
    const m = createPufMethod();
    const id = device('k1');
    const rec = provisioned(id, 'key-1');
    await c.register(rec);
    const e = await enroll(c, m, id, 'key-1');
    expect(Object.keys(e.begun.challenge).sort()).toEqual([
      'expiresAt',
      'helper',
      'mode',
      'nonce',
      'params',
      'profile',
    ]);
    const v = await e.finish();
    expect(v).toMatchObject({
      method: 'puf',
      identity: id.uri,
      facts: { mode: 'key', pufKey: rec.publicKey },
    });
    await commit(c, v);
  });

  it('enrolls at 15 % bit errors with drift', async () => {
    const c = ca();
    const m = createPufMethod();
    const id = device('k-hot');
    await c.register(provisioned(id, 'key-hot', 0, 0.15));
    const e = await enroll(c, m, id, 'key-hot', { spec: 'sim:key-hot,ber=0.15,drift=0.2' });
    await commit(c, await e.finish());
  });

  it("refuses another device's PUF (ERR_ATT_PUF_KEY_MISMATCH)", async () => {
    const c = ca();
    const m = createPufMethod();
    const id = device('k2');
    await c.register(provisioned(id, 'key-2'));
    const e = await enroll(c, m, id, 'key-2-impostor');
    await expectCode(e.finish, 'ERR_ATT_PUF_KEY_MISMATCH');
  });

  it('refuses tampered helper data (ERR_ATT_PUF_HELPER_MISMATCH), even a change the code corrects', async () => {
    const c = ca();
    const m = createPufMethod();
    const id = device('k3');
    await c.register(provisioned(id, 'key-3'));
    const e = await enroll(c, m, id, 'key-3', {
      tamper: (ch) => {
        const h = ch['helper'] as Obj;
        const off = Buffer.from(String(h['offset']), 'base64url');
        off[10]! ^= 0x04;
        h['offset'] = off.toString('base64url');
      },
    });
    await expectCode(e.finish, 'ERR_ATT_PUF_HELPER_MISMATCH');
    // Lying about the helper hash does not help: the key is then wrong.
    const honest = await enroll(c, m, id, 'key-3', {
      tamper: (ch) => {
        const h = ch['helper'] as Obj;
        const salt = Buffer.from(String(h['salt']), 'base64url');
        salt[0]! ^= 1;
        h['salt'] = salt.toString('base64url');
      },
    });
    const forged = {
      ...honest.response,
      helperHash: (await enroll(c, m, id, 'key-3')).response['helperHash'],
    };
    await expectCode(
      () => m.finish(c.ctx, id, honest.begun.state, forged, honest.csr),
      'ERR_ATT_PUF_KEY_MISMATCH',
    );
  });

  it('refuses a signature bound to another CSR key (ERR_ATT_PUF_SIGNATURE)', async () => {
    const c = ca();
    const m = createPufMethod();
    const id = device('k4');
    await c.register(provisioned(id, 'key-4'));
    const e = await enroll(c, m, id, 'key-4');
    await expectCode(() => m.finish(c.ctx, id, e.begun.state, e.response, csrKey()), 'ERR_ATT_PUF_SIGNATURE');
    const sig = Buffer.from(String(e.response['signature']), 'base64url');
    sig[3]! ^= 1;
    await expectCode(
      () =>
        m.finish(c.ctx, id, e.begun.state, { ...e.response, signature: sig.toString('base64url') }, e.csr),
      'ERR_ATT_PUF_SIGNATURE',
    );
  });

  it('refuses a replayed nonce and a replayed signature (ERR_ATT_PUF_REPLAY)', async () => {
    const c = ca();
    const m = createPufMethod();
    const id = device('k5');
    await c.register(provisioned(id, 'key-5'));
    const first = await enroll(c, m, id, 'key-5');
    const v = await first.finish();
    await commit(c, v);
    // The same session again (nonce spent).
    await expectCode(first.finish, 'ERR_ATT_PUF_REPLAY');
    // A verdict obtained before the first commit cannot commit twice.
    const e2 = await enroll(c, m, id, 'key-5');
    const v2 = await e2.finish();
    const v2b = await e2.finish();
    await commit(c, v2);
    await expectCode(() => commit(c, v2b), 'ERR_ATT_PUF_REPLAY');
    // The spent signature presented in a fresh session.
    const e3 = await enroll(c, m, id, 'key-5');
    await expectCode(
      () => m.finish(c.ctx, id, e3.begun.state, first.response, first.csr),
      'ERR_ATT_PUF_REPLAY',
    );
  });

  it('refuses an expired nonce (ERR_ATT_PUF_NONCE_EXPIRED)', async () => {
    const c = ca();
    const m = createPufMethod({ nonceTtlMs: 60_000 });
    const id = device('k6');
    await c.register(provisioned(id, 'key-6'));
    const e = await enroll(c, m, id, 'key-6');
    c.clock.advance(60_001);
    await expectCode(e.finish, 'ERR_ATT_PUF_NONCE_EXPIRED');
  });

  it('refuses an identity never provisioned (ERR_ATT_PUF_NOT_PROVISIONED)', async () => {
    const c = ca();
    const m = createPufMethod();
    await expect(enroll(c, m, device('never'), 'whatever')).rejects.toMatchObject({
      code: 'ERR_ATT_PUF_NOT_PROVISIONED',
    });
  });

  it('refuses malformed evidence and responses, prototype poisoning included', async () => {
    const c = ca();
    const m = createPufMethod({ rateLimit: { freeFailures: 100 } });
    const id = device('k7');
    await c.register(provisioned(id, 'key-7'));
    for (const ev of [
      { mode: 'tpm' },
      { mode: 'key', extra: 1 },
      'key',
      [1],
      JSON.parse('{"__proto__":{"mode":"crp"}}') as unknown,
    ]) {
      await expectCode(() => m.begin(c.ctx, id, ev), 'ERR_ATT_PUF_EVIDENCE_MALFORMED');
    }
    const e = await enroll(c, m, id, 'key-7');
    const bad: unknown[] = [
      null,
      {},
      { ...e.response, mode: 'crp' },
      { ...e.response, signature: `${String(e.response['signature'])}A` },
      { ...e.response, publicKey: 'zz' },
      { ...e.response, extra: true },
      JSON.parse(`{"__proto__":{"x":1},${JSON.stringify(e.response).slice(1)}`) as unknown,
    ];
    for (const r of bad)
      await expectCode(() => m.finish(c.ctx, id, e.begun.state, r, e.csr), 'ERR_ATT_PUF_RESPONSE_MALFORMED');
  });

  it('rate-limits repeated failures per identity and address with backoff, and a success resets', async () => {
    const c = ca();
    const m = createPufMethod({ rateLimit: { freeFailures: 2, baseDelayMs: 10_000 } });
    const id = device('k8');
    await c.register(provisioned(id, 'key-8'));
    for (let i = 0; i < 3; i++) {
      const e = await enroll(c, m, id, 'key-8-impostor');
      await expectCode(e.finish, 'ERR_ATT_PUF_KEY_MISMATCH');
    }
    // Third failure: locked for 10 s, for begin and finish alike.
    await expectCode(() => m.begin(c.ctx, id, {}), 'ERR_ATT_PUF_RATE_LIMITED');
    c.clock.advance(10_001);
    const e4 = await enroll(c, m, id, 'key-8-impostor');
    await expectCode(e4.finish, 'ERR_ATT_PUF_KEY_MISMATCH');
    c.clock.advance(10_001);
    await expectCode(() => m.begin(c.ctx, id, {}), 'ERR_ATT_PUF_RATE_LIMITED'); // doubled to 20 s
    // Another identity is not affected.
    const other = device('k8-other');
    await c.register(provisioned(other, 'key-8-other'));
    await commit(c, await (await enroll(c, m, other, 'key-8-other')).finish());
    c.clock.advance(10_000);
    await commit(c, await (await enroll(c, m, id, 'key-8')).finish());
    expect(m.limiters.source.state(`${id.uri} ${c.ctx.source}`)).toBeUndefined();
  });

  // The "anonymous quarantine" attack: strangers failing with the device's name must not lock
  // the device out. Failures count per identity and address, under a larger cap per identity.
  it('failures from one address never lock the device out at another', async () => {
    const c = ca();
    const m = createPufMethod({ rateLimit: { freeFailures: 2, baseDelayMs: 10_000 } });
    const id = device('k9');
    await c.register(provisioned(id, 'key-9'));
    const stranger = { ...c.ctx, source: '198.51.100.7' };
    for (let i = 0; i < 3; i++) {
      const e = await enroll(c, m, id, 'key-9-impostor', { ctx: stranger });
      await expectCode(e.finish, 'ERR_ATT_PUF_KEY_MISMATCH');
    }
    await expectCode(() => m.begin(stranger, id, {}), 'ERR_ATT_PUF_RATE_LIMITED');
    await commit(c, await (await enroll(c, m, id, 'key-9')).finish());
  });

  it('caps failures per identity from all addresses together, and spares renewals', async () => {
    const c = ca();
    const m = createPufMethod({ identityRateLimit: { freeFailures: 4, baseDelayMs: 10_000 } });
    const id = device('k10');
    await c.register(provisioned(id, 'key-10'));
    for (let i = 0; i < 5; i++) {
      const e = await enroll(c, m, id, 'key-10-impostor', { ctx: { ...c.ctx, source: `198.51.100.${i}` } });
      await expectCode(e.finish, 'ERR_ATT_PUF_KEY_MISMATCH');
    }
    // Five addresses spent the identity's enrollment budget: an enrollment from anywhere waits.
    await expectCode(() => m.begin(c.ctx, id, {}), 'ERR_ATT_PUF_RATE_LIMITED');
    // A renewal proves the identity with its certificate first and has a budget of its own.
    const renewal = { ...c.ctx, renewal: true };
    await commit(c, await (await enroll(c, m, id, 'key-10', { ctx: renewal })).finish());
    c.clock.advance(10_001);
    await commit(c, await (await enroll(c, m, id, 'key-10')).finish());
  });
});

describe('puf attestation method, challenge-response mode', () => {
  it('accepts each pair once, then moves to the next, then runs out', async () => {
    const c = ca();
    const m = createPufMethod();
    const id = device('c1');
    await c.register(provisioned(id, 'crp-1', 2));
    const seen: number[] = [];
    for (let i = 0; i < 2; i++) {
      const e = await enroll(c, m, id, 'crp-1', { mode: 'crp' });
      const v = await e.finish();
      expect(v.facts).toMatchObject({ mode: 'crp', crpIndex: i });
      seen.push(Number(v.facts['crpIndex']));
      await commit(c, v);
    }
    expect(seen).toEqual([0, 1]);
    await expect(enroll(c, m, id, 'crp-1', { mode: 'crp' })).rejects.toMatchObject({
      code: 'ERR_ATT_PUF_CRP_EXHAUSTED',
    });
  });

  it('refuses a reused pair (ERR_ATT_PUF_CRP_REUSED)', async () => {
    const c = ca();
    const m = createPufMethod();
    const id = device('c2');
    await c.register(provisioned(id, 'crp-2', 3));
    const a = await enroll(c, m, id, 'crp-2', { mode: 'crp' });
    const b = await enroll(c, m, id, 'crp-2', { mode: 'crp' }); // same pair handed out before a commits
    await commit(c, await a.finish());
    await expectCode(b.finish, 'ERR_ATT_PUF_CRP_REUSED');
    const vb = await enroll(c, m, id, 'crp-2', { mode: 'crp' });
    const v1 = await vb.finish();
    const v2 = await vb.finish();
    await commit(c, v1);
    await expectCode(() => commit(c, v2), 'ERR_ATT_PUF_REPLAY');
  });

  it('accepts at the threshold and refuses one bit beyond it (ERR_ATT_PUF_CRP_MISMATCH)', async () => {
    const c = ca();
    const m = createPufMethod();
    const id = device('c3');
    await c.register(provisioned(id, 'crp-3', 2));
    const e = await enroll(c, m, id, 'crp-3', { mode: 'crp' });
    const expected = Buffer.from((e.begun.state as { crpExpected: string }).crpExpected, 'hex');
    const at = (d: number): Obj => {
      const r = Buffer.from(expected);
      for (let i = 0; i < d; i++) r[i >>> 3]! ^= 1 << (i & 7);
      return { mode: 'crp', response: r.toString('base64url') };
    };
    expect((await m.finish(c.ctx, id, e.begun.state, at(169), e.csr)).facts['distance']).toBe(169);
    await expectCode(() => m.finish(c.ctx, id, e.begun.state, at(170), e.csr), 'ERR_ATT_PUF_CRP_MISMATCH');
  });

  it("refuses another device's response (ERR_ATT_PUF_CRP_MISMATCH)", async () => {
    const c = ca();
    const m = createPufMethod();
    const id = device('c4');
    await c.register(provisioned(id, 'crp-4', 2));
    const e = await enroll(c, m, id, 'crp-4', { mode: 'crp', spec: 'sim:crp-4-impostor' });
    await expectCode(e.finish, 'ERR_ATT_PUF_CRP_MISMATCH');
  });

  it('refuses crp mode for a record without pairs (ERR_ATT_PUF_CRP_EXHAUSTED)', async () => {
    const c = ca();
    const m = createPufMethod();
    const id = device('c5');
    await c.register(provisioned(id, 'crp-5', 0));
    await expectCode(() => m.begin(c.ctx, id, { mode: 'crp' }), 'ERR_ATT_PUF_CRP_EXHAUSTED');
  });
});

describe('puf prover (device side)', () => {
  it('refuses a malformed or mismatched challenge (ERR_ATT_PUF_CHALLENGE_MALFORMED)', async () => {
    const c = ca();
    const m = createPufMethod();
    const id = device('p1');
    await c.register(provisioned(id, 'prov-1'));
    const prover = createPufProver({ puf: 'sim:prov-1', id: id.uri });
    const ch = (JSON.parse(JSON.stringify(await m.begin(c.ctx, id, {}))) as BeginResult).challenge as Obj;
    const bad: Obj[] = [
      {},
      { ...ch, mode: 'crp' },
      { ...ch, nonce: 'short' },
      { ...ch, profile: 'weak' },
      { ...ch, params: { ...(ch['params'] as Obj), repetition: 1 } },
      { ...ch, helper: { ...(ch['helper'] as Obj), mask: 'AA' } },
      { ...ch, extra: 1 },
    ];
    for (const b of bad) {
      await expect(prover.respond(b, csrKey()), JSON.stringify(Object.keys(b))).rejects.toMatchObject({
        code: 'ERR_ATT_PUF_CHALLENGE_MALFORMED',
      });
    }
  });
});
