// Identity loading and rotation: renewal at 2/3 of the lifetime, re-enrollment of an expired or
// missing identity, and a half-written renewal never replacing a good identity.
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeClock, systemClock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import { loadIdentityMaterial, Rotation } from '../../agent/rotation.js';
import { node, world, type World } from './fixtures/harness.js';

let w: World;
beforeAll(async () => {
  w = await world('rot');
});
afterAll(async () => {
  await w.cleanup();
});

describe('rotation', () => {
  it('renews at 2/3 of the lifetime', async () => {
    const m = await loadIdentityMaterial(w.self.dir, w.self.id);
    const r = new Rotation({
      dir: w.self.dir,
      id: w.self.id,
      clock: fakeClock(),
      log: silentLogger,
      renew: async () => undefined,
      enroll: async () => undefined,
      onSwap: () => undefined,
    });
    expect(r.dueAt(m)).toBe(m.notBefore + Math.floor(((m.notAfter - m.notBefore) * 2) / 3));
  });

  it('an expired certificate is re-enrolled at start', async () => {
    const id = node('expired-self');
    const old = await w.pki.issue(id, {
      name: 'expired-self',
      notBefore: new Date(Date.now() - 7200_000),
      notAfter: new Date(Date.now() - 60_000),
    });
    const calls: string[] = [];
    const swaps: string[] = [];
    const r = new Rotation({
      dir: old.dir,
      id,
      clock: systemClock,
      log: silentLogger,
      renew: async () => {
        calls.push('renew');
      },
      enroll: async (dir) => {
        calls.push('enroll');
        await w.pki.issue(id, { name: basename(dir) });
      },
      onSwap: (_m, why) => swaps.push(why),
    });
    const m = await r.start();
    r.stop();
    expect(calls).toEqual(['enroll']);
    expect(m.serial).not.toBe(old.serial);
    expect(m.notAfter).toBeGreaterThan(Date.now());
  });

  it('an empty identity folder enrolls first', async () => {
    const id = node('fresh');
    const dir = join(w.pki.dir, 'fresh');
    await mkdir(dir, { recursive: true });
    const r = new Rotation({
      dir,
      id,
      clock: systemClock,
      log: silentLogger,
      renew: async () => undefined,
      enroll: async () => {
        await w.pki.issue(id, { name: 'fresh' });
      },
      onSwap: () => undefined,
    });
    expect((await r.start()).id).toBe(id);
    r.stop();
  });

  it('a failed or half-written renewal keeps the current identity and reports the failure', async () => {
    const id = node('half');
    const leaf = await w.pki.issue(id, { name: 'half' });
    const failures: string[] = [];
    const r = new Rotation({
      dir: leaf.dir,
      id,
      clock: systemClock,
      log: silentLogger,
      renew: async (dir) => {
        const other = await w.pki.issue(node('someone'), { name: 'someone' });
        await writeFile(join(dir, 'key.pem'), other.keyPem); // key no longer matches cert.pem
      },
      enroll: async () => undefined,
      onSwap: () => undefined,
      onFailure: (err) => failures.push((err as { code: string }).code),
    });
    await r.start();
    await r.rotateNow();
    r.stop();
    expect(failures).toEqual(['ERR_AGENT_IDENTITY_FILES']);
    expect(r.current.serial).toBe(leaf.serial);
  });

  it('refuses an identity folder for another identity', async () => {
    await expect(loadIdentityMaterial(w.self.dir, node('not-me'))).rejects.toMatchObject({
      code: 'ERR_AGENT_IDENTITY_FILES',
    });
    await expect(loadIdentityMaterial(join(w.pki.dir, 'nowhere'), node('x'))).rejects.toMatchObject({
      code: 'ERR_AGENT_IDENTITY_FILES',
    });
  });
});
