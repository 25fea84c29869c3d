// Against a real mesh (CA, SIEM, an agent): two compromised nodes flood the SIEM with forged
// cloned-credential evidence (invented serials, each "seen" from two documentation addresses in
// connections they claim to have terminated) until each has spent its share of the reserved
// budget. A real clone then seen by an honest node must still be quarantined at once (applied,
// not pending) and the clone's victim connection cut: the reserve is per reporter, with no total
// that other reporters can fill (docs/rules.md, "Blast-radius budgets").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedIdentity } from '../../../common/identity-dir.js';
import { startMesh, type Mesh, type MeshAgent } from '../../helpers/mesh.js';
import { listing as listingOf, tlsThrough, waitFor, type Listing } from './shared.js';

let mesh: Mesh;
let n1: MeshAgent;

const listing = (): Promise<Listing> => listingOf(mesh);

/** Forged sightings: `count` invented serials, each from two documentation addresses. */
function forgedClones(forger: LoadedIdentity, prefix: string, count: number): Record<string, unknown>[] {
  const t0 = Date.now() - 10_000;
  return Array.from({ length: count * 2 }, (_, i) => ({
    '@timestamp': t0 + i,
    'event.action': 'connection.accepted',
    'network.direction': 'inbound',
    'destination.identity': forger.identity,
    'tls.client.x509.serial_number': `${prefix}${(i >> 1).toString(16).padStart(4, '0')}`,
    'source.ip': `198.51.100.${1 + (i % 2)}`,
  }));
}

beforeAll(async () => {
  mesh = await startMesh({ agents: [{ name: 'n1' }] });
  [n1] = mesh.agents as [MeshAgent];
}, 120_000);
afterAll(async () => mesh?.stop());

describe('the cloned-credential reserve is per reporter (issue 19, attack 7)', () => {
  it('two compromised nodes flooding forged clones cannot starve a cloned-credential detection from an honest node', async () => {
    const d1 = await mesh.enroll('device/d1');
    const d2 = await mesh.enroll('device/d2');
    const a = await mesh.enroll('node/forger-a');
    const b = await mesh.enroll('node/forger-b');
    const live = await tlsThrough(n1, d1, '127.0.0.1');
    let cut = false;
    live.on('close', () => (cut = true));
    live.on('error', () => undefined);
    const keepAlive = setInterval(() => live.writable && live.write('ping'), 200);
    try {
      // 30 forged clones each: three times a reporter's reserved share (10 a minute), and together
      // more than the shared reserve of 20 a minute there was before.
      expect((await mesh.report(a, forgedClones(a, 'aa', 30))).status).toBe(200);
      expect((await mesh.report(b, forgedClones(b, 'bb', 30))).status).toBe(200);
      const forged = (l: Listing, kind: 'active' | 'pending') =>
        l[kind].filter((d) => d.scope.type === 'serial' && /^(aa|bb)/.test(d.scope.value));
      const spent = await waitFor(
        'both forgers to spend their shares',
        async () => {
          const l = await listing();
          return forged(l, 'active').length + forged(l, 'pending').length >= 60 ? l : undefined;
        },
        30_000,
      );
      // Each forger's evidence quarantined its share, 10 certificates; the rest wait for an analyst.
      expect(forged(spent, 'active')).toHaveLength(20);
      expect(forged(spent, 'pending')).toHaveLength(40);

      // The real attack: d1's credential used at the same time from a second address, on n1.
      const clone = await tlsThrough(n1, d1, '127.0.0.2').catch(() => undefined);
      const decided = await waitFor(
        'the cloned-credential decision',
        async () => {
          const l = await listing();
          return l.active.find((d) => d.scope.type === 'serial' && d.scope.value === d1.serial);
        },
        30_000,
      );
      expect(decided.scope).toEqual({ type: 'serial', value: d1.serial });
      expect((await listing()).pending.map((p) => p.scope)).not.toContainEqual({
        type: 'serial',
        value: d1.serial,
      });
      await waitFor('the live connection of the cloned credential to be cut', async () => cut, 30_000);
      clone?.destroy();
      // The clone cannot connect again; another device still does.
      await expect(tlsThrough(n1, d1, '127.0.0.1')).rejects.toThrow();
      const other = await tlsThrough(n1, d2, '127.0.0.1');
      other.destroy();
    } finally {
      clearInterval(keepAlive);
      live.destroy();
    }
  });
});
