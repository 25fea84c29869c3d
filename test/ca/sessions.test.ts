// Enrollment sessions are sealed tokens (ca/sessions.ts): nothing stored per begin, any CA
// process opens them, the client can neither read nor alter them, and each serves one finish.
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createAuthority } from '../../ca/authority.js';
import { createTokenMethod, newJoinToken } from '../../attestation/index.js';
import { CaService } from '../../ca/service.js';
import { MAX_SESSION_CHARS, openSealedSession, sealSession } from '../../ca/sessions.js';
import { openCaStore } from '../../ca/store-sqlite.js';
import { fakeClock } from '../../common/clock.js';
import { buildCsr } from '../../common/csr.js';
import { silentLogger } from '../../common/log.js';
import { toPem } from '../../common/pem.js';
import { tempDir } from '../helpers/tmp.js';

const TD = 'factory.example';
const IP = '192.0.2.1';

function setup() {
  const clock = fakeClock(Date.now());
  const dir = join(tempDir('edgeward-sessions-'), 'ca');
  const { authority } = createAuthority(dir, TD, clock.now(), undefined);
  const store = openCaStore(join(dir, 'sessions.db'));
  const make = () =>
    new CaService(store, authority, {
      clock,
      log: silentLogger,
      methods: [createTokenMethod((h) => store.getToken(h))],
      sessionTtlMs: 60_000,
    });
  const token = async (id: string): Promise<string> => {
    const t = newJoinToken();
    await store.createToken(
      { hash: t.hash, identity: id, createdAt: clock.now(), expiresAt: clock.now() + 600_000 },
      clock.now(),
    );
    return t.token;
  };
  return { clock, store, authority, svc: make(), other: make(), token };
}

function csr(id: string): string {
  const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return toPem('CERTIFICATE REQUEST', buildCsr(k.privateKey, k.publicKey, id));
}

const idOf = (n: string) => `spiffe://${TD}/node/${n}`;

describe('sealed enrollment sessions', () => {
  it('are finished by another CA process (same CA key) and serve exactly one finish', async () => {
    const { svc, other, token } = setup();
    const id = idOf('a');
    const b = await svc.begin(IP, { id, method: 'token' });
    expect(b.session.length).toBeLessThanOrEqual(MAX_SESSION_CHARS);
    const t = await token(id);
    const r = await other.finish(IP, { session: b.session, csr: csr(id), response: { token: t } });
    expect(r.identity).toBe(id);
    await expect(
      svc.finish(IP, { session: b.session, csr: csr(id), response: { token: await token(id) } }),
    ).rejects.toMatchObject({
      code: 'ERR_CA_SESSION_UNKNOWN',
    });
  });

  it('are used up by a refused finish too', async () => {
    const { svc, token } = setup();
    const id = idOf('b');
    const b = await svc.begin(IP, { id, method: 'token' });
    await expect(
      svc.finish(IP, { session: b.session, csr: 'not a csr', response: { token: await token(id) } }),
    ).rejects.toMatchObject({
      code: 'ERR_CA_CSR_MALFORMED',
    });
    await expect(
      svc.finish(IP, { session: b.session, csr: csr(id), response: { token: await token(id) } }),
    ).rejects.toMatchObject({
      code: 'ERR_CA_SESSION_UNKNOWN',
    });
  });

  it('issue once when two finishes race with the same session', async () => {
    const { svc, other, token, store } = setup();
    const id = idOf('c');
    const b = await svc.begin(IP, { id, method: 'token' });
    const t1 = await token(id);
    const t2 = await token(id);
    const results = await Promise.allSettled([
      svc.finish(IP, { session: b.session, csr: csr(id), response: { token: t1 } }),
      other.finish(IP, { session: b.session, csr: csr(id), response: { token: t2 } }),
    ]);
    expect(results.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
    expect(await store.certificatesOf(id)).toHaveLength(1);
  });

  it('expire, and refuse anything altered, foreign or malformed', async () => {
    const { svc, clock, token } = setup();
    const id = idOf('d');
    const finish = async (session: unknown) =>
      svc.finish(IP, { session, csr: csr(id), response: { token: await token(id) } });
    const b = await svc.begin(IP, { id, method: 'token' });
    // One flipped character anywhere in the sealed part.
    const mid = 5 + Math.floor((b.session.length - 5) / 2);
    const flipped = b.session.slice(0, mid) + (b.session[mid] === 'A' ? 'B' : 'A') + b.session.slice(mid + 1);
    const foreign = sealSession(Buffer.alloc(32, 7), {
      identity: id,
      method: 'token',
      state: null,
      expiresAt: clock.now() + 60_000,
      renewalOf: null,
    }).token;
    for (const bad of [
      flipped,
      foreign,
      'ews1.',
      'ews1.' + 'A'.repeat(40),
      'x'.repeat(24),
      42,
      null,
      'ews1.' + 'A'.repeat(MAX_SESSION_CHARS),
    ])
      await expect(finish(bad)).rejects.toMatchObject({ code: 'ERR_CA_SESSION_UNKNOWN' });
    clock.advance(60_001);
    await expect(finish(b.session)).rejects.toMatchObject({ code: 'ERR_CA_SESSION_UNKNOWN' });
  });

  it('keep the method state from the client', async () => {
    const { authority } = setup();
    const key = authority.deriveKey('enrollment sessions v1');
    const { token } = sealSession(key, {
      identity: idOf('e'),
      method: 'tpm',
      state: { secret: 'c2VjcmV0LWFjdGl2YXRpb24tdmFsdWU' },
      expiresAt: 1,
      renewalOf: null,
    });
    expect(Buffer.from(token.slice(5), 'base64url').toString('latin1')).not.toContain('c2VjcmV0');
    expect(openSealedSession(key, token).state).toEqual({ secret: 'c2VjcmV0LWFjdGl2YXRpb24tdmFsdWU' });
    // Another CA (another intermediate key) cannot open it.
    const { authority: second } = setup();
    expect(() => openSealedSession(second.deriveKey('enrollment sessions v1'), token)).toThrow(
      expect.objectContaining({ code: 'ERR_CA_SESSION_UNKNOWN' }),
    );
  });
});
