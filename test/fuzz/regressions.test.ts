// What the fuzzers found, one test each, named after what it guards. Each input is also a sample
// of its target's corpus (test/fuzz/corpus/<target>/finding-*), so every run replays it.
import { describe, expect, it } from 'vitest';
import { parseVerifiedCrl } from '../../client/index.js';
import { parseCsr } from '../../common/csr.js';
import { verifyDecisions } from '../../common/decision-jws.js';
import { children, oid, parseDer, readOid, seq, type Tlv } from '../../common/der.js';
import { EdgewardError } from '../../common/errors.js';
import { repoFile } from '../../bench/fuzz/corpus.js';
import { FUZZ_SESSION_KEY, fuzzDecisionKey } from '../../bench/fuzz/targets/signed.js';
import { openSealedSession, sealSession } from '../../ca/index.js';

function codeOfSync(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (err) {
    return err instanceof EdgewardError ? err.code : String(err);
  }
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return err instanceof EdgewardError ? err.code : String(err);
  }
}

describe('DER writer', () => {
  it('encodes an OID whose first two arcs make 128 or more in base 128, as the reader reads it', () => {
    const found = repoFile('test', 'fuzz', 'corpus', 'der', 'finding-oid-first-arc-128.der');
    expect(readOid(parseDer(found))).toBe('2.48');
    expect(oid('2.48')).toEqual(found);
    expect(oid('2.999').toString('hex')).toBe('06028837');
    expect(readOid(parseDer(oid('2.999.1')))).toBe('2.999.1');
  });
});

describe('CSR parsing', () => {
  const policy = { allow: ['ec-p256', 'ec-p384', 'rsa'] as const, rsaMinBits: 2048 };
  const parse = (b: Buffer) => parseCsr(b, { allow: [...policy.allow], rsaMinBits: policy.rsaMinBits });

  it('refuses a CSR whose signatureAlgorithm is not a SEQUENCE (ERR_CA_CSR_MALFORMED)', () => {
    const good = repoFile('test', 'fuzz', 'corpus', 'csr', 'csr-p256-uri.der');
    const found = repoFile('test', 'fuzz', 'corpus', 'csr', 'finding-algorithm-tag.der');
    // The AlgorithmIdentifier's tag 0x30 made 0x20, outside the signed info.
    expect([...found].filter((b, i) => b !== good[i])).toEqual([0x20]);
    expect(parse(good).uri).toBe('spiffe://factory.example/node/a');
    expect(codeOfSync(() => parse(found))).toBe('ERR_CA_CSR_MALFORMED');
  });

  it('refuses signatureAlgorithm parameters other than none for ECDSA and NULL for RSA (ERR_CA_CSR_MALFORMED)', () => {
    const good = repoFile('test', 'fuzz', 'corpus', 'csr', 'csr-p256-uri.der');
    const [info, alg, sig] = children(parseDer(good, 0x30)) as [Tlv, Tlv, Tlv];
    const withNull = seq(info.raw, seq(alg.value, Buffer.from([0x05, 0x00])), sig.raw);
    expect(codeOfSync(() => parse(withNull))).toBe('ERR_CA_CSR_MALFORMED');
    const rsa = repoFile('test', 'fuzz', 'corpus', 'csr', 'csr-rsa2048-uri.der');
    const [rInfo, rAlg, rSig] = children(parseDer(rsa, 0x30)) as [Tlv, Tlv, Tlv];
    expect(parse(rsa).keyKind).toBe('rsa');
    const noNull = seq(rInfo.raw, seq((children(rAlg)[0] as Tlv).raw), rSig.raw);
    expect(codeOfSync(() => parse(noNull))).toBe('ERR_CA_CSR_MALFORMED');
  });

  it('still accepts every real CSR of the corpus (openssl: P-256, P-384, RSA 2048)', () => {
    for (const name of ['csr-p256-nosan.der', 'csr-p256-uri.der', 'csr-p384-svc.der', 'csr-rsa2048-uri.der'])
      expect(parse(repoFile('test', 'fuzz', 'corpus', 'csr', name)).spkiDer.length).toBeGreaterThan(0);
  });
});

describe("agent's CRL reader", () => {
  const issuer = repoFile('test', 'fuzz', 'corpus', 'crl', '_issuer.pem').toString('utf8');

  it('refuses a CRL whose signature BIT STRING claims unused bits (ERR_AGENT_CRL_MALFORMED)', async () => {
    const good = repoFile('test', 'fuzz', 'corpus', 'crl', 'crl-openssl-2.der');
    const found = repoFile('test', 'fuzz', 'corpus', 'crl', 'finding-signature-unused-bits.der');
    // The same CRL but for the unused-bits count of its signature (0 -> 4).
    expect(found.length).toBe(good.length);
    expect([...found].filter((b, i) => b !== good[i])).toHaveLength(1);
    await expect(parseVerifiedCrl(good, [issuer])).resolves.toMatchObject({
      issuer: 'CN=fuzz test intermediate',
    });
    expect(await codeOf(parseVerifiedCrl(found, [issuer]))).toBe('ERR_AGENT_CRL_MALFORMED');
  });

  it('refuses a CRL whose ECDSA signature is not a DER SEQUENCE of INTEGERs (ERR_AGENT_CRL_SIGNATURE)', async () => {
    const good = repoFile('test', 'fuzz', 'corpus', 'crl', 'crl-openssl-empty.der');
    const found = repoFile('test', 'fuzz', 'corpus', 'crl', 'finding-ecdsa-signature-tag.der');
    // The signature's SEQUENCE tag 0x30 made 0xb0: an X.509 library once verified it; node:crypto
    // (DER-encoded ECDSA) does not.
    expect([...found].filter((b, i) => b !== good[i])).toEqual([0xb0]);
    await expect(parseVerifiedCrl(good, [issuer])).resolves.toMatchObject({ serials: new Set() });
    expect(await codeOf(parseVerifiedCrl(found, [issuer]))).toBe('ERR_AGENT_CRL_SIGNATURE');
  });

  it("still verifies every real CRL of the corpus (openssl and the CA's own writer)", async () => {
    for (const name of [
      'crl-openssl-2.der',
      'crl-openssl-empty.der',
      'crl-edgeward-3.der',
      'crl-edgeward-empty.der',
    ]) {
      const crl = await parseVerifiedCrl(repoFile('test', 'fuzz', 'corpus', 'crl', name), [issuer]);
      expect(crl.issuer).toBe('CN=fuzz test intermediate');
    }
  });
});

describe('sealed enrollment sessions', () => {
  it('open only in their one canonical base64url spelling (ERR_CA_SESSION_UNKNOWN otherwise)', () => {
    const found = repoFile('test', 'fuzz', 'corpus', 'session', 'finding-space-in-token.txt').toString(
      'latin1',
    );
    // A space inside a sealed token: Node's decoder skipped it and the session opened.
    expect(found).toContain(' ');
    expect(codeOfSync(() => openSealedSession(FUZZ_SESSION_KEY, found))).toBe('ERR_CA_SESSION_UNKNOWN');
    expect(openSealedSession(FUZZ_SESSION_KEY, found.replace(' ', '')).identity).toBe(
      'spiffe://factory.example/device/d1',
    );
    const { token } = sealSession(FUZZ_SESSION_KEY, {
      identity: 'spiffe://factory.example/node/a',
      method: 'token',
      state: null,
      expiresAt: 1,
      renewalOf: null,
    });
    expect(openSealedSession(FUZZ_SESSION_KEY, token).method).toBe('token');
    for (const changed of [
      `${token.slice(0, 20)}!${token.slice(20)}`,
      `${token.slice(0, 20)}\n${token.slice(20)}`,
      `${token}=`,
    ])
      expect(codeOfSync(() => openSealedSession(FUZZ_SESSION_KEY, changed))).toBe('ERR_CA_SESSION_UNKNOWN');
  });
});

describe('signed decision documents', () => {
  it('refuse a signature spelled with other spare bits in its last character (ERR_DECISION_MALFORMED)', async () => {
    const found = repoFile(
      'test',
      'fuzz',
      'corpus',
      'decision-jws',
      'finding-signature-spare-bits.txt',
    ).toString('latin1');
    const sig = found.slice(found.lastIndexOf('.') + 1);
    const canonical = `${found.slice(0, found.lastIndexOf('.') + 1)}${Buffer.from(sig, 'base64url').toString('base64url')}`;
    expect(canonical).not.toBe(found);
    const opts = {
      publicKey: fuzzDecisionKey().publicKey,
      trustDomain: 'factory.example',
      lastApplied: null,
      now: Date.UTC(2026, 11, 7),
    };
    await expect(verifyDecisions(canonical, opts)).resolves.toMatchObject({ kind: 'snapshot' });
    expect(await codeOf(verifyDecisions(found, opts))).toBe('ERR_DECISION_MALFORMED');
  });
});
