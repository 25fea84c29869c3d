// The cap on open enrollment sessions (a flood of begins that never finish): refused with
// ERR_CA_UNAVAILABLE at the cap, admitted again once sessions finish or expire.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createAuthority } from '../../ca/authority.js';
import { createTokenMethod } from '../../ca/methods/token.js';
import { CaService } from '../../ca/service.js';
import { openCaStore } from '../../ca/store-sqlite.js';
import { fakeClock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import { tempDir } from '../helpers/tmp.js';

const TD = 'factory.example';

function service(maxSessions: number) {
  const clock = fakeClock(Date.now());
  const dir = join(tempDir('edgeward-sessions-'), 'ca');
  const { authority } = createAuthority(dir, TD, clock.now(), undefined);
  const store = openCaStore(join(dir, 'sessions.db'));
  const svc = new CaService(store, authority, {
    clock,
    log: silentLogger,
    methods: [createTokenMethod((h) => store.getToken(h))],
    maxSessions,
    sessionTtlMs: 60_000,
  });
  const begin = (n: number) => svc.begin('192.0.2.1', { id: `spiffe://${TD}/node/n${n}`, method: 'token' });
  return { clock, store, svc, begin };
}

describe('open enrollment sessions', () => {
  it('refuses begins beyond the cap and admits them again after sessions expire', async () => {
    const { clock, store, begin } = service(3);
    for (let i = 0; i < 3; i++) await begin(i);
    await expect(begin(3)).rejects.toMatchObject({ code: 'ERR_CA_UNAVAILABLE' });
    // Still refused a moment later: the count is taken again, not guessed.
    clock.advance(1500);
    await expect(begin(4)).rejects.toMatchObject({ code: 'ERR_CA_UNAVAILABLE' });
    expect(store.sessionCount(clock.now())).toBe(3);
    clock.advance(60_000);
    await begin(5);
    expect(store.sessionCount(clock.now())).toBe(1);
    store.close();
  });

  it('admits a begin once another session is taken by its finish', async () => {
    const { store, svc, begin } = service(2);
    const first = await begin(0);
    await begin(1);
    await expect(begin(2)).rejects.toMatchObject({ code: 'ERR_CA_UNAVAILABLE' });
    // A finish takes its session first, whatever it then decides (this CSR is no CSR).
    await expect(svc.finish('192.0.2.1', { session: first.session, csr: 'x' })).rejects.toBeDefined();
    await begin(3);
    store.close();
  });
});
