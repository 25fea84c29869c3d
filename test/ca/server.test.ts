// The CA's HTTPS API end to end over real TLS and a real SQLite file: enrollment with join
// tokens, renewal over mTLS, revocation, CRL and bundle, and every refusal with its code.
import { X509Certificate, createHash, generateKeyPairSync } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enroll, renew } from '../../client/index.js';
import { createTokenProver } from '../../attestation/index.js';
import { verifyAuditChain } from '../../ca/audit.js';
import { quarantineOf } from '../../ca/quarantine.js';
import { parseServiceNames } from '../../ca/service-names.js';
import type { DecisionScope, DecisionSet } from '../../common/decisions.js';
import { edgewardAsync } from '../helpers/cli.js';
import { fakeClock } from '../../common/clock.js';
import { loadIdentity } from '../../common/identity-dir.js';
import { enrollWithToken, startTestCa, type TestCa } from '../helpers/ca.js';
import { customCsr } from '../helpers/csr.js';
import { rawRequest } from '../helpers/https.js';
import { openssl, opensslCrlText } from '../helpers/openssl.js';
import { tempDir } from '../helpers/tmp.js';

const TD = 'factory.example';

function truncated(pem: string): string {
  const der = Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return der.subarray(0, der.length - 10).toString('base64');
}
const dir = tempDir();
let ca: TestCa;

beforeAll(async () => {
  ca = await startTestCa();
});
afterAll(async () => {
  await ca.stop();
});

async function begin(id: string): Promise<string> {
  const r = await rawRequest(`${ca.url}/v1/enroll/begin`, {
    method: 'POST',
    body: JSON.stringify({ id, method: 'token' }),
  });
  expect(r.status).toBe(200);
  return r.json?.['session'] as string;
}

async function finish(
  session: string,
  csr: string,
  token: string,
): Promise<Awaited<ReturnType<typeof rawRequest>>> {
  return rawRequest(`${ca.url}/v1/enroll/finish`, {
    method: 'POST',
    body: JSON.stringify({ session, csr, response: { token } }),
  });
}

/** Asserts a refusal: status, code, an audit record with that code, and no certificate. */
async function expectRefused(
  r: Awaited<ReturnType<typeof rawRequest>>,
  status: number,
  code: string,
): Promise<void> {
  expect(r.json?.['code']).toBe(code);
  expect(r.status).toBe(status);
  expect(r.json).not.toHaveProperty('certificate');
  expect(Object.keys(r.json ?? {}).sort()).toEqual(['code', 'error', 'message', 'statusCode']);
  const audited = (await ca.auditRecords()).filter(
    (a) => a.kind.endsWith('.refused') && (JSON.parse(a.data) as { code: string }).code === code,
  );
  expect(audited.length).toBeGreaterThan(0);
}

describe('enrollment with a join token', () => {
  it('enrolls, writes the identity folder, and openssl verifies the chain', async () => {
    const out = join(dir, 'n1');
    const id = `spiffe://${TD}/node/n1`;
    const issued = await enrollWithToken(ca, id, out);
    expect(issued.identity).toBe(id);
    expect(statSync(join(out, 'key.pem')).mode & 0o777).toBe(0o600);
    const certs = readFileSync(join(out, 'cert.pem'), 'utf8').match(/-----BEGIN CERTIFICATE-----/g);
    expect(certs).toHaveLength(2);
    const v = openssl([
      'verify',
      '-CAfile',
      join(out, 'bundle.pem'),
      '-untrusted',
      join(out, 'cert.pem'),
      join(out, 'cert.pem'),
    ]);
    expect(v).toMatch(/OK/);
    const loaded = loadIdentity(out);
    expect(loaded.identity).toBe(id);
    expect((await ca.audits('enroll.success')).some((a) => a['serial'] === issued.serial)).toBe(true);
  });

  it('refuses a wrong pinned fingerprint before sending anything', async () => {
    const id = `spiffe://${TD}/node/pin`;
    await expect(
      enroll({
        ca: ca.url,
        fingerprint: 'ab'.repeat(32),
        id,
        prover: createTokenProver(await ca.token(id)),
        out: join(dir, 'pin'),
      }),
    ).rejects.toMatchObject({ code: 'ERR_ENROLL_FINGERPRINT' });
  });

  it('refuses a reused token', async () => {
    const id = `spiffe://${TD}/node/reuse`;
    const token = await ca.token(id);
    await enroll({
      ca: ca.url,
      fingerprint: ca.fingerprint,
      id,
      prover: createTokenProver(token),
      out: join(dir, 'reuse'),
    });
    const r = await finish(await begin(id), customCsr({ uris: [id] }).pem, token);
    await expectRefused(r, 401, 'ERR_CA_TOKEN_USED');
  });

  it('refuses a token bound to another identity', async () => {
    const token = await ca.token(`spiffe://${TD}/node/a`);
    const r = await finish(
      await begin(`spiffe://${TD}/node/b`),
      customCsr({ uris: [`spiffe://${TD}/node/b`] }).pem,
      token,
    );
    await expectRefused(r, 403, 'ERR_CA_TOKEN_IDENTITY');
  });

  it('refuses an unknown or malformed token', async () => {
    const id = `spiffe://${TD}/node/unknown`;
    await expectRefused(
      await finish(await begin(id), customCsr({ uris: [id] }).pem, `ewt_${'A'.repeat(43)}`),
      401,
      'ERR_CA_TOKEN_INVALID',
    );
    await expectRefused(
      await finish(await begin(id), customCsr({ uris: [id] }).pem, 'not-a-token'),
      401,
      'ERR_CA_TOKEN_INVALID',
    );
  });

  it('refuses a session used twice (the first finish consumed it)', async () => {
    const id = `spiffe://${TD}/node/twice`;
    const s = await begin(id);
    await finish(s, customCsr({ uris: [id] }).pem, 'bad');
    await expectRefused(
      await finish(s, customCsr({ uris: [id] }).pem, await ca.token(id)),
      400,
      'ERR_CA_SESSION_UNKNOWN',
    );
  });

  const csrCases: Array<[string, () => string, number, string]> = [
    [
      'a CSR with a bad signature',
      () => customCsr({ uris: [`spiffe://${TD}/node/c`], corruptSignature: true }).pem,
      400,
      'ERR_CA_CSR_SIGNATURE',
    ],
    [
      'a CSR asking for another identity',
      () => customCsr({ uris: [`spiffe://${TD}/node/other`] }).pem,
      403,
      'ERR_CA_CSR_IDENTITY',
    ],
    [
      'a CSR for another trust domain',
      () => customCsr({ uris: ['spiffe://evil.example/node/c'] }).pem,
      403,
      'ERR_CA_FOREIGN_TRUST_DOMAIN',
    ],
    [
      'a CSR with several URI SANs',
      () => customCsr({ uris: [`spiffe://${TD}/node/c`, `spiffe://${TD}/node/d`] }).pem,
      400,
      'ERR_CA_CSR_SANS',
    ],
    [
      'a CSR with a DNS SAN',
      () => customCsr({ uris: [`spiffe://${TD}/node/c`], dns: ['example.com'] }).pem,
      400,
      'ERR_CA_CSR_SANS',
    ],
    [
      'a CSR of a node with an IP SAN',
      () => customCsr({ uris: [`spiffe://${TD}/node/c`], ips: [Buffer.from([127, 0, 0, 1])] }).pem,
      400,
      'ERR_CA_CSR_SANS',
    ],
    [
      'a CSR with a 5-byte IP SAN',
      () => customCsr({ uris: [`spiffe://${TD}/node/c`], ips: [Buffer.alloc(5)] }).pem,
      400,
      'ERR_CA_CSR_SANS',
    ],
    [
      'a CSR with 17 DNS SANs',
      () =>
        customCsr({
          uris: [`spiffe://${TD}/node/c`],
          dns: Array.from({ length: 17 }, (_, i) => `h${i}.example`),
        }).pem,
      400,
      'ERR_CA_CSR_SANS',
    ],
    [
      'a CSR with a CA flag',
      () => customCsr({ uris: [`spiffe://${TD}/node/c`], caFlag: true }).pem,
      400,
      'ERR_CA_CSR_CA_FLAG',
    ],
    [
      'a CSR with an unknown critical extension',
      () => customCsr({ uris: [`spiffe://${TD}/node/c`], criticalUnknown: true }).pem,
      400,
      'ERR_CA_CSR_EXTENSION',
    ],
    ...(
      [
        ['an RSA-1024 key', generateKeyPairSync('rsa', { modulusLength: 1024 })],
        ['a P-384 key (not allowed by default)', generateKeyPairSync('ec', { namedCurve: 'P-384' })],
        ['a secp256k1 key', generateKeyPairSync('ec', { namedCurve: 'secp256k1' })],
      ] as const
    ).map(([what, key]): [string, () => string, number, string] => [
      `a CSR with ${what}`,
      () => customCsr({ key, uris: [`spiffe://${TD}/node/c`] }).pem,
      400,
      'ERR_CA_WEAK_KEY',
    ]),
    [
      'garbage in place of a CSR',
      () => 'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA',
      400,
      'ERR_CA_CSR_MALFORMED',
    ],
    [
      'a truncated CSR',
      () => truncated(customCsr({ uris: [`spiffe://${TD}/node/c`] }).pem),
      400,
      'ERR_CA_CSR_MALFORMED',
    ],
  ];
  for (const [what, csr, status, code] of csrCases) {
    it(`refuses ${what} with ${code}, and does not consume the token`, async () => {
      const id = `spiffe://${TD}/node/c`;
      const token = await ca.token(id);
      await expectRefused(await finish(await begin(id), csr(), token), status, code);
      // The token survives a refused issuance: it is consumed only with a certificate.
      const ok = await finish(await begin(id), customCsr({ uris: [id] }).pem, token);
      expect(ok.status).toBe(200);
    });
  }

  it('accepts RSA >= 2048 only where the key policy allows it', async () => {
    const ca2 = await startTestCa({ keyPolicy: { allow: ['ec-p256', 'rsa'], rsaMinBits: 2048 } });
    try {
      const post = async (bits: number): Promise<Awaited<ReturnType<typeof rawRequest>>> => {
        const id = `spiffe://${TD}/node/rsa${bits}`;
        const b = await rawRequest(`${ca2.url}/v1/enroll/begin`, {
          method: 'POST',
          body: JSON.stringify({ id, method: 'token' }),
        });
        const csr = customCsr({ key: generateKeyPairSync('rsa', { modulusLength: bits }), uris: [id] }).pem;
        return rawRequest(`${ca2.url}/v1/enroll/finish`, {
          method: 'POST',
          body: JSON.stringify({
            session: b.json?.['session'],
            csr,
            response: { token: await ca2.token(id) },
          }),
        });
      };
      expect((await post(2048)).status).toBe(200);
      expect((await post(1024)).json?.['code']).toBe('ERR_CA_WEAK_KEY');
    } finally {
      await ca2.stop();
    }
  });

  it('refuses an expired token', async () => {
    const clock = fakeClock(Date.now());
    const ca2 = await startTestCa({ clock });
    try {
      const id = `spiffe://${TD}/node/late`;
      const token = await ca2.token(id, 60_000);
      clock.advance(61_000);
      const b = await rawRequest(`${ca2.url}/v1/enroll/begin`, {
        method: 'POST',
        body: JSON.stringify({ id, method: 'token' }),
      });
      const r = await rawRequest(`${ca2.url}/v1/enroll/finish`, {
        method: 'POST',
        body: JSON.stringify({
          session: b.json?.['session'],
          csr: customCsr({ uris: [id] }).pem,
          response: { token },
        }),
      });
      expect(r.json?.['code']).toBe('ERR_CA_TOKEN_EXPIRED');
      expect((await ca2.audits('enroll.refused')).map((a) => a['code'])).toContain('ERR_CA_TOKEN_EXPIRED');
    } finally {
      await ca2.stop();
    }
  });
});

describe('hostile requests', () => {
  it('refuses malformed JSON', async () => {
    await expectRefused(
      await rawRequest(`${ca.url}/v1/enroll/begin`, { method: 'POST', body: '{"id": ' }),
      400,
      'ERR_INPUT_MALFORMED',
    );
  });
  it('refuses oversized JSON', async () => {
    const body = JSON.stringify({
      id: `spiffe://${TD}/node/x`,
      method: 'token',
      evidence: { pad: 'x'.repeat(100_000) },
    });
    await expectRefused(
      await rawRequest(`${ca.url}/v1/enroll/begin`, { method: 'POST', body }),
      413,
      'ERR_INPUT_TOO_LARGE',
    );
  });
  it('refuses prototype poisoning', async () => {
    const body = `{"id":"spiffe://${TD}/node/x","method":"token","evidence":{"__proto__":{"admin":true}}}`;
    await expectRefused(
      await rawRequest(`${ca.url}/v1/enroll/begin`, { method: 'POST', body }),
      400,
      'ERR_INPUT_MALFORMED',
    );
  });
  it('refuses unknown fields and wrong types (no coercion)', async () => {
    await expectRefused(
      await rawRequest(`${ca.url}/v1/enroll/begin`, {
        method: 'POST',
        body: JSON.stringify({ id: `spiffe://${TD}/node/x`, method: 'token', admin: true }),
      }),
      400,
      'ERR_INPUT_MALFORMED',
    );
    await expectRefused(
      await rawRequest(`${ca.url}/v1/enroll/begin`, {
        method: 'POST',
        body: JSON.stringify({ id: 12, method: 'token' }),
      }),
      400,
      'ERR_INPUT_MALFORMED',
    );
  });
  it('refuses non-JSON bodies', async () => {
    const r = await rawRequest(`${ca.url}/v1/enroll/begin`, {
      method: 'POST',
      body: 'id=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    await expectRefused(r, 415, 'ERR_INPUT_UNSUPPORTED_MEDIA');
  });
  it('refuses unknown methods, invalid identities and foreign trust domains', async () => {
    const post = (b: unknown): ReturnType<typeof rawRequest> =>
      rawRequest(`${ca.url}/v1/enroll/begin`, { method: 'POST', body: JSON.stringify(b) });
    await expectRefused(
      await post({ id: `spiffe://${TD}/node/x`, method: 'magic' }),
      400,
      'ERR_CA_METHOD_UNKNOWN',
    );
    await expectRefused(
      await post({ id: `spiffe://${TD}/node/../x`, method: 'token' }),
      400,
      'ERR_ID_INVALID',
    );
    await expectRefused(
      await post({ id: 'spiffe://other.example/node/x', method: 'token' }),
      403,
      'ERR_CA_FOREIGN_TRUST_DOMAIN',
    );
  });
  // The "anonymous quarantine" attack: enrollments prove nothing, so they spend their source
  // address's budget, never the budget of the identity they name (its renewals have their own).
  it('rate-limits enrollment per source address, never per the identity it names', async () => {
    const ca2 = await startTestCa({
      rateLimits: {
        perIp: { rate: 1000, burst: 1000 },
        perIdentity: { rate: 0.01, burst: 3 },
        perEnrollSource: { rate: 0.01, burst: 3 },
      },
    });
    try {
      const id = `spiffe://${TD}/node/rl`;
      const out = join(dir, 'rl');
      await enrollWithToken(ca2, id, out);
      const post = async (localAddress: string): Promise<unknown> =>
        (
          await rawRequest(`${ca2.url}/v1/enroll/begin`, {
            method: 'POST',
            body: JSON.stringify({ id, method: 'token' }),
            localAddress,
          })
        ).json?.['code'];
      const codes: unknown[] = [];
      for (let i = 0; i < 5; i++) codes.push(await post('127.0.0.2'));
      expect(codes).toEqual([undefined, undefined, undefined, 'ERR_RATE_LIMITED', 'ERR_RATE_LIMITED']);
      // Another address has its own budget, and the identity's renewals theirs.
      expect(await post('127.0.0.1')).toBeUndefined();
      for (let i = 0; i < 3; i++) await renew({ ca: ca2.url, dir: out });
      await expect(renew({ ca: ca2.url, dir: out })).rejects.toMatchObject({
        detail: { remoteCode: 'ERR_RATE_LIMITED' },
      });
    } finally {
      await ca2.stop();
    }
  });
  it('rate-limits per source address with Retry-After', async () => {
    const ca2 = await startTestCa({
      rateLimits: {
        perIp: { rate: 0.1, burst: 2 },
        perIdentity: { rate: 1000, burst: 1000 },
        perEnrollSource: { rate: 1000, burst: 1000 },
      },
    });
    try {
      let last: Awaited<ReturnType<typeof rawRequest>> | undefined;
      for (let i = 0; i < 4; i++)
        last = await rawRequest(`${ca2.url}/v1/enroll/begin`, { method: 'POST', body: '{}' });
      expect(last?.status).toBe(429);
      expect(last?.json?.['code']).toBe('ERR_RATE_LIMITED');
      expect(Number(last?.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await ca2.stop();
    }
  });
});

describe('host names of service certificates (within the names declared at ca init)', () => {
  let named: TestCa;
  beforeAll(async () => {
    named = await startTestCa({
      serviceNames: parseServiceNames('svc.example', '127.0.0.0/8,2001:db8::/32'),
    });
  });
  afterAll(async () => named.stop());

  async function enrollSvc(
    c: TestCa,
    name: string,
    names: { dns?: string[]; ips?: Buffer[] },
  ): Promise<Awaited<ReturnType<typeof rawRequest>>> {
    const id = `spiffe://${TD}/svc/${name}`;
    const b = await rawRequest(`${c.url}/v1/enroll/begin`, {
      method: 'POST',
      body: JSON.stringify({ id, method: 'token' }),
    });
    return rawRequest(`${c.url}/v1/enroll/finish`, {
      method: 'POST',
      body: JSON.stringify({
        session: b.json?.['session'],
        csr: customCsr({ uris: [id], ...names }).pem,
        response: { token: await c.token(id) },
      }),
    });
  }

  it('issues a service the declared DNS names and addresses it asks for', async () => {
    const r = await enrollSvc(named, 'web', {
      dns: ['siem.svc.example', 'svc.example'],
      ips: [Buffer.from([127, 0, 0, 1]), Buffer.from('20010db8000000000000000000000001', 'hex')],
    });
    expect(r.status).toBe(200);
    const x = new X509Certificate(String(r.json?.['certificate']));
    expect(x.subjectAltName).toBe(
      `URI:spiffe://${TD}/svc/web, DNS:siem.svc.example, DNS:svc.example, IP Address:127.0.0.1, IP Address:2001:DB8:0:0:0:0:0:1`,
    );
  });

  it('refuses a service a name outside them (ERR_CA_CSR_NAME_NOT_PERMITTED), audited', async () => {
    for (const names of [
      { dns: ['www.bank.example'] },
      { dns: ['xsvc.example'] },
      { ips: [Buffer.from([10, 0, 0, 1])] },
    ]) {
      const r = await enrollSvc(named, 'web2', names);
      expect(r.status).toBe(403);
      expect(r.json?.['code']).toBe('ERR_CA_CSR_NAME_NOT_PERMITTED');
    }
    expect(
      (await named.audits('enroll.refused')).filter((a) => a['code'] === 'ERR_CA_CSR_NAME_NOT_PERMITTED'),
    ).toHaveLength(3);
    // ::ffff:127.0.0.1 is 127.0.0.1 to the CA but IPv6 to clients: one spelling per address.
    const mapped = await enrollSvc(named, 'web2', {
      ips: [Buffer.from('00000000000000000000ffff7f000001', 'hex')],
    });
    expect(mapped.status).toBe(400);
    expect(mapped.json?.['code']).toBe('ERR_CA_CSR_SANS');
  });

  it('gives its own server certificate only the declared names of where it listens', async () => {
    const cert = async (c: TestCa): Promise<string | undefined> =>
      new Promise((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port: c.running.port, rejectUnauthorized: false }, () => {
          resolve(s.getPeerX509Certificate()?.subjectAltName);
          s.destroy();
        });
        s.once('error', reject);
      });
    // 127.0.0.1 is declared, `localhost` is not.
    expect(await cert(named)).toBe(`URI:spiffe://${TD}/svc/ca, IP Address:127.0.0.1`);
    // Nothing declared: the URI only.
    expect(await cert(ca)).toBe(`URI:spiffe://${TD}/svc/ca`);
    const h = await rawRequest(`${named.url}/healthz`);
    expect(h.json?.['serviceNames']).toEqual({ dns: ['svc.example'], ips: ['127.0.0.0/8', '2001:db8::/32'] });
  });
});

describe('renewal over mTLS', () => {
  it('renews with a new key for the same identity', async () => {
    const out = join(dir, 'r1');
    const id = `spiffe://${TD}/node/r1`;
    const first = await enrollWithToken(ca, id, out);
    const oldKey = readFileSync(join(out, 'key.pem'), 'utf8');
    const second = await renew({ ca: ca.url, dir: out });
    expect(second.serial).not.toBe(first.serial);
    expect(second.identity).toBe(id);
    expect(readFileSync(join(out, 'key.pem'), 'utf8')).not.toBe(oldKey);
    expect(loadIdentity(out).serial).toBe(second.serial);
  });

  it('refuses renewal without a client certificate', async () => {
    const r = await rawRequest(`${ca.url}/v1/renew`, {
      method: 'POST',
      body: JSON.stringify({ csr: customCsr({}).pem }),
    });
    await expectRefused(r, 401, 'ERR_CA_UNAUTHENTICATED');
  });

  it('refuses renewal for another identity than the certificate', async () => {
    const out = join(dir, 'r2');
    const id = `spiffe://${TD}/node/r2`;
    await enrollWithToken(ca, id, out);
    const me = loadIdentity(out);
    const r = await rawRequest(`${ca.url}/v1/renew`, {
      method: 'POST',
      body: JSON.stringify({ csr: customCsr({ uris: [`spiffe://${TD}/node/victim`] }).pem }),
      key: me.keyPem,
      cert: me.certPem,
    });
    await expectRefused(r, 403, 'ERR_CA_CSR_IDENTITY');
  });

  it('refuses a foreign certificate (another CA)', async () => {
    const other = await startTestCa();
    try {
      const out = join(dir, 'foreign');
      const id = `spiffe://${TD}/node/foreign`;
      await enrollWithToken(other, id, out);
      const me = loadIdentity(out);
      const r = await rawRequest(`${ca.url}/v1/renew`, {
        method: 'POST',
        body: JSON.stringify({ csr: customCsr({ uris: [id] }).pem }),
        key: me.keyPem,
        cert: me.certPem,
      });
      await expectRefused(r, 401, 'ERR_CA_CERT_UNTRUSTED');
    } finally {
      await other.stop();
    }
  });

  it('refuses an expired certificate', async () => {
    // A certificate that expired a day ago, issued by this CA and recorded in its store.
    const id = `spiffe://${TD}/node/expired`;
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spkiDer = key.publicKey.export({ type: 'spki', format: 'der' });
    const past = Date.now() - 2 * 86_400_000;
    const cert = ca.running.service.authority.issue({
      identity: id,
      spkiDer,
      lifetimeMs: 86_400_000,
      now: past,
    });
    await ca.running.store.transaction((tx) =>
      tx.insertCertificate({
        serial: cert.serial,
        identity: id,
        spkiSha256: 'x',
        method: 'token',
        notBefore: cert.notBefore,
        notAfter: cert.notAfter,
        issuedAt: past,
        der: cert.der,
      }),
    );
    expect(Date.parse(new X509Certificate(cert.der).validTo)).toBeLessThan(Date.now());
    const r = await rawRequest(`${ca.url}/v1/renew`, {
      method: 'POST',
      body: JSON.stringify({ csr: customCsr({ uris: [id] }).pem }),
      key: key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      cert: ca.running.service.authority.chainPem(cert.der),
    });
    await expectRefused(r, 401, 'ERR_CA_CERT_EXPIRED');
  });

  it('refuses a revoked certificate, and all renewals of a revoked identity', async () => {
    const id = `spiffe://${TD}/node/rev`;
    const out = join(dir, 'rev');
    const issued = await enrollWithToken(ca, id, out);
    const admin = {
      key: readFileSync(join(ca.adminDir, 'key.pem'), 'utf8'),
      cert: readFileSync(join(ca.adminDir, 'cert.pem'), 'utf8'),
    };
    const rv = await rawRequest(`${ca.url}/v1/revoke`, {
      method: 'POST',
      body: JSON.stringify({ serial: issued.serial, reason: 'keyCompromise' }),
      ...admin,
    });
    expect(rv.status).toBe(200);
    expect(rv.json?.['revoked']).toEqual([issued.serial]);
    const me = loadIdentity(out);
    const r = await rawRequest(`${ca.url}/v1/renew`, {
      method: 'POST',
      body: JSON.stringify({ csr: customCsr({ uris: [id] }).pem }),
      key: me.keyPem,
      cert: me.certPem,
    });
    await expectRefused(r, 403, 'ERR_CA_CERT_REVOKED');

    // Revoking the identity also refuses its future enrollments and renewals.
    const id2 = `spiffe://${TD}/node/rev2`;
    const out2 = join(dir, 'rev2');
    await enrollWithToken(ca, id2, out2);
    const rv2 = await rawRequest(`${ca.url}/v1/revoke`, {
      method: 'POST',
      body: JSON.stringify({ id: id2, reason: 'cessationOfOperation' }),
      ...admin,
    });
    expect((rv2.json?.['revoked'] as string[]).length).toBe(1);
    await expect(renew({ ca: ca.url, dir: out2 })).rejects.toMatchObject({ code: 'ERR_ENROLL_REFUSED' });
    const b = await rawRequest(`${ca.url}/v1/enroll/begin`, {
      method: 'POST',
      body: JSON.stringify({ id: id2, method: 'token' }),
    });
    await expectRefused(b, 403, 'ERR_CA_IDENTITY_REVOKED');

    // The CRL lists both, signed by the intermediate; openssl reads it.
    const crl = await rawRequest(`${ca.url}/v1/crl`);
    expect(crl.headers['content-type']).toBe('application/pkix-crl');
    const text = opensslCrlText(dir, crl.body, readFileSync(join(ca.dataDir, 'intermediate.pem'), 'utf8'));
    expect(text).toMatch(/verify OK/);
    expect(text.toLowerCase().replace(/:/g, '')).toContain(issued.serial.slice(-12));
    expect(text).toMatch(/Next Update/);
  });

  it('refuses revocation by a node identity', async () => {
    const out = join(dir, 'n9');
    const id = `spiffe://${TD}/node/n9`;
    await enrollWithToken(ca, id, out);
    const me = loadIdentity(out);
    const r = await rawRequest(`${ca.url}/v1/revoke`, {
      method: 'POST',
      body: JSON.stringify({ id, reason: 'keyCompromise' }),
      key: me.keyPem,
      cert: me.certPem,
    });
    await expectRefused(r, 403, 'ERR_CA_FORBIDDEN');
  });
});

// The attack "a quarantined clone escapes by renewing": a serial or key quarantine refuses that
// credential, and holds its identity (renewals, enrollments) until an analyst releases it.
describe('renewal holds after a quarantined certificate', () => {
  let current: DecisionSet = { trustDomain: TD, revision: 1, issuedAt: Date.now(), decisions: [] };
  let held: TestCa;
  beforeAll(async () => {
    held = await startTestCa({ quarantineOf: (s) => quarantineOf(current, s, Date.now()) });
  });
  afterAll(async () => held.stop());
  const quarantine = async (scope: DecisionScope): Promise<void> => {
    const d = {
      id: `d-${scope.value.slice(0, 8)}`,
      revision: 2,
      scope,
      action: 'quarantine' as const,
      reason: 'cloned credential',
      createdAt: Date.now(),
      expiresAt: Date.now() + 3_600_000,
      alerts: [],
    };
    current = { ...current, revision: current.revision + 1, decisions: [...current.decisions, d] };
    await held.running.service.applyDecisions(current);
  };
  const code = (err: unknown): unknown => (err as { detail?: { remoteCode?: unknown } }).detail?.remoteCode;

  it('refuses the certificate, holds its identity, and the CLI releases the hold only', async () => {
    const id = `spiffe://${TD}/node/held`;
    const out = join(dir, 'held');
    const issued = await enrollWithToken(held, id, out);
    await quarantine({ type: 'serial', value: issued.serial });
    const refused = await renew({ ca: held.url, dir: out }).catch((e: unknown) => e);
    expect(code(refused)).toBe('ERR_CA_CERT_QUARANTINED');
    expect(String(refused)).toMatch(/certificate serial quarantined by the SIEM until 20\d\d-/);
    const again = await enrollWithToken(held, id, join(dir, 'held-again')).catch((e: unknown) => e);
    expect(code(again)).toBe('ERR_CA_IDENTITY_HELD');
    expect(await held.audits('hold.place')).toMatchObject([
      { identity: id, scope: { type: 'serial', value: issued.serial } },
    ]);

    const r = await edgewardAsync(['ca', 'release', '--data', held.dataDir, '--id', id, '--hold']);
    expect(r.stdout).toBe(`released the renewal hold of ${id}\n`);
    expect(await held.audits('hold.release')).toMatchObject([{ identity: id, by: 'cli' }]);
    // The same live decision does not hold the identity again; it still refuses that certificate.
    await held.running.service.applyDecisions(current);
    expect(code(await renew({ ca: held.url, dir: out }).catch((e: unknown) => e))).toBe(
      'ERR_CA_CERT_QUARANTINED',
    );
    const fresh = await enrollWithToken(held, id, join(dir, 'held-fresh'));
    expect(fresh.serial).not.toBe(issued.serial);
    const twice = await edgewardAsync(['ca', 'release', '--data', held.dataDir, '--id', id, '--hold']);
    expect(twice.stdout).toBe(`no renewal hold on ${id}\n`);
  });

  it('refuses a quarantined key in a new CSR (enrollment or renewal)', async () => {
    const id = `spiffe://${TD}/node/key-reuse`;
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = customCsr({ key, uris: [id] });
    await quarantine({ type: 'spki', value: createHash('sha256').update(csr.spkiDer).digest('hex') });
    const b = await rawRequest(`${held.url}/v1/enroll/begin`, {
      method: 'POST',
      body: JSON.stringify({ id, method: 'token' }),
    });
    const r = await rawRequest(`${held.url}/v1/enroll/finish`, {
      method: 'POST',
      body: JSON.stringify({
        session: b.json?.['session'],
        csr: csr.pem,
        response: { token: await held.token(id) },
      }),
    });
    expect(r.status).toBe(403);
    expect(r.json?.['code']).toBe('ERR_CA_CERT_QUARANTINED');
    expect(String(r.json?.['message'])).toMatch(/certificate key quarantined by the SIEM until/);
  });
});

describe('bundle, health, metrics, audit', () => {
  it('serves the bundle as PEM and as a SPIFFE JWKS', async () => {
    const pem = await rawRequest(`${ca.url}/v1/bundle`);
    expect(pem.body.toString()).toBe(ca.rootPem);
    const jwks = await rawRequest(`${ca.url}/v1/bundle?format=jwks`);
    const keys = jwks.json?.['keys'] as Array<Record<string, unknown>>;
    expect(keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', use: 'x509-svid' });
    expect(jwks.json?.['spiffe_sequence']).toBe(1);
  });
  it('answers health and Prometheus metrics', async () => {
    expect((await rawRequest(`${ca.url}/healthz`)).json).toEqual({
      status: 'ok',
      trustDomain: TD,
      serviceNames: { dns: [], ips: [] },
    });
    const m = (await rawRequest(`${ca.url}/metrics`)).body.toString();
    expect(m).toMatch(/edgeward_ca_enrollments_total\{method="token",outcome="success"\} \d+/);
    expect(m).toMatch(/edgeward_ca_refusals_total\{code="ERR_CA_TOKEN_USED"\} 1/);
  });
  it('keeps a verifiable hash chain of every record', async () => {
    const v = await verifyAuditChain(await ca.auditRecords());
    expect(v.ok).toBe(true);
    expect(v.count).toBeGreaterThan(20);
  });
});
