// The recorded swtpm vectors (test/vectors/tpm/*.json) replayed through the `tpm` method without a
// TPM: the positive path for each EK/AK combination, then each refusal made by mutating the data.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTpmMethod, ekSha256Of, parseQuoteAttest } from '../../../attestation/tpm/index.js';
import { fakeClock } from '../../../common/clock.js';
import { parseIdentity } from '../../../common/identity.js';
import { checkAttestationPolicy } from '../../../policies/index.js';
import { MemoryStore, codeOf, commitAll, context, csrKey, csrKeyFromSpki } from './fixtures.js';
import { METHOD_NAMES } from '../../../attestation/registry.js';
import { evidenceOf, type AttestationEvidence } from '../../../attestation/index.js';

const DIR = join(import.meta.dirname, '../../vectors/tpm');
const FILES = readdirSync(DIR).filter((f) => f.endsWith('.json'));

interface Vector {
  description: string;
  now: number;
  identity: string;
  policy: string;
  evidence: Record<string, string>;
  state: Record<string, unknown>;
  challenge: Record<string, unknown>;
  response: {
    secret: string;
    quote: string;
    signature: string;
    pcrs: { bank: string; values: Record<string, string> };
  };
  csrSpkiDer: string;
}

function load(file: string): Vector {
  return JSON.parse(readFileSync(join(DIR, file), 'utf8')) as Vector;
}

function setup(v: Vector, policyText = v.policy) {
  const clock = fakeClock(v.now);
  const store = new MemoryStore(clock);
  const method = createTpmMethod(checkAttestationPolicy(policyText, { methods: METHOD_NAMES }));
  const id = parseIdentity(v.identity);
  const csr = csrKeyFromSpki(Buffer.from(v.csrSpkiDer, 'base64'));
  const ctx = context(clock, store);
  // async, so a synchronous throw inside finish becomes a rejection codeOf can read
  const finish = async (
    over: Partial<Vector['response']> = {},
    state: unknown = v.state,
    key = csr,
    c = ctx,
  ) => method.finish(c, id, state, { ...v.response, ...over }, key);
  return { clock, store, method, id, csr, ctx, finish };
}

function flip(b64: string, at: number): string {
  const b = Buffer.from(b64, 'base64');
  const i = at < 0 ? b.length + at : at;
  b[i] = (b[i] ?? 0) ^ 0x01;
  return b.toString('base64');
}

it('has the four recorded vectors', () => {
  expect(FILES.sort()).toEqual([
    'ecc-ek-ecc-ak.json',
    'ecc256-ek-ecc-ak.json',
    'rsa-ek-ecc-ak.json',
    'rsa-ek-rsa-ak.json',
  ]);
});

/** The vector's policy without its EK allow-list. */
function withoutAllowList(policy: string): string {
  return policy.replace(/ {2}allow:\n( {4}- sha256: "[0-9a-f]{64}"\n)+/, '');
}

describe.each(FILES)('recorded vector %s', (file) => {
  const v = load(file);

  it('begins: EK chain, AK attributes, credential and nonce', async () => {
    const { method, id, ctx } = setup(v);
    const b = await method.begin(ctx, id, v.evidence);
    expect(Object.keys(b.challenge).sort()).toEqual([
      'credentialBlob',
      'encryptedSecret',
      'expiresAt',
      'nonce',
      'pcrSelection',
    ]);
    expect(b.challenge['pcrSelection']).toEqual({ bank: 'sha256', pcrs: [0, 1, 2, 3, 4, 5, 6, 7] });
    expect(Buffer.from(b.challenge['nonce'] as string, 'base64')).toHaveLength(16);
  });

  it('finishes and commits the EK binding and the single-use markers', async () => {
    const { finish, store, id } = setup(v);
    const verdict = await finish();
    expect(verdict).toMatchObject({ method: 'tpm', identity: v.identity });
    expect(verdict.facts['ekSha256']).toBe(
      ekSha256Of(Buffer.from(v.evidence['ekPublic'] as string, 'base64')),
    );
    await commitAll(store, verdict.commit?.bind(verdict));
    expect(await store.findBindingByHardware('tpm', String(verdict.facts['ekSha256']))).toBe(id.uri);
    expect(await store.getBinding(id.uri, 'tpm')).toMatchObject({
      ekTrust: v.state['ekTrust'],
      akName: v.state['akName'],
    });
    expect(v.state['ekTrust']).toBe(v.evidence['ekCertificate'] ? 'certificate' : 'allow-list');
    expect(await codeOf(finish())).toBe('ERR_ATT_TPM_NONCE_REPLAYED');
  });

  it('refuses a wrong activated secret (ERR_ATT_TPM_ACTIVATION_FAILED)', async () => {
    const { finish } = setup(v);
    expect(await codeOf(finish({ secret: flip(v.response.secret, 0) }))).toBe(
      'ERR_ATT_TPM_ACTIVATION_FAILED',
    );
    expect(await codeOf(finish({ secret: Buffer.alloc(31).toString('base64') }))).toBe(
      'ERR_ATT_TPM_ACTIVATION_FAILED',
    );
  });

  it('refuses an expired nonce (ERR_ATT_TPM_NONCE_EXPIRED), accepting it up to the last millisecond', async () => {
    const { finish, clock } = setup(v);
    clock.set(v.state['expiresAt'] as number);
    await expect(finish()).resolves.toBeTruthy();
    clock.advance(1);
    expect(await codeOf(finish())).toBe('ERR_ATT_TPM_NONCE_EXPIRED');
  });

  it('refuses a quote over another nonce (ERR_ATT_TPM_NONCE_MISMATCH)', async () => {
    const { finish } = setup(v);
    const state = { ...v.state, nonce: flip(v.state['nonce'] as string, 3) };
    expect(await codeOf(finish({}, state))).toBe('ERR_ATT_TPM_NONCE_MISMATCH');
  });

  it('refuses a CSR key other than the quoted one (ERR_ATT_TPM_CSR_KEY_MISMATCH)', async () => {
    const { finish } = setup(v);
    expect(await codeOf(finish({}, v.state, csrKey()))).toBe('ERR_ATT_TPM_CSR_KEY_MISMATCH');
  });

  it('refuses a flipped byte anywhere in the quote (ERR_ATT_TPM_QUOTE_SIGNATURE)', async () => {
    const { finish } = setup(v);
    const len = Buffer.from(v.response.quote, 'base64').length;
    for (let i = 0; i < len; i += 7) {
      expect(await codeOf(finish({ quote: flip(v.response.quote, i) }))).toBe('ERR_ATT_TPM_QUOTE_SIGNATURE');
    }
  });

  it('refuses a flipped byte in the signature value (ERR_ATT_TPM_QUOTE_SIGNATURE)', async () => {
    const { finish } = setup(v);
    expect(await codeOf(finish({ signature: flip(v.response.signature, -1) }))).toBe(
      'ERR_ATT_TPM_QUOTE_SIGNATURE',
    );
    expect(await codeOf(finish({ signature: flip(v.response.signature, 8) }))).toBe(
      'ERR_ATT_TPM_QUOTE_SIGNATURE',
    );
  });

  it('refuses a truncated or padded signature structure with a coded error', async () => {
    const { finish } = setup(v);
    const sig = Buffer.from(v.response.signature, 'base64');
    const padded = Buffer.concat([sig, Buffer.from([0])]).toString('base64');
    expect(await codeOf(finish({ signature: padded }))).toBe('ERR_ATT_TPM_STRUCTURE_MALFORMED');
    const cut = sig.subarray(0, sig.length - 1).toString('base64');
    expect(await codeOf(finish({ signature: cut }))).toBe('ERR_ATT_TPM_STRUCTURE_MALFORMED');
  });

  it('refuses PCR values supplied but not quoted (ERR_ATT_TPM_PCR_NOT_QUOTED)', async () => {
    const { finish } = setup(v);
    const values = { ...v.response.pcrs.values, '10': Buffer.alloc(32).toString('base64') };
    expect(await codeOf(finish({ pcrs: { bank: 'sha256', values } }))).toBe('ERR_ATT_TPM_PCR_NOT_QUOTED');
    expect(await codeOf(finish({ pcrs: { bank: 'sha384', values: {} } }))).toBe('ERR_ATT_TPM_PCR_SELECTION');
  });

  it('refuses PCR values that do not hash to the quoted digest (ERR_ATT_TPM_PCR_DIGEST)', async () => {
    const { finish } = setup(v);
    const values = { ...v.response.pcrs.values, '0': Buffer.alloc(32, 1).toString('base64') };
    expect(await codeOf(finish({ pcrs: { bank: 'sha256', values } }))).toBe('ERR_ATT_TPM_PCR_DIGEST');
    const fewer = Object.fromEntries(Object.entries(v.response.pcrs.values).filter(([k]) => k !== '7'));
    expect(await codeOf(finish({ pcrs: { bank: 'sha256', values: fewer } }))).toBe('ERR_ATT_TPM_PCR_DIGEST');
  });

  it('refuses quoted PCRs that differ from the golden values (ERR_ATT_TPM_PCR_MISMATCH)', async () => {
    const policy = v.policy.replace(/ {8}7: "[0-9a-f]{64}"/, `        7: "${'ab'.repeat(32)}"`);
    expect(policy).not.toBe(v.policy);
    const { finish } = setup(v, policy);
    expect(await codeOf(finish())).toBe('ERR_ATT_TPM_PCR_MISMATCH');
    // A list of acceptable values admits the device again.
    const either = v.policy.replace(/ {8}7: ("[0-9a-f]{64}")/, `        7: ["${'ab'.repeat(32)}", $1]`);
    await expect(setup(v, either).finish()).resolves.toBeTruthy();
  });

  it('refuses a quote that does not select the policy PCRs (ERR_ATT_TPM_PCR_SELECTION)', async () => {
    const policy = v.policy.replace(/( {8}7: "[0-9a-f]{64}")/, `$1\n        8: "${'00'.repeat(32)}"`);
    const { finish } = setup(v, policy);
    expect(await codeOf(finish())).toBe('ERR_ATT_TPM_PCR_SELECTION');
  });

  it('refuses a replayed quote in a new session (ERR_ATT_TPM_QUOTE_REPLAYED)', async () => {
    const { finish, store } = setup(v);
    const verdict = await finish();
    await commitAll(store, verdict.commit?.bind(verdict));
    const state = { ...v.state, nonce: Buffer.alloc(16, 9).toString('base64') };
    expect(await codeOf(finish({}, state))).toBe('ERR_ATT_TPM_QUOTE_REPLAYED');
  });

  it('refuses a TPM whose reset/restart counters or clock went backwards (ERR_ATT_TPM_CLOCK_ROLLBACK)', async () => {
    const { finish, store, id } = setup(v);
    const verdict = await finish();
    const ek = String(verdict.facts['ekSha256']);
    const base = { ekSha256: ek, ekTrust: 'certificate', akName: 'x', firmwareVersion: '0' };
    const ci = parseQuoteAttest(Buffer.from(v.response.quote, 'base64')).clockInfo;
    const at = (resetCount: number, restartCount: number, clock: bigint) => ({
      resetCount,
      restartCount,
      clock: clock.toString(),
    });
    const cases = [
      at(ci.resetCount + 1, 0, 0n),
      at(ci.resetCount, ci.restartCount + 1, 0n),
      at(ci.resetCount, ci.restartCount, ci.clock),
      at(ci.resetCount, ci.restartCount, ci.clock + 1n),
    ];
    for (const c of cases) {
      await store.putBinding(id.uri, 'tpm', ek, { ...base, ...c });
      expect(await codeOf(finish())).toBe('ERR_ATT_TPM_CLOCK_ROLLBACK');
    }
    await store.putBinding(id.uri, 'tpm', ek, {
      ...base,
      ...at(ci.resetCount, ci.restartCount, ci.clock - 1n),
    });
    await expect(finish()).resolves.toBeTruthy();
  });

  it('refuses another TPM for a bound identity and this TPM for another identity', async () => {
    const { finish, store, id, method, ctx } = setup(v);
    const verdict = await finish();
    await store.putBinding(id.uri, 'tpm', 'f'.repeat(64), {
      ekSha256: 'f'.repeat(64),
      resetCount: 0,
      restartCount: 0,
      clock: '0',
    });
    expect(await codeOf(async () => method.begin(ctx, id, v.evidence))).toBe('ERR_ATT_TPM_IDENTITY_BOUND');
    expect(await codeOf(() => commitAll(store, verdict.commit?.bind(verdict)))).toBe(
      'ERR_ATT_TPM_IDENTITY_BOUND',
    );
    store.release(id.uri, 'tpm');
    await store.putBinding('spiffe://factory.example/node/other', 'tpm', String(verdict.facts['ekSha256']), {
      ekSha256: verdict.facts['ekSha256'],
    });
    expect(await codeOf(async () => method.begin(ctx, id, v.evidence))).toBe('ERR_ATT_TPM_EK_BOUND');
  });

  it('refuses a renewal for an identity not enrolled with a TPM (ERR_ATT_TPM_NOT_ENROLLED)', async () => {
    const { method, id, clock, store } = setup(v);
    expect(await codeOf(async () => method.begin(context(clock, store, true), id, v.evidence))).toBe(
      'ERR_ATT_TPM_NOT_ENROLLED',
    );
  });

  it('refuses identities without a tpm rule (ERR_ATT_TPM_NO_POLICY)', async () => {
    const { method, ctx } = setup(v);
    const other = parseIdentity('spiffe://factory.example/device/d1');
    expect(await codeOf(async () => method.begin(ctx, other, v.evidence))).toBe('ERR_ATT_TPM_NO_POLICY');
  });

  it('refuses an EK without certificate unless allow-listed, and a certificate of another EK', async () => {
    const strict = setup(v, withoutAllowList(v.policy));
    const noCert = Object.fromEntries(Object.entries(v.evidence).filter(([k]) => k !== 'ekCertificate'));
    expect(await codeOf(async () => strict.method.begin(strict.ctx, strict.id, noCert))).toBe(
      'ERR_ATT_TPM_EK_UNTRUSTED',
    );
    const hash = ekSha256Of(Buffer.from(v.evidence['ekPublic'] as string, 'base64'));
    const allowed = withoutAllowList(v.policy).replace(
      'ek:\n',
      `ek:\n  allow:\n    - sha256: "${hash}"\n      note: lab board\n`,
    );
    const s2 = setup(v, allowed);
    const b = await s2.method.begin(s2.ctx, s2.id, noCert);
    expect(b.state).toMatchObject({ ekTrust: 'allow-list' });
    // A certificate for another EK is refused, allow-listed or not.
    const foreign = FILES.map(load).find(
      (o) => o.evidence['ekCertificate'] && o.evidence['ekPublic'] !== v.evidence['ekPublic'],
    );
    const foreignCert = { ...v.evidence, ekCertificate: foreign?.evidence['ekCertificate'] as string };
    for (const s of [strict, s2]) {
      expect(await codeOf(async () => s.method.begin(s.ctx, s.id, foreignCert))).toBe(
        'ERR_ATT_TPM_EK_CERT_MISMATCH',
      );
    }
  });

  it('refuses an EK certificate before its validity period (ERR_ATT_TPM_EK_UNTRUSTED)', async () => {
    const { method, ctx, id, clock } = setup(v, withoutAllowList(v.policy));
    clock.set(v.now - 3_600_000);
    // Without a certificate and allow-list the EK is untrusted at any time.
    expect(await codeOf(async () => method.begin(ctx, id, v.evidence))).toBe('ERR_ATT_TPM_EK_UNTRUSTED');
  });

  it('refuses AK and EK public areas with other attributes', async () => {
    const { method, ctx, id } = setup(v);
    // objectAttributes sit at offset 2 (size) + 2 (type) + 2 (nameAlg); bit 17 is decrypt.
    const withBit = (b64: string, bit: number): string => {
      const b = Buffer.from(b64, 'base64');
      b.writeUInt32BE((b.readUInt32BE(6) ^ (1 << bit)) >>> 0, 6);
      return b.toString('base64');
    };
    const akDecrypt = { ...v.evidence, akPublic: withBit(v.evidence['akPublic'] as string, 17) };
    expect(await codeOf(async () => method.begin(ctx, id, akDecrypt))).toBe('ERR_ATT_TPM_AK_ATTRIBUTES');
    for (const bit of [1, 4, 5, 16, 18]) {
      const ak = { ...v.evidence, akPublic: withBit(v.evidence['akPublic'] as string, bit) };
      expect(await codeOf(async () => method.begin(ctx, id, ak))).toBe('ERR_ATT_TPM_AK_ATTRIBUTES');
    }
    const ekSign = { ...v.evidence, ekPublic: withBit(v.evidence['ekPublic'] as string, 18) };
    expect(await codeOf(async () => method.begin(ctx, id, ekSign))).toBe('ERR_ATT_TPM_EK_ATTRIBUTES');
  });

  it('refuses malformed evidence and responses with coded errors', async () => {
    const { method, ctx, id, finish } = setup(v);
    const begin = (e: unknown) => codeOf(async () => method.begin(ctx, id, e));
    expect(await begin(null)).toBe('ERR_ATT_TPM_EVIDENCE_MALFORMED');
    expect(await begin({ ...v.evidence, extra: 'x' })).toBe('ERR_ATT_TPM_EVIDENCE_MALFORMED');
    expect(await begin(JSON.parse(`{"__proto__": {"x": 1}, "ekPublic": "${v.evidence['ekPublic']}"}`))).toBe(
      'ERR_ATT_TPM_EVIDENCE_MALFORMED',
    );
    expect(await begin({ ...v.evidence, akPublic: 'not base64!' })).toBe('ERR_ATT_TPM_EVIDENCE_MALFORMED');
    const ak = Buffer.from(v.evidence['akPublic'] as string, 'base64');
    expect(
      await begin({ ...v.evidence, akPublic: Buffer.concat([ak, Buffer.from([0])]).toString('base64') }),
    ).toBe('ERR_ATT_TPM_STRUCTURE_MALFORMED');
    expect(
      await codeOf(async () => method.finish(ctx, id, v.state, { ...v.response, more: 1 }, csrKey())),
    ).toBe('ERR_ATT_TPM_RESPONSE_MALFORMED');
    expect(await codeOf(finish({ pcrs: { bank: 'sha256', values: { '24': 'AA==' } } }))).toBe(
      'ERR_ATT_TPM_RESPONSE_MALFORMED',
    );
    expect(await codeOf(finish({ quote: '' }))).toBe('ERR_ATT_TPM_RESPONSE_MALFORMED');
  });
});

/** The evidence a refusal carries (attestation/method.ts withEvidence), or a note that it threw none. */
async function refusalEvidence(p: () => Promise<unknown>): Promise<AttestationEvidence | string> {
  try {
    await p();
  } catch (err) {
    return evidenceOf(err) ?? `no evidence on ${(err as { code?: string }).code ?? String(err)}`;
  }
  return 'no error';
}

describe.each(FILES)('evidence of recorded vector %s', (file) => {
  const v = load(file);
  const ekChain = v.state['ekTrust'] === 'allow-list' ? 'allow-listed' : 'passed';

  it('a verdict carries each check: EK chain, activation, quote signature, PCRs with equal digests', async () => {
    const verdict = await setup(v).finish();
    const ev = verdict.evidence ?? {};
    expect(ev).toMatchObject({
      ekChain,
      activation: 'passed',
      quoteSignature: 'passed',
      pcrBank: 'sha256',
      pcrSelection: [0, 1, 2, 3, 4, 5, 6, 7],
      pcrMismatch: [],
      pcrs: 'passed',
    });
    const quoted = parseQuoteAttest(Buffer.from(v.response.quote, 'base64')).pcrDigest.toString('hex');
    expect(ev.pcrQuotedDigest).toBe(quoted);
    expect(ev.pcrExpectedDigest).toBe(quoted);
  });

  it('a PCR mismatch names the PCR and the expected digest that differs from the quoted one', async () => {
    const policy = v.policy.replace(/ {8}7: "[0-9a-f]{64}"/, `        7: "${'ab'.repeat(32)}"`);
    const { finish } = setup(v, policy);
    const ev = await refusalEvidence(() => finish());
    expect(ev).toMatchObject({
      ekChain,
      activation: 'passed',
      quoteSignature: 'passed',
      pcrs: 'failed',
      pcrMismatch: [7],
    });
    const quoted = parseQuoteAttest(Buffer.from(v.response.quote, 'base64')).pcrDigest.toString('hex');
    expect(typeof ev === 'object' && ev.pcrQuotedDigest).toBe(quoted);
    expect(typeof ev === 'object' && ev.pcrExpectedDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(typeof ev === 'object' && ev.pcrExpectedDigest).not.toBe(quoted);
  });

  it('a bad quote signature stops before the PCRs; a wrong secret before the quote', async () => {
    const { finish } = setup(v);
    const badSig = await refusalEvidence(() => finish({ quote: flip(v.response.quote, 20) }));
    expect(badSig).toEqual({ ekChain, activation: 'passed', pcrBank: 'sha256', quoteSignature: 'failed' });
    const badSecret = await refusalEvidence(() => finish({ secret: flip(v.response.secret, 0) }));
    expect(badSecret).toEqual({ ekChain, activation: 'failed' });
  });

  it('an untrusted EK says so at begin', async () => {
    const strict = setup(v, withoutAllowList(v.policy));
    const noCert = Object.fromEntries(Object.entries(v.evidence).filter(([k]) => k !== 'ekCertificate'));
    expect(await refusalEvidence(async () => strict.method.begin(strict.ctx, strict.id, noCert))).toEqual({
      ekChain: 'failed',
    });
  });
});
