// The attack "a quarantined clone escapes by renewing": after ew-cloned-credential quarantined a
// serial, POST /v1/renew with that certificate asks for a fresh one. The quarantined certificate
// cannot renew, its identity is held (no renewal, no enrollment) until an analyst releases it, and the
// legitimate PUF device then renews by re-attesting, which the clone cannot.
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { FILES, openCaStore } from '../../../ca/index.js';
import { buildCsr } from '../../../common/csr.js';
import { loadIdentity } from '../../../common/identity-dir.js';
import { toPem } from '../../../common/pem.js';
import { startMesh, waitUntil, type Mesh, type MeshIdentity } from '../../helpers/mesh.js';

const CLONE_HOST = '127.0.0.2';
let mesh: Mesh;
let d1: MeshIdentity;

beforeAll(async () => {
  mesh = await startMesh({ agents: [{ name: 'n1' }, { name: 'n2' }] });
  d1 = await mesh.enrollPuf('device/d1', 'clone-d1');
});
afterAll(async () => mesh?.stop());

function agent(i: number): Mesh['agents'][number] {
  const a = mesh.agents[i];
  if (a === undefined) throw new Error(`no agent ${i}`);
  return a;
}

/** POST /v1/renew with d1's certificate (what the clone holds too), from `from`. */
async function renewWithCertificate(
  from: string,
): Promise<{ status: number; code: unknown; message: unknown }> {
  const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const csr = toPem('CERTIFICATE REQUEST', buildCsr(k.privateKey, k.publicKey, d1.identity));
  const r = await mesh.call(`${mesh.caUrl}/v1/renew`, d1, { body: { csr }, localAddress: from });
  return { status: r.status, code: r.json?.['code'], message: r.json?.['message'] };
}

/** `edgeward renew` as the legitimate device does it: re-attesting with its PUF. */
function renewWithPuf(): ReturnType<Mesh['cli']> {
  return mesh.cli(['renew', '--ca', mesh.caUrl, '--dir', d1.dir, '--attest', 'puf', '--puf', 'sim:clone-d1']);
}

describe('a quarantined clone escapes by renewing', () => {
  let decision: { id: string; revision: number };

  it('the cloned serial is quarantined, and its renewal is refused with a code', async () => {
    const live = await mesh.connect(agent(0), d1);
    // The clone: the same key and certificate, from a second address.
    (await mesh.connect(agent(1), d1, CLONE_HOST).catch(() => undefined))?.destroy();
    await waitUntil('the cloned-credential decision', async () => {
      const d = await mesh.decisions();
      const hit = d.active.find((x) => x.scope.type === 'serial' && x.scope.value === d1.serial);
      if (hit) decision = { id: hit.id, revision: d.revision };
      return hit !== undefined;
    });
    live.destroy();
    await waitUntil(
      'the CA follows the decision',
      async () => (await mesh.caRevision()) >= decision.revision,
    );

    const fromClone = await renewWithCertificate(CLONE_HOST);
    expect(fromClone).toMatchObject({ status: 403, code: 'ERR_CA_CERT_QUARANTINED' });
    expect(String(fromClone.message)).toMatch(
      /quarantined by the SIEM until \d{4}-\d\d-\d\dT.*; an analyst can lift it/,
    );
    // The legitimate device, with its PUF, is refused as well: both hold the same certificate.
    const r = renewWithPuf();
    expect(r.status).toBe(1);
    expect(`${r.stdout}${r.stderr}`).toMatch(/ERR_CA_CERT_QUARANTINED/);
  });

  it('the identity is held: not even a good PUF enrollment gets a new certificate', async () => {
    const r = mesh.cli(['enroll', '--ca', mesh.caUrl, '--fingerprint', mesh.fingerprint, '--id', d1.identity,
      '--attest', 'puf', '--puf', 'sim:clone-d1', '--out', `${d1.dir}-fresh`]); // prettier-ignore
    expect(r.status).toBe(1);
    expect(`${r.stdout}${r.stderr}`).toMatch(/ERR_CA_IDENTITY_HELD .*until an analyst releases it/);
  });

  it('after the analyst’s release the device renews by re-attesting and connects; the clone cannot', async () => {
    const lift = await mesh.call(`${mesh.siemUrl}/v1/decisions/${decision.id}/lift`, mesh.admin, {
      method: 'POST',
      body: {},
    });
    expect(lift.status, lift.body.toString()).toBe(200);
    const revision = (await mesh.decisions()).revision;
    await waitUntil('the CA follows the lift', async () => (await mesh.caRevision()) >= revision);
    // Without the PUF (all the clone has), the certificate alone does not renew.
    const clone = await renewWithCertificate(CLONE_HOST);
    expect(clone).toMatchObject({ status: 409, code: 'ERR_CA_REATTEST_REQUIRED' });
    const r = renewWithPuf();
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/the CA asks for fresh puf evidence/);
    // The hold and its release are in the CA's audit log, with who released it.
    const store = openCaStore(join(mesh.caDir, FILES.db), { readonly: true });
    try {
      const kinds: { kind: string; data: string }[] = [];
      for await (const a of store.auditRecords()) if (a.kind.startsWith('hold.')) kinds.push(a);
      expect(kinds.map((a) => [a.kind, (JSON.parse(a.data) as { by?: string }).by])).toEqual([
        ['hold.place', undefined],
        ['hold.release', `siem (decision ${decision.id} lifted)`],
      ]);
    } finally {
      await store.close();
    }
    expect(mesh.cli(['ca', 'audit', 'verify', '--data', mesh.caDir]).stdout).toMatch(/audit chain OK/);
    const next = loadIdentity(d1.dir);
    expect(next.serial).not.toBe(d1.serial);
    (await mesh.connect(agent(0), next)).destroy();
  });
});
