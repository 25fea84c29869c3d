// The attack: SQLite stores created 0644, readable by every local user. A whole mesh of real processes (ca init,
// ca serve, siem serve with its dashboard, an agent, enroll, ca token --out) started under umask
// 000 and 022; while they run, every folder they made is 0700 and every file but certificates 0600.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startMesh, waitUntil } from '../helpers/mesh.js';

/** Certificates and trust bundles are public; everything else a part writes is private. */
const PUBLIC = /(^|\/)(cert|bundle|root|intermediate)\.pem$/;

function modes(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir)) {
      const p = join(dir, e);
      const st = statSync(p);
      out[relative(root, p)] = (st.mode & 0o777).toString(8);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

describe('stores, keys and data folders are private whatever the umask', () => {
  for (const umask of [0o000, 0o022]) {
    it(`under umask ${umask.toString(8).padStart(3, '0')}`, async () => {
      const mesh = await startMesh({
        umask,
        agents: [{ name: 'n1' }],
        siemArgs: ['--dashboard', '127.0.0.1:0'],
      });
      try {
        await mesh.enroll('device/d1');
        const agent = mesh.agents[0];
        if (agent === undefined) throw new Error('no agent');
        // The agent has stored a decision snapshot and a CRL, the CA the SIEM's decisions.
        await waitUntil('the agent state', async () => {
          const files = readdirSync(join(agent.dir, 'agent-state'));
          return (
            files.includes('decisions.json') &&
            files.includes('crl.der') &&
            readdirSync(mesh.caDir).includes('siem-decisions.json')
          );
        });
        const all = modes(mesh.dir);
        const wrong = Object.entries(all).filter(([p, m]) => {
          const isDir = statSync(join(mesh.dir, p)).isDirectory();
          if (isDir) return m !== '700';
          if (PUBLIC.test(p)) return (Number.parseInt(m, 8) & 0o022) !== 0;
          return m !== '600';
        });
        expect(wrong).toEqual([]);
        // What must be there, so that the check above covered it.
        for (const p of [
          'ca/ca.db',
          'ca/ca.db-wal',
          'ca/ca.db-shm',
          'ca/root.key',
          'ca/intermediate.key',
          'ca/admin/key.pem',
          'ca/events-spool.sqlite',
          'siem/siem.db',
          'siem/siem.db-wal',
          'siem/siem.state.db',
          'siem/siem.state.db-wal',
          'siem/dashboard.db',
          'siem/identity/key.pem',
          'n1/key.pem',
          'n1/agent-state/decisions.json',
          'n1/agent-state/crl.der',
          'ca/siem-decisions.json',
          'n1/agent-state/spool.sqlite',
          'ids/device_d1/key.pem',
        ])
          expect(all[p], p).toBe('600');
        for (const p of ['ca', 'ca/admin', 'siem', 'siem/identity', 'n1', 'n1/agent-state', 'ids/device_d1'])
          expect(all[p], p).toBe('700');
      } finally {
        await mesh.stop();
      }
    });
  }
});
