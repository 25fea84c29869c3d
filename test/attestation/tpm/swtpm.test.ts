// The `tpm` method end to end at the method level against real software TPMs (swtpm + tpm2-tools):
// the positive paths for ECC and RSA EKs (which also prove our MakeCredential is what a real TPM
// activates) and every refusal the method makes, each with its own code. Two TPMs, set up once.
// EDGEWARD_RECORD_TPM_VECTORS=1 also rewrites test/vectors/tpm/*.json from the positive paths.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttestationMethod, CsrKey, Prover } from '../../../attestation/method.js';
import { fakeClock } from '../../../common/clock.js';
import { parseIdentity } from '../../../common/identity.js';
import {
  createTpmMethod,
  createTpmProver,
  ekSha256Of,
  makeCredential,
  objectName,
  parseTpm2bPublic,
  toTpm2ToolsCredentialFile,
} from '../../../attestation/tpm/index.js';
import { checkAttestationPolicy } from '../../../policies/index.js';
import { readReferencePcrs, runPolicyPcrsCommand } from '../../../attestation/tpm/pcrs.js';
import {
  createTestManufacturer,
  startSwtpm,
  type Swtpm,
  type TestManufacturer,
} from '../../helpers/swtpm.js';
import { MemoryStore, codeOf, commitAll, context, csrKey } from './fixtures.js';
import { METHOD_NAMES } from '../../../attestation/registry.js';

const run = promisify(execFile);
const RECORD = process.env['EDGEWARD_RECORD_TPM_VECTORS'] === '1';
const VECTORS = join(import.meta.dirname, '../../vectors/tpm');

const ID_A = parseIdentity('spiffe://factory.example/node/a');
const ID_B = parseIdentity('spiffe://factory.example/node/b');

let maker: TestManufacturer;
let tpmA: Swtpm;
let tpmB: Swtpm;
let proverA: Prover; // auto: the ECC (P-384) EK, ECC AK
let proverB: Prover; // the RSA EK (policy session auth), ECC AK
let evidenceA: Record<string, unknown>;
let evidenceB: Record<string, unknown>;
let golden: string;
let policyText: string;
let method: AttestationMethod;
const clock = fakeClock(Date.now());
const store = new MemoryStore(clock);
const ctx = context(clock, store);

function policyYaml(
  rootFile: string,
  intermediateFile: string,
  pcrSection: string,
  allow: string[] = [],
): string {
  return [
    'version: 1',
    'ek:',
    `  roots: [{ file: ${JSON.stringify(rootFile)} }]`,
    `  intermediates: [{ file: ${JSON.stringify(intermediateFile)} }]`,
    ...(allow.length ? ['  allow:', ...allow.map((h) => `    - sha256: "${h}"`)] : []),
    'identities:',
    '  - pattern: spiffe://factory.example/node/*',
    '    methods: [tpm]',
    '    nonceTtl: 60s',
    ...pcrSection
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => `    ${l}`),
  ].join('\n');
}

async function round(
  m: AttestationMethod,
  prover: Prover,
  evidence: Record<string, unknown>,
  id = ID_A,
  key: CsrKey = csrKey(),
): Promise<{
  state: unknown;
  challenge: Record<string, unknown>;
  response: Record<string, unknown>;
  key: CsrKey;
}> {
  const b = await m.begin(ctx, id, evidence);
  const response = await prover.respond(b.challenge, key);
  return { state: b.state, challenge: b.challenge, response, key };
}

function record(name: string, data: Record<string, unknown>): void {
  if (!RECORD) return;
  mkdirSync(VECTORS, { recursive: true });
  writeFileSync(join(VECTORS, `${name}.json`), `${JSON.stringify(data, null, 2)}\n`);
}

beforeAll(async () => {
  maker = await createTestManufacturer();
  [tpmA, tpmB] = await Promise.all([startSwtpm(maker), startSwtpm(maker)]);
  clock.set(Date.now() + 1000); // EK certificates are valid from their (whole) second of issue
  golden = await readReferencePcrs({ tcti: tpmA.tcti, pcrs: [0, 1, 2, 3, 4, 5, 6, 7] });
  policyText = policyYaml(maker.rootFile, maker.intermediateFile, golden);
  method = createTpmMethod(checkAttestationPolicy(policyText, { methods: METHOD_NAMES }));
  proverA = createTpmProver({ tcti: tpmA.tcti });
  proverB = createTpmProver({ tcti: tpmB.tcti, ek: 'rsa' });
  [evidenceA, evidenceB] = await Promise.all([proverA.evidence(), proverB.evidence()]);
});

afterAll(async () => {
  await proverA?.close?.();
  await proverB?.close?.();
  await tpmA?.stop();
  await tpmB?.stop();
});

describe('tpm method against swtpm', () => {
  it('the reference PCR helper prints the policy format', () => {
    expect(golden).toMatch(/^# golden PCRs read from swtpm:/);
    expect(golden).toContain('tpm:\n  pcrBank: sha256\n  pcrs:\n    0: "');
    expect(golden.match(/^ {4}\d: "[0-9a-f]{64}"$/gm)).toHaveLength(8);
  });

  it('`policy pcrs` reads the chosen PCRs, and refuses bad options', async () => {
    const out: string[] = [];
    expect(await runPolicyPcrsCommand(['--tcti', tpmA.tcti, '--pcrs', '7,0'], (s) => out.push(s))).toBe(0);
    expect(out.join('\n')).toMatch(/\n {4}0: "0{64}"\n {4}7: "0{64}"$/);
    await expect(
      runPolicyPcrsCommand(['--tcti', tpmA.tcti, '--pcrs', '0,24'], () => undefined),
    ).rejects.toThrow(/0\.\.23/);
    await expect(runPolicyPcrsCommand(['--bank', 'sha256'], () => undefined)).rejects.toThrow(
      /missing --tcti/,
    );
    await expect(
      runPolicyPcrsCommand(['--tcti', tpmA.tcti, '--bank', 'md5'], () => undefined),
    ).rejects.toThrow(/--bank/);
  });

  it('enrolls with the ECC EK: our ECC MakeCredential is activated by the real TPM', async () => {
    const r = await round(method, proverA, evidenceA);
    const v = await method.finish(ctx, ID_A, r.state, r.response, r.key);
    expect(v.facts).toMatchObject({
      ekTrust: 'certificate',
      akType: 'ecc',
      pcrBank: 'sha256',
      pcrs: '0,1,2,3,4,5,6,7',
    });
    await commitAll(store, v.commit?.bind(v));
    expect(await store.findBindingByHardware('tpm', String(v.facts['ekSha256']))).toBe(ID_A.uri);
    record(
      'ecc-ek-ecc-ak',
      vector(
        'swtpm ECC NIST P-384 EK (template H-3, persistent 0x81010016), ECC P-256 AK',
        r,
        ID_A.uri,
        evidenceA,
      ),
    );
  });

  it('enrolls with the RSA EK: our RSA MakeCredential (OAEP "IDENTITY") is activated by the real TPM', async () => {
    const r = await round(method, proverB, evidenceB, ID_B);
    const v = await method.finish(ctx, ID_B, r.state, r.response, r.key);
    expect(v.facts).toMatchObject({ ekTrust: 'certificate', akType: 'ecc' });
    await commitAll(store, v.commit?.bind(v));
    record(
      'rsa-ek-ecc-ak',
      vector('swtpm RSA 2048 EK (template L-1, persistent 0x81010001), ECC P-256 AK', r, ID_B.uri, evidenceB),
    );
  });

  it('enrolls with an RSA AK (RSASSA-SHA256 quote)', async () => {
    const prover = createTpmProver({ tcti: tpmB.tcti, ek: 'rsa', ak: 'rsa' });
    try {
      const evidence = await prover.evidence();
      const r = await round(method, prover, evidence, ID_B);
      const v = await method.finish(ctx, ID_B, r.state, r.response, r.key);
      expect(v.facts['akType']).toBe('rsa');
      await commitAll(store, v.commit?.bind(v));
      record(
        'rsa-ek-rsa-ak',
        vector('swtpm RSA 2048 EK (template L-1), RSA 2048 AK (RSASSA-SHA256)', r, ID_B.uri, evidence),
      );
    } finally {
      await prover.close?.();
    }
  });

  it('tpm2_activatecredential recovers a secret wrapped by makeCredential for both EKs of one TPM', async () => {
    // Directly, without the method: wrap for the AK of TPM A under each EK handle, activate with tools.
    const dir = join(tpmA.stateDir, '..');
    const env = { ...process.env, TPM2TOOLS_TCTI: tpmA.tcti };
    const t = async (args: string[]): Promise<void> => {
      await run(args[0] as string, args.slice(1), { cwd: dir, env });
      await run('tpm2_flushcontext', ['-t'], { cwd: dir, env });
    };
    await t(['tpm2_create', '-C', '0x81010016', '-G', 'ecc256:ecdsa-sha256:null', '-g', 'sha256', '-a',
      'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign', '-u', 'k.pub', '-r', 'k.priv']); // prettier-ignore
    await t(['tpm2_load', '-C', '0x81010016', '-u', 'k.pub', '-r', 'k.priv', '-c', 'k.ctx']);
    const { readFile } = await import('node:fs/promises');
    const ak = parseTpm2bPublic(await readFile(join(dir, 'k.pub')));
    for (const handle of ['0x81010016', '0x81010001']) {
      await t(['tpm2_readpublic', '-c', handle, '-o', 'ek.pub']);
      const ek = parseTpm2bPublic(await readFile(join(dir, 'ek.pub')));
      const secret = Buffer.from(`secret for ${handle} ${Math.random()}`.slice(0, 32));
      writeFileSync(
        join(dir, 'c.bin'),
        toTpm2ToolsCredentialFile(makeCredential(ek, objectName(ak), secret)),
      );
      if (handle === '0x81010001') {
        await run('tpm2_startauthsession', ['--policy-session', '-S', 's.ctx'], { cwd: dir, env });
        await run('tpm2_policysecret', ['-S', 's.ctx', '-c', 'e'], { cwd: dir, env });
        await t([
          'tpm2_activatecredential',
          '-c',
          'k.ctx',
          '-C',
          handle,
          '-i',
          'c.bin',
          '-o',
          'out.bin',
          '-P',
          'session:s.ctx',
        ]);
        await run('tpm2_flushcontext', ['s.ctx'], { cwd: dir, env });
      } else {
        await t(['tpm2_activatecredential', '-c', 'k.ctx', '-C', handle, '-i', 'c.bin', '-o', 'out.bin']);
      }
      expect((await readFile(join(dir, 'out.bin'))).equals(secret)).toBe(true);
    }
  });

  it('enrolls an allow-listed ECC P-256 EK (template L-2, no certificate) with ekHandle', async () => {
    const env = { ...process.env, TPM2TOOLS_TCTI: tpmB.tcti };
    await run(
      'tpm2_createek',
      ['-G', 'ecc', '-c', '0x81010002', '-u', join(tpmB.stateDir, '..', 'ek256.pub')],
      { env },
    );
    await run('tpm2_flushcontext', ['-t'], { env });
    const prover = createTpmProver({ tcti: tpmB.tcti, ekHandle: '0x81010002' });
    const id = parseIdentity('spiffe://factory.example/node/p256');
    try {
      const evidence = await prover.evidence();
      expect(evidence['ekCertificate']).toBeUndefined();
      expect(await codeOf(async () => method.begin(ctx, id, evidence))).toBe('ERR_ATT_TPM_EK_UNTRUSTED');
      const hash = ekSha256Of(Buffer.from(evidence['ekPublic'] as string, 'base64'));
      const allowing = createTpmMethod(
        checkAttestationPolicy(policyYaml(maker.rootFile, maker.intermediateFile, golden, [hash]), {
          methods: METHOD_NAMES,
        }),
      );
      const r = await round(allowing, prover, evidence, id);
      const v = await allowing.finish(ctx, id, r.state, r.response, r.key);
      expect(v.facts).toMatchObject({ ekTrust: 'allow-list', ekSha256: hash });
      await commitAll(store, v.commit?.bind(v));
      record(
        'ecc256-ek-ecc-ak',
        vector(
          'swtpm ECC NIST P-256 EK (template L-2, persisted at 0x81010002 by the test, allow-listed), ECC P-256 AK',
          r,
          id.uri,
          evidence,
          [hash],
        ),
      );
    } finally {
      await prover.close?.();
    }
  });

  it('leaves no transient object loaded in the TPM, and refuses a malformed challenge', async () => {
    const env = { ...process.env, TPM2TOOLS_TCTI: tpmA.tcti };
    const { stdout } = await run('tpm2_getcap', ['handles-transient'], { env });
    expect(stdout.trim()).toBe('');
    const b = await method.begin(ctx, ID_A, evidenceA);
    expect(await codeOf(proverA.respond({ ...b.challenge, nonce: 'AAAA' }, csrKey()))).toBe(
      'ERR_ATT_TPM_CHALLENGE_MALFORMED',
    );
    expect(
      await codeOf(
        proverA.respond({ ...b.challenge, pcrSelection: { bank: 'sha256', pcrs: [0, 0] } }, csrKey()),
      ),
    ).toBe('ERR_ATT_TPM_CHALLENGE_MALFORMED');
  });

  it('renews a bound identity with a fresh quote', async () => {
    const renew = context(clock, store, true);
    const b = await method.begin(renew, ID_A, evidenceA);
    const key = csrKey();
    const v = await method.finish(renew, ID_A, b.state, await proverA.respond(b.challenge, key), key);
    expect(v.facts['renewal']).toBe(true);
    await commitAll(store, v.commit?.bind(v));
  });

  it('refuses an EK from an untrusted manufacturer (ERR_ATT_TPM_EK_UNTRUSTED)', async () => {
    const other = await createTestManufacturer('Some Other TPM Vendor');
    const m = createTpmMethod(
      checkAttestationPolicy(policyYaml(other.rootFile, other.intermediateFile, golden), {
        methods: METHOD_NAMES,
      }),
    );
    expect(await codeOf(async () => m.begin(ctx, ID_A, evidenceA))).toBe('ERR_ATT_TPM_EK_UNTRUSTED');
  });

  it('refuses an AK from a different TPM than the EK: activation fails (ERR_ATT_TPM_ACTIVATION_FAILED)', async () => {
    const mixed = { ...evidenceA, akPublic: evidenceB['akPublic'] }; // EK of A, AK of B
    const b = await method.begin(ctx, ID_A, mixed);
    const key = csrKey();
    // Neither TPM can activate it: A lacks the AK, B lacks the EK.
    expect(await codeOf(proverA.respond(b.challenge, key))).toBe('ERR_ATT_TPM_TOOL_FAILED');
    expect(await codeOf(proverB.respond(b.challenge, key))).toBe('ERR_ATT_TPM_TOOL_FAILED');
    // What B can still produce (a valid quote by its AK) with a guessed secret is refused.
    const honest = await round(method, proverB, evidenceB, ID_B, key);
    const forged = { ...honest.response, secret: Buffer.alloc(32, 7).toString('base64') };
    expect(await codeOf(async () => method.finish(ctx, ID_A, b.state, forged, key))).toBe(
      'ERR_ATT_TPM_ACTIVATION_FAILED',
    );
  });

  it('refuses a wrong nonce (ERR_ATT_TPM_NONCE_MISMATCH)', async () => {
    const b = await method.begin(ctx, ID_A, evidenceA);
    const key = csrKey();
    const tampered = { ...b.challenge, nonce: Buffer.alloc(16, 1).toString('base64') };
    const response = await proverA.respond(tampered, key);
    expect(await codeOf(async () => method.finish(ctx, ID_A, b.state, response, key))).toBe(
      'ERR_ATT_TPM_NONCE_MISMATCH',
    );
  });

  it('refuses an expired nonce (ERR_ATT_TPM_NONCE_EXPIRED)', async () => {
    const r = await round(method, proverA, evidenceA);
    clock.advance(60_001);
    expect(await codeOf(async () => method.finish(ctx, ID_A, r.state, r.response, r.key))).toBe(
      'ERR_ATT_TPM_NONCE_EXPIRED',
    );
  });

  it('refuses a replayed nonce and a replayed quote (ERR_ATT_TPM_NONCE_REPLAYED, ERR_ATT_TPM_QUOTE_REPLAYED)', async () => {
    const r = await round(method, proverA, evidenceA);
    const v = await method.finish(ctx, ID_A, r.state, r.response, r.key);
    await commitAll(store, v.commit?.bind(v));
    expect(await codeOf(async () => method.finish(ctx, ID_A, r.state, r.response, r.key))).toBe(
      'ERR_ATT_TPM_NONCE_REPLAYED',
    );
    // A new session, activated honestly, but carrying the old quote.
    const again = await round(method, proverA, evidenceA, ID_A, r.key);
    const replay = {
      ...again.response,
      quote: r.response['quote'],
      signature: r.response['signature'],
      pcrs: r.response['pcrs'],
    };
    expect(await codeOf(async () => method.finish(ctx, ID_A, again.state, replay, r.key))).toBe(
      'ERR_ATT_TPM_QUOTE_REPLAYED',
    );
  });

  it('refuses PCR values supplied but not quoted (ERR_ATT_TPM_PCR_NOT_QUOTED)', async () => {
    const r = await round(method, proverA, evidenceA);
    const pcrs = r.response['pcrs'] as { bank: string; values: Record<string, string> };
    const extra = {
      ...r.response,
      pcrs: { bank: pcrs.bank, values: { ...pcrs.values, '8': Buffer.alloc(32).toString('base64') } },
    };
    expect(await codeOf(async () => method.finish(ctx, ID_A, r.state, extra, r.key))).toBe(
      'ERR_ATT_TPM_PCR_NOT_QUOTED',
    );
  });

  it('refuses a flipped byte in the quote or in the signature (ERR_ATT_TPM_QUOTE_SIGNATURE)', async () => {
    const r = await round(method, proverA, evidenceA);
    for (const field of ['quote', 'signature']) {
      const raw = Buffer.from(r.response[field] as string, 'base64');
      raw[raw.length - 5] = (raw[raw.length - 5] ?? 0) ^ 0x01;
      const bad = { ...r.response, [field]: raw.toString('base64') };
      expect(await codeOf(async () => method.finish(ctx, ID_A, r.state, bad, r.key))).toBe(
        'ERR_ATT_TPM_QUOTE_SIGNATURE',
      );
    }
  });

  it('refuses a CSR key swapped after the quote (ERR_ATT_TPM_CSR_KEY_MISMATCH)', async () => {
    const r = await round(method, proverA, evidenceA);
    expect(await codeOf(async () => method.finish(ctx, ID_A, r.state, r.response, csrKey()))).toBe(
      'ERR_ATT_TPM_CSR_KEY_MISMATCH',
    );
  });

  it('refuses the same identity from another TPM (ERR_ATT_TPM_IDENTITY_BOUND), also when both raced, and a bound TPM for another identity (ERR_ATT_TPM_EK_BOUND)', async () => {
    expect(await codeOf(async () => method.begin(ctx, ID_A, evidenceB))).toBe('ERR_ATT_TPM_IDENTITY_BOUND');
    // Two fresh enrollments of one new identity from two TPMs: the second commit is refused.
    const id = parseIdentity('spiffe://factory.example/node/race');
    expect(await codeOf(async () => method.begin(ctx, id, evidenceA))).toBe('ERR_ATT_TPM_EK_BOUND');
    // TPM A and B are bound to node/a and node/b already: release them (as an admin would) so
    // only the race matters.
    store.release(ID_A.uri, 'tpm');
    store.release(ID_B.uri, 'tpm');
    const onA = await round(method, proverA, evidenceA, id);
    const onB = await round(method, proverB, evidenceB, id);
    const vA = await method.finish(ctx, id, onA.state, onA.response, onA.key);
    const vB = await method.finish(ctx, id, onB.state, onB.response, onB.key);
    await commitAll(store, vA.commit?.bind(vA));
    expect(await codeOf(() => commitAll(store, vB.commit?.bind(vB)))).toBe('ERR_ATT_TPM_IDENTITY_BOUND');
  });

  it('refuses a PCR extended after the golden values were taken (ERR_ATT_TPM_PCR_MISMATCH)', async () => {
    const id = parseIdentity('spiffe://factory.example/node/race');
    await run('tpm2_pcrextend', [`7:sha256=${'ab'.repeat(32)}`], {
      env: { ...process.env, TPM2TOOLS_TCTI: tpmA.tcti },
    });
    const r = await round(method, proverA, evidenceA, id);
    expect(await codeOf(async () => method.finish(ctx, id, r.state, r.response, r.key))).toBe(
      'ERR_ATT_TPM_PCR_MISMATCH',
    );
  });
});

function vector(
  description: string,
  r: Awaited<ReturnType<typeof round>>,
  identity: string,
  evidence: Record<string, unknown>,
  allow: string[] = [],
): Record<string, unknown> {
  const indent = (pem: string): string =>
    pem
      .trim()
      .split('\n')
      .map((l) => `        ${l}`)
      .join('\n');
  const policy = [
    'version: 1',
    'ek:',
    '  roots:',
    '    - pem: |',
    indent(maker.rootPem),
    '  intermediates:',
    '    - pem: |',
    indent(maker.intermediatePem),
    ...(allow.length ? ['  allow:', ...allow.map((h) => `    - sha256: "${h}"`)] : []),
    'identities:',
    '  - pattern: spiffe://factory.example/node/*',
    '    methods: [tpm]',
    '    nonceTtl: 60s',
    ...golden
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => `    ${l}`),
    '',
  ].join('\n');
  return {
    description,
    provenance:
      'recorded from swtpm 0.7.1 + tpm2-tools 5.4 by test/attestation/tpm/swtpm.test.ts with EDGEWARD_RECORD_TPM_VECTORS=1',
    now: clock.now(),
    identity,
    policy,
    evidence,
    state: r.state,
    challenge: r.challenge,
    response: r.response,
    csrSpkiDer: r.key.spkiDer.toString('base64'),
  };
}
