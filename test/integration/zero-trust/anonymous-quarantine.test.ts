// The "anonymous quarantine" attack: three enrollments with made-up join tokens for node/n1, from
// one address and with no credential, trying to get n1 quarantined, drain n1's renewal budget and
// (with failed PUF answers) lock a PUF device out. A refused enrollment proved nothing: it must be evidence
// about its source address only, and spend no budget of the identity it named.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCsr } from '../../../common/csr.js';
import { toPem } from '../../../common/pem.js';
import { startMesh, waitUntil, type Mesh, type MeshIdentity } from '../../helpers/mesh.js';

const STRANGER = '127.0.0.2';
let mesh: Mesh;
let pufDevice: MeshIdentity;

beforeAll(async () => {
  // A small renewal budget per identity, so that spending it would show.
  mesh = await startMesh({ agents: [{ name: 'n1' }], caArgs: ['--rate-identity', '3'] });
  pufDevice = await mesh.enrollPuf('device/p1', 'anon-p1');
});
afterAll(async () => mesh?.stop());

function csrFor(id: string): string {
  const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return toPem('CERTIFICATE REQUEST', buildCsr(k.privateKey, k.publicKey, id));
}

/** One stranger's begin + finish for `id`, from STRANGER, with no credential: the refusal code. */
async function forgedEnrollment(
  id: string,
  method: 'token' | 'puf',
  response: Record<string, unknown>,
): Promise<unknown> {
  const begun = await mesh.call(`${mesh.caUrl}/v1/enroll/begin`, undefined, {
    body: { id, method, ...(method === 'puf' ? { evidence: { mode: 'key' } } : {}) },
    localAddress: STRANGER,
  });
  if (begun.status !== 200) return begun.json?.['code'];
  const done = await mesh.call(`${mesh.caUrl}/v1/enroll/finish`, undefined, {
    body: { session: begun.json?.['session'], csr: csrFor(id), response },
    localAddress: STRANGER,
  });
  return done.json?.['code'];
}

describe('anonymous quarantine', () => {
  it('three forged enrollments naming n1 are evidence about their address, not about n1', async () => {
    const n1 = `spiffe://${mesh.trustDomain}/node/n1`;
    for (let i = 0; i < 3; i++) {
      const token = `ewt_${randomBytes(32).toString('base64url')}`;
      expect(await forgedEnrollment(n1, 'token', { token })).toBe('ERR_CA_TOKEN_INVALID');
    }
    // The SIEM quarantines the stranger's address...
    let active: Awaited<ReturnType<Mesh['decisions']>>['active'] = [];
    await waitUntil('a decision about the stranger’s address', async () => {
      active = (await mesh.decisions()).active;
      return active.some((d) => d.scope.type === 'ip' && d.scope.value === STRANGER);
    });
    // ...and decides nothing about the identity it named.
    expect(active.filter((d) => d.scope.type !== 'ip')).toEqual([]);
    // n1's own renewal budget is untouched (3 a minute here), and n1 still admits a device.
    const agent = mesh.agents[0];
    if (agent === undefined) throw new Error('no agent');
    const renewed = mesh.cli(['renew', '--ca', mesh.caUrl, '--dir', agent.dir]);
    expect(renewed.status, `${renewed.stdout}${renewed.stderr}`).toBe(0);
    expect(renewed.stdout).toMatch(/renewed: serial [0-9a-f]+/);
    const device = await mesh.enroll('device/d1');
    (await mesh.connect(agent, device)).destroy();
  });

  it('a stranger failing PUF answers for a device does not lock the device out', async () => {
    const wrongAnswer = {
      mode: 'key',
      publicKey: randomBytes(32).toString('hex'),
      helperHash: randomBytes(32).toString('base64url'),
      signature: randomBytes(64).toString('base64url'),
    };
    // Seven failures, waiting out the backoff of its own address in between (1 s, 2 s, 4 s).
    let failures = 0;
    while (failures < 7) {
      const code = await forgedEnrollment(pufDevice.identity, 'puf', wrongAnswer);
      if (code === 'ERR_ATT_PUF_HELPER_MISMATCH') failures++;
      else {
        expect(code).toBe('ERR_ATT_PUF_RATE_LIMITED');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    // The real device, from its own address, right away.
    const again = mesh.cli(['enroll', '--ca', mesh.caUrl, '--fingerprint', mesh.fingerprint, '--id',
      pufDevice.identity, '--attest', 'puf', '--puf', 'sim:anon-p1', '--out', `${pufDevice.dir}-again`]); // prettier-ignore
    expect(again.status, `${again.stdout}${again.stderr}`).toBe(0);
    expect(again.stdout).toMatch(/issued spiffe:\/\/factory\.example\/device\/p1 serial/);
  });
});
