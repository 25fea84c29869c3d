// The attestation policy file: a complete valid policy, methodsFor, and each coded refusal.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { EdgewardError } from '../../common/errors.js';
import {
  DEFAULT_NONCE_TTL_MS,
  checkAttestationPolicy,
  describeAttestationPolicy,
  loadAttestationPolicy,
  methodsFor,
  ruleFor,
} from '../../policies/attestation-policy.js';
import { formatPcrPolicy } from '../../attestation/tpm/index.js';
import { openssl } from '../helpers/openssl.js';
import { createTestManufacturer, type TestManufacturer } from '../helpers/swtpm.js';
import { tempDir } from '../helpers/tmp.js';
import { METHOD_NAMES } from '../../attestation/index.js';

const dir = tempDir('edgeward-attpol-');
let maker: TestManufacturer;
const Z = '00'.repeat(32);

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    return err instanceof EdgewardError ? err.code : `uncoded ${String(err)}`;
  }
  return 'ok';
}

function policy(parts: { ek?: string; identities?: string } = {}): string {
  return [
    'version: 1',
    parts.ek ??
      `ek:\n  roots:\n    - file: root.pem\n  intermediates:\n    - file: ${maker.intermediateFile}`,
    parts.identities ??
      [
        'identities:',
        '  - pattern: spiffe://factory.example/node/*',
        '    methods: [tpm]',
        '    nonceTtl: 30s',
        '    tpm:',
        '      pcrBank: sha256',
        '      pcrs:',
        `        0: "${Z}"`,
        `        7: ["${Z}", "${'ff'.repeat(32)}"]`,
        '  - pattern: spiffe://factory.example/device/**',
        '    methods: [puf, token]',
      ].join('\n'),
  ].join('\n');
}

beforeAll(async () => {
  maker = await createTestManufacturer('Policy Test Vendor', join(dir, 'ca'));
  writeFileSync(join(dir, 'root.pem'), maker.rootPem);
});

describe('attestation policy', () => {
  it('loads a complete policy, resolving files next to it', () => {
    const file = join(dir, 'attestation.yaml');
    writeFileSync(file, policy());
    const p = loadAttestationPolicy(file, METHOD_NAMES);
    expect(p.ekRoots.map((c) => c.subject)).toEqual(['CN=Policy Test Vendor Root CA']);
    expect(p.ekIntermediates).toHaveLength(1);
    const node = ruleFor(p, 'spiffe://factory.example/node/n1');
    expect(node?.nonceTtlMs).toBe(30_000);
    expect(node?.tpm?.pcrBank).toBe('sha256');
    expect(node?.tpm?.pcrs.get(7)).toHaveLength(2);
    expect(Object.isFrozen(p)).toBe(true);
    expect(describeAttestationPolicy(p)).toBe(
      'attestation policy OK: 1 EK root(s), 1 intermediate(s), 0 allow-listed EK(s), 2 identity rule(s) (1 with golden PCRs)',
    );
  });

  it('answers methodsFor by the first matching pattern, empty when none matches', () => {
    const p = checkAttestationPolicy(policy(), { methods: METHOD_NAMES, baseDir: dir });
    expect(methodsFor(p, 'spiffe://factory.example/node/n1')).toEqual(['tpm']);
    expect(methodsFor(p, 'spiffe://factory.example/device/line1/d7')).toEqual(['puf', 'token']);
    expect(methodsFor(p, 'spiffe://factory.example/svc/siem')).toEqual([]);
    expect(methodsFor(p, 'spiffe://factory.example/node/a/b')).toEqual([]);
    expect(ruleFor(p, 'spiffe://factory.example/device/d1')?.nonceTtlMs).toBe(DEFAULT_NONCE_TTL_MS);
  });

  it('accepts inline PEM roots and an EK allow-list', () => {
    const pem = maker.rootPem
      .trim()
      .split('\n')
      .map((l) => `        ${l}`)
      .join('\n');
    const p = checkAttestationPolicy(
      policy({
        ek: `ek:\n  roots:\n    - pem: |\n${pem}\n  allow:\n    - sha256: "${'AB'.repeat(32)}"\n      note: lab board 7`,
      }),
      { methods: METHOD_NAMES },
    );
    expect(p.ekRoots).toHaveLength(1);
    expect(p.ekAllowList.has('ab'.repeat(32))).toBe(true);
  });

  it('takes the output of `policy pcrs` as a rule tpm section', () => {
    const section = formatPcrPolicy(
      'sha256',
      new Map([
        [0, Buffer.alloc(32)],
        [7, Buffer.alloc(32, 0xff)],
      ]),
      'golden PCRs',
    );
    const rule = ['identities:', '  - pattern: spiffe://factory.example/node/*', '    methods: [tpm]',
      ...section.trim().split('\n').map((l) => `    ${l}`)].join('\n'); // prettier-ignore
    const p = checkAttestationPolicy(policy({ identities: rule }), { methods: METHOD_NAMES, baseDir: dir });
    expect(ruleFor(p, 'spiffe://factory.example/node/x')?.tpm?.pcrs.get(7)?.[0]?.toString('hex')).toBe(
      'ff'.repeat(32),
    );
  });

  it.each([
    ['not YAML', 'version: 1\nidentities: [', 'ERR_POLICY_ATT_YAML'],
    ['duplicate keys', 'version: 1\nversion: 1\n', 'ERR_POLICY_ATT_YAML'],
    ['wrong version', 'version: 2\n', 'ERR_POLICY_ATT_SCHEMA'],
    ['a list at the top', '- 1\n', 'ERR_POLICY_ATT_SCHEMA'],
    ['an unknown top key', 'version: 1\nrootz: []\n', 'ERR_POLICY_ATT_UNKNOWN_KEY'],
    ['__proto__', 'version: 1\n__proto__: {x: 1}\n', 'ERR_POLICY_ATT_UNKNOWN_KEY'],
    [
      'a bad pattern',
      'version: 1\nidentities:\n  - pattern: node/*\n    methods: [token]\n',
      'ERR_POLICY_ATT_PATTERN',
    ],
    [
      'an unknown method',
      'version: 1\nidentities:\n  - pattern: spiffe://t.d/node/*\n    methods: [sgx]\n',
      'ERR_POLICY_ATT_METHOD',
    ],
    [
      'no methods',
      'version: 1\nidentities:\n  - pattern: spiffe://t.d/node/*\n    methods: []\n',
      'ERR_POLICY_ATT_METHOD',
    ],
    [
      'tpm without golden PCRs',
      'version: 1\nidentities:\n  - pattern: spiffe://t.d/node/*\n    methods: [tpm]\n',
      'ERR_POLICY_ATT_TPM_MISSING',
    ],
    [
      'a short PCR value',
      `version: 1\nidentities:\n  - pattern: spiffe://t.d/node/*\n    methods: [tpm]\n    tpm:\n      pcrs: {0: "00"}\n`,
      'ERR_POLICY_ATT_PCR',
    ],
    [
      'PCR 24',
      `version: 1\nidentities:\n  - pattern: spiffe://t.d/node/*\n    methods: [tpm]\n    tpm:\n      pcrs: {24: "${Z}"}\n`,
      'ERR_POLICY_ATT_PCR',
    ],
    [
      'an unknown bank',
      `version: 1\nidentities:\n  - pattern: spiffe://t.d/node/*\n    methods: [tpm]\n    tpm:\n      pcrBank: sha1\n      pcrs: {0: "${Z}"}\n`,
      'ERR_POLICY_ATT_PCR',
    ],
    [
      'empty PCRs',
      'version: 1\nidentities:\n  - pattern: spiffe://t.d/node/*\n    methods: [tpm]\n    tpm:\n      pcrs: {}\n',
      'ERR_POLICY_ATT_PCR',
    ],
    [
      'a bad TTL',
      'version: 1\nidentities:\n  - pattern: spiffe://t.d/node/*\n    methods: [token]\n    nonceTtl: soon\n',
      'ERR_POLICY_ATT_DURATION',
    ],
    [
      'a TTL too long',
      'version: 1\nidentities:\n  - pattern: spiffe://t.d/node/*\n    methods: [token]\n    nonceTtl: 1h\n',
      'ERR_POLICY_ATT_DURATION',
    ],
    ['a bad allow-list hash', 'version: 1\nek:\n  allow:\n    - sha256: abc\n', 'ERR_POLICY_ATT_ALLOWLIST'],
    [
      'a missing root file',
      'version: 1\nek:\n  roots:\n    - file: /nonexistent/root.pem\n',
      'ERR_POLICY_ATT_CERT',
    ],
    ['a root that is not PEM', 'version: 1\nek:\n  roots:\n    - pem: hello\n', 'ERR_POLICY_ATT_CERT'],
    ['both file and pem', 'version: 1\nek:\n  roots:\n    - {file: a, pem: b}\n', 'ERR_POLICY_ATT_SCHEMA'],
  ])('refuses %s', (_what, text, code) => {
    expect(codeOf(() => checkAttestationPolicy(text, { methods: METHOD_NAMES, baseDir: dir }))).toBe(code);
  });

  it('refuses a root that is not a CA certificate', () => {
    const leaf = join(dir, 'leaf.pem');
    openssl(['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'leaf.key'),
      '-out', leaf, '-subj', '/CN=not a CA', '-addext', 'basicConstraints=critical,CA:FALSE']); // prettier-ignore
    expect(
      codeOf(() =>
        checkAttestationPolicy(`version: 1\nek:\n  roots:\n    - file: ${leaf}\n`, { methods: METHOD_NAMES }),
      ),
    ).toBe('ERR_POLICY_ATT_CERT');
  });

  it('refuses a missing file with ERR_POLICY_ATT_FILE', () => {
    expect(codeOf(() => loadAttestationPolicy(join(dir, 'nope.yaml'), METHOD_NAMES))).toBe(
      'ERR_POLICY_ATT_FILE',
    );
  });
});
