// Against a real mesh (CA, SIEM, two agents): a compromised node floods the
// SIEM with forged handshake failures from documentation addresses until the automatic-decision
// budget is spent; a real cloned credential, seen by the two agents, must still be quarantined at
// once and the clone's victim connection cut, because budgets are per reporter (and the
// cloned-credential rule has a reserved one).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMesh, type Mesh, type MeshAgent } from '../../helpers/mesh.js';
import { listing as listingOf, tlsThrough, waitFor, type Listing } from './shared.js';

let mesh: Mesh;
let n1: MeshAgent;
let n2: MeshAgent;

const listing = (): Promise<Listing> => listingOf(mesh);

beforeAll(async () => {
  mesh = await startMesh({ agents: [{ name: 'n1' }, { name: 'n2' }] });
  [n1, n2] = mesh.agents as [MeshAgent, MeshAgent];
}, 120_000);
afterAll(async () => mesh?.stop());

describe('budgets per reporter (issue 19, attack 7)', () => {
  it('forged floods exhaust the automatic-decision budget', async () => {
    const d1 = await mesh.enroll('device/d1');
    const d2 = await mesh.enroll('device/d2');
    const forger = await mesh.enroll('node/forger');
    const live = await tlsThrough(n1, d1, '127.0.0.1');
    let cut = false;
    live.on('close', () => (cut = true));
    live.on('error', () => undefined);
    const keepAlive = setInterval(() => live.writable && live.write('ping'), 200);
    try {
      // 25 documentation addresses, 20 failures each: more than one reporter's whole budget.
      const t0 = Date.now() - 20_000;
      const flood = Array.from({ length: 25 * 20 }, (_, i) => ({
        '@timestamp': t0 + i * 10,
        'event.action': 'handshake.failure',
        'event.reason': 'unknown_ca',
        'source.ip': `192.0.2.${1 + (i % 25)}`,
      }));
      const r = await mesh.report(forger, flood);
      expect(r.status).toBe(200);
      const spent = await waitFor('the flood to spend the forger’s budget', async () => {
        const l = await listing();
        return l.active.filter((d) => d.scope.type === 'ip').length + l.pending.length >= 25 ? l : undefined;
      });
      // The forger's evidence raised 20 automatic decisions at most; the rest wait for an analyst.
      expect(spent.active.filter((d) => d.scope.type === 'ip')).toHaveLength(20);
      expect(spent.pending).toHaveLength(5);

      // The real attack: d1's credential used at the same time from a second address, on n2.
      const clone = await tlsThrough(n2, d1, '127.0.0.2').catch(() => undefined);
      const decided = await waitFor('the cloned-credential decision', async () => {
        const l = await listing();
        return l.active.find((d) => d.scope.type === 'serial' && d.scope.value === d1.serial);
      });
      expect(decided.scope).toEqual({ type: 'serial', value: d1.serial });
      expect((await listing()).pending.map((p) => p.scope)).not.toContainEqual({
        type: 'serial',
        value: d1.serial,
      });
      await waitFor('the live connection of the cloned credential to be cut', async () => cut);
      clone?.destroy();
      // Another device still connects.
      const other = await tlsThrough(n1, d2, '127.0.0.1');
      other.destroy();
    } finally {
      clearInterval(keepAlive);
      live.destroy();
    }
  });
});
