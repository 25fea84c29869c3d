// The SIEM's CRL watch against real TLS servers (certificates of a test mesh PKI): a CRL is taken
// only from a server proven to be spiffe://TD/svc/ca and only with the intermediate's signature;
// an older CRL never replaces a newer one; past nextUpdate the watch says `stale` and what it
// knows stays revoked, as it does when the CA stops answering. Each attack tries to un-revoke a
// serial the real CRL lists.
import { createServer, type Server } from 'node:https';
import { statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadIdentity, type LoadedIdentity } from '../../../common/identity-dir.js';
import { silentLogger } from '../../../common/log.js';
import { CrlWatch } from '../../../siem/service/crl-watch.js';
import { RevokedSerials } from '../../../siem/service/reporters.js';
import { createTestPki, type Leaf, type TestPki } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';

const TD = 'factory.example';
const HOUR = 3_600_000;

let pki: TestPki;
let siem: LoadedIdentity;
let caLeaf: Leaf;
let impostors: Leaf[];
/** The serial the real CRL revokes, which every attack tries to get forgotten. */
let revokedSerial: string;

/** An HTTPS server answering GET /v1/crl with `crl` (or a status), as whoever `as` is. */
interface CrlServer {
  readonly url: string;
  crl: Buffer | number;
  present(as: Leaf): void;
  close(): Promise<void>;
}

async function crlServer(as: Leaf, crl: Buffer): Promise<CrlServer> {
  const server: Server = createServer(
    { key: as.keyPem, cert: as.certPem, minVersion: 'TLSv1.3' },
    (req, res) => {
      // Every poll a new TLS handshake, so that it meets the certificate presented now.
      res.setHeader('connection', 'close');
      const body = s.crl;
      if (req.url !== '/v1/crl') return void res.writeHead(404).end();
      if (typeof body === 'number') return void res.writeHead(body).end();
      res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(body);
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const s: CrlServer = {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    crl,
    present(leaf) {
      server.setSecureContext({ key: leaf.keyPem, cert: leaf.certPem, minVersion: 'TLSv1.3' });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return s;
}

/** A watch of `url` for the SIEM's identity, its revoked serials, and its clock. */
function watchOf(
  url: string,
  file?: string,
): { watch: CrlWatch; revoked: RevokedSerials; clock: { t: number } } {
  const revoked = new RevokedSerials();
  const clock = { t: Date.now() };
  const watch = new CrlWatch({
    caUrl: url,
    identity: () => siem,
    intervalMs: 60_000,
    log: silentLogger,
    onCrl: (serials, thisUpdate) => revoked.applyCrl(serials, thisUpdate),
    now: () => clock.t,
    ...(file !== undefined ? { file } : {}),
  });
  return { watch, revoked, clock };
}

beforeAll(async () => {
  pki = await createTestPki(TD);
  siem = loadIdentity((await pki.issue(`spiffe://${TD}/svc/siem`)).dir);
  caLeaf = await pki.issue(`spiffe://${TD}/svc/ca`);
  impostors = await Promise.all(
    [`spiffe://${TD}/node/n1`, `spiffe://${TD}/svc/siem`, `spiffe://other.example/svc/ca`].map((id, i) =>
      pki.issue(id, { name: `impostor-${i}` }),
    ),
  );
  revokedSerial = (await pki.issue(`spiffe://${TD}/device/stolen`)).serial;
});
afterAll(async () => pki?.cleanup());

/** The real CA's CRL (revoking the stolen device), then `later` from the same server: refused. */
async function attack(
  later: (s: CrlServer) => Promise<void> | void,
): Promise<ReturnType<typeof watchOf> & { applied: boolean }> {
  const real = await pki.crl([revokedSerial], { thisUpdate: new Date(Date.now() - 60_000) });
  const s = await crlServer(caLeaf, real);
  try {
    const w = watchOf(s.url);
    expect(await w.watch.pollOnce()).toBe(true);
    expect(w.revoked.has(revokedSerial)).toBe(true);
    await later(s);
    const applied = await w.watch.pollOnce();
    return { ...w, applied };
  } finally {
    await s.close();
  }
}

describe('the SIEM fetches the CRL from svc/ca only', () => {
  for (const [i, [who, code, says]] of [
    [
      'a node',
      'ERR_ENROLL_SERVER_IDENTITY',
      `server is spiffe://${TD}/node/n1, expected spiffe://${TD}/svc/ca`,
    ],
    ['the SIEM itself', 'ERR_ENROLL_SERVER_IDENTITY', `server is spiffe://${TD}/svc/siem, expected`],
    // Issued by the mesh's intermediate outside its name constraints: the chain does not verify.
    ['svc/ca of another trust domain', 'ERR_ENROLL_TRANSPORT', 'permitted subtree violation'],
  ].entries())
    it(`a TLS server presenting ${who}'s mesh certificate cannot un-revoke a serial`, async () => {
      const r = await attack(async (s) => {
        s.present(impostors[i] as Leaf);
        s.crl = await pki.crl([], { thisUpdate: new Date() });
      });
      expect(r.applied).toBe(false);
      expect(r.watch.status()).toMatchObject({ state: 'current', error: code, failures: 1 });
      expect(String(r.watch.lastError)).toContain(says);
      expect(r.revoked.has(revokedSerial)).toBe(true);
    });

  it('a CRL signed by another key cannot un-revoke a serial, even under the intermediate’s name', async () => {
    const foreign = await pki.foreign();
    for (const signer of [
      { cert: pki.intermediate.cert, keys: foreign.intermediate.keys, pem: pki.intermediate.pem },
      pki.root,
      foreign.intermediate,
    ]) {
      const r = await attack(async (s) => {
        s.crl = await pki.crl([], { signer, thisUpdate: new Date() });
      });
      expect(r.applied).toBe(false);
      expect(r.watch.status().error).toBe('ERR_AGENT_CRL_SIGNATURE');
      expect(r.revoked.has(revokedSerial)).toBe(true);
    }
  });

  it('a replayed older CRL cannot un-revoke a serial', async () => {
    const r = await attack(async (s) => {
      s.crl = await pki.crl([], { thisUpdate: new Date(Date.now() - HOUR) });
    });
    expect(r.applied).toBe(false);
    expect(r.watch.status().error).toBe('ERR_AGENT_CRL_STALE');
    expect(r.revoked.has(revokedSerial)).toBe(true);
  });

  it('a CA that stops answering, or answers garbage, cannot un-revoke a serial', async () => {
    for (const answer of [503, 500, Buffer.from('not a CRL')]) {
      const r = await attack((s) => void (s.crl = answer));
      expect(r.applied).toBe(false);
      expect(r.watch.status().error).not.toBeNull();
      expect(r.revoked.has(revokedSerial)).toBe(true);
    }
  });
});

describe('nextUpdate', () => {
  it('past nextUpdate the CRL is stale and still enforced; a newer CRL makes it current again', async () => {
    const nextUpdate = Date.now() + HOUR;
    const s = await crlServer(
      caLeaf,
      await pki.crl([revokedSerial], {
        thisUpdate: new Date(Date.now() - 60_000),
        nextUpdate: new Date(nextUpdate),
      }),
    );
    try {
      const w = watchOf(s.url);
      expect(w.watch.status()).toMatchObject({ state: 'none', nextUpdate: null });
      expect(await w.watch.pollOnce()).toBe(true);
      expect(w.watch.status()).toMatchObject({ state: 'current', error: null });
      expect(Math.abs((w.watch.status().nextUpdate ?? 0) - nextUpdate)).toBeLessThan(1000);
      // The CA unreachable past nextUpdate: stale, the serial still revoked.
      s.crl = 503;
      w.clock.t = nextUpdate + 1000;
      expect(await w.watch.pollOnce()).toBe(false);
      expect(w.watch.status()).toMatchObject({ state: 'stale' });
      expect(w.revoked.has(revokedSerial)).toBe(true);
      // The same bytes again (the CA's cache) do not freshen it.
      s.crl = await pki.crl([revokedSerial], {
        thisUpdate: new Date(Date.now() - 50_000),
        nextUpdate: new Date(nextUpdate),
      });
      expect(await w.watch.pollOnce()).toBe(true);
      expect(w.watch.status().state).toBe('stale');
      // A newer CRL with a later nextUpdate does.
      s.crl = await pki.crl([revokedSerial], {
        thisUpdate: new Date(Date.now()),
        nextUpdate: new Date(nextUpdate + 2 * HOUR),
      });
      expect(await w.watch.pollOnce()).toBe(true);
      expect(w.watch.status()).toMatchObject({ state: 'current', error: null });
      expect(w.revoked.has(revokedSerial)).toBe(true);
    } finally {
      await s.close();
    }
  });
});

describe('across restarts', () => {
  it('a SIEM restarted while the CA is unreachable still refuses what the last CRL revoked', async () => {
    const file = join(tempDir('edgeward-siem-crl-'), 'crl.der');
    const s = await crlServer(
      caLeaf,
      await pki.crl([revokedSerial], { thisUpdate: new Date(Date.now() - 60_000) }),
    );
    const first = watchOf(s.url, file);
    expect(await first.watch.pollOnce()).toBe(true);
    await s.close();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // The restart: the CA is gone, the stored CRL is verified and in force before any poll.
    const again = watchOf(s.url, file);
    await again.watch.restore();
    expect(again.revoked.has(revokedSerial)).toBe(true);
    expect(again.watch.status()).toMatchObject({ state: 'current', source: 'stored' });
    expect(await again.watch.pollOnce()).toBe(false);
    expect(again.revoked.has(revokedSerial)).toBe(true);
    // A stored CRL someone replaced with an unsigned one (here: one signed by another key) is not used.
    const foreign = await pki.foreign();
    writeFileSync(file, await pki.crl([], { signer: foreign.intermediate }));
    const tampered = watchOf(s.url, file);
    await tampered.watch.restore();
    expect(tampered.watch.status()).toMatchObject({ state: 'none', error: 'ERR_AGENT_CRL_SIGNATURE' });
  });
});
