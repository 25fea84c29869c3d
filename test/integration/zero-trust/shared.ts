// What the budget suites against a real mesh share: a device's TLS connection through an agent's
// inbound listener (accepted once the echo comes back), a wait for a value, and the decision list.
import { connect as netConnect } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import type { LoadedIdentity } from '../../../common/identity-dir.js';
import type { Mesh, MeshAgent } from '../../helpers/mesh.js';

export function tlsThrough(agent: MeshAgent, who: LoadedIdentity, localAddress: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({
      socket: netConnect({ host: '127.0.0.1', port: agent.inboundPort, localAddress }),
      key: who.keyPem,
      cert: who.certPem,
      ca: who.bundlePem,
      minVersion: 'TLSv1.3',
      checkServerIdentity: () => undefined,
    });
    s.once('secureConnect', () => s.write('ping'));
    s.once('data', () => resolve(s));
    s.once('error', reject);
    s.once('close', () => reject(new Error('closed before the echo')));
  });
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  ms = 20_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Listing {
  active: { scope: { type: string; value: string } }[];
  pending: { scope: { type: string; value: string } }[];
}

export const listing = async (mesh: Mesh): Promise<Listing> => (await mesh.decisions()) as unknown as Listing;
