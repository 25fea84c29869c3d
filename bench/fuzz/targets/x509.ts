// The DER reader, the PEM reader, CSRs, the agent's CRL reader and EK certificate chains, seeded
// with certificates, CSRs and CRLs made by openssl and by the CA's own writer, and with the swtpm
// EK certificates of the recorded vectors.
import type { X509Certificate } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { verifyEkChain, type EkChainResult } from '../../../attestation/tpm/index.js';
import { parseVerifiedCrl, type VerifiedCrl } from '../../../client/index.js';
import { csrDerFromText, parseCsr, type ParsedCsr } from '../../../common/csr.js';
import {
  children,
  oid,
  parseDer,
  readBitStringBytes,
  readBool,
  readOid,
  readSmallInt,
  smallInt,
  tlv,
  type Tlv,
} from '../../../common/der.js';
import { fromPem, fromPemAll, toPem } from '../../../common/pem.js';
import { checkAttestationPolicy } from '../../../policies/index.js';
import { METHOD_NAMES } from '../../../attestation/index.js';
import { OracleFailure, type FuzzTarget } from '../engine.js';
import { loadCorpus, validSamples, repoFile, repoRoot } from '../corpus.js';

const DER_DICT = [
  Buffer.from([0x30, 0x81]),
  Buffer.from([0x30, 0x82]),
  Buffer.from([0x30, 0x80]),
  Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x11]),
  Buffer.from([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
  Buffer.from([0x05, 0x00]),
  Buffer.from([0x01, 0x01, 0xff]),
  Buffer.from([0x02, 0x01, 0x00]),
  Buffer.from([0x03, 0x01, 0x00]),
  Buffer.from([0xa0, 0x00]),
  Buffer.from([0x84, 0xff, 0xff, 0xff, 0xff]),
  Buffer.from([0x1f]),
];

/** Every TLV of a tree, read the way the callers read them. */
function walk(t: Tlv, depth: number, out: { tlvs: number }): void {
  out.tlvs++;
  if (t.tag & 0x20) {
    for (const c of children(t, depth)) walk(c, depth + 1, out);
    return;
  }
  // Primitive values the readers interpret; their refusals are coded like the rest.
  if (t.tag === 0x06) readOid(t);
  else if (t.tag === 0x01) readBool(t);
  else if (t.tag === 0x02 && t.value.length <= 6) readSmallInt(t);
  else if (t.tag === 0x03 && t.value[0] === 0) readBitStringBytes(t);
}

/** Re-encodes a tree from its parts: the strict reader must have read canonical DER. */
function reencode(t: Tlv, depth: number): Buffer {
  if (!(t.tag & 0x20)) return tlv(t.tag, t.value);
  return tlv(t.tag, Buffer.concat(children(t, depth).map((c) => reencode(c, depth + 1))));
}

function checkPrimitives(t: Tlv, depth: number): void {
  if (t.tag & 0x20) {
    for (const c of children(t, depth)) checkPrimitives(c, depth + 1);
    return;
  }
  if (t.tag === 0x06) {
    const back = oid(readOid(t));
    if (!back.equals(t.raw)) throw new OracleFailure(`OID ${readOid(t)} re-encodes differently`);
  }
  if (t.tag === 0x02 && t.value.length <= 6 && !((t.value[0] ?? 0) & 0x80)) {
    const n = readSmallInt(t);
    if (readSmallInt(parseDer(smallInt(n))) !== n) throw new OracleFailure('INTEGER round trip');
  }
}

export const der: FuzzTarget<Tlv> = {
  name: 'der',
  about:
    'the DER reader (common/der.ts): parseDer, children to depth 32, readOid/readBool/readSmallInt/readBitStringBytes; re-encoding round trip',
  sources: ['common/der.ts'],
  codes: ['ERR_DER_MALFORMED'],
  dictionary: DER_DICT,
  maxBytes: 16 * 1024,
  seeds: () => loadCorpus('der'),
  generate(rng) {
    // Deep nesting and long-form lengths, which real samples never have.
    const depth = 1 + rng.below(40);
    let b: Buffer = Buffer.from([0x05, 0x00]);
    for (let i = 0; i < depth; i++) b = tlv(rng.pick([0x30, 0x31, 0xa0, 0xa3]), b);
    return b;
  },
  run(input) {
    const t = parseDer(input);
    walk(t, 0, { tlvs: 0 });
    return t;
  },
  accepted(input, t) {
    if (!reencode(t, 0).equals(input)) throw new OracleFailure('re-encoding differs from the input');
    checkPrimitives(t, 0);
  },
};

export const pem: FuzzTarget<Buffer[]> = {
  name: 'pem',
  about: 'the PEM reader (common/pem.ts): fromPemAll/fromPem for CERTIFICATE blocks; toPem round trip',
  sources: ['common/pem.ts'],
  codes: ['ERR_PEM_MALFORMED'],
  dictionary: [
    '-----BEGIN CERTIFICATE-----\n',
    '-----END CERTIFICATE-----',
    '-----BEGIN ',
    '-----',
    '\r\n',
    '\n',
    '=',
    '==',
    'A',
    '+/',
    ' ',
  ],
  maxBytes: 64 * 1024,
  seeds: () => [
    ...loadCorpus('der').map((d) => Buffer.from(toPem('CERTIFICATE', d))),
    Buffer.from(
      `text before\n${toPem('CERTIFICATE', Buffer.from([0x30, 0x00]))}between\n${toPem('CERTIFICATE', Buffer.from([0x05, 0x00]))}`,
    ),
    repoFile('test', 'fuzz', 'corpus', 'crl', '_issuer.pem'),
  ],
  run(input) {
    const text = input.toString('utf8');
    const all = fromPemAll(text, 'CERTIFICATE');
    if (all.length === 1) fromPem(text, 'CERTIFICATE');
    return all;
  },
  accepted(_input, blocks) {
    for (const b of blocks) {
      if (b.length === 0) continue;
      if (!fromPem(toPem('CERTIFICATE', b), 'CERTIFICATE').equals(b))
        throw new OracleFailure('toPem -> fromPem changed the bytes');
    }
  },
};

// ---- CSRs ----

const CSR_POLICY = { allow: ['ec-p256', 'ec-p384', 'rsa'] as const, rsaMinBits: 2048 };
let csrSeeds: Set<string> | undefined;

export const csr: FuzzTarget<ParsedCsr> = {
  name: 'csr',
  about:
    'CSR parsing and checks (common/csr.ts parseCsr: shape, key policy, signature, SANs, extensions); a mutated CSR must never verify',
  sources: ['common/csr.ts', 'common/der.ts', 'common/ip.ts'],
  codes: [
    'ERR_CA_CSR_MALFORMED',
    'ERR_CA_CSR_SIGNATURE',
    'ERR_CA_CSR_SANS',
    'ERR_CA_CSR_EXTENSION',
    'ERR_CA_CSR_CA_FLAG',
    'ERR_CA_WEAK_KEY',
    'ERR_INPUT_TOO_LARGE',
  ],
  dictionary: DER_DICT,
  maxBytes: 10 * 1024,
  seeds: () => loadCorpus('csr'),
  run: (input) => parseCsr(input, { allow: [...CSR_POLICY.allow], rsaMinBits: CSR_POLICY.rsaMinBits }),
  accepted(input) {
    csrSeeds ??= validSamples('csr');
    if (!csrSeeds.has(input.toString('hex'))) throw new OracleFailure('a mutated CSR verified');
  },
};

export const csrText: FuzzTarget<Buffer> = {
  name: 'csr-text',
  about: 'CSR text as the API takes it (csrDerFromText: PEM or base64 DER, size bounds), then parseCsr',
  sources: ['common/csr.ts'],
  codes: [...csr.codes],
  dictionary: [
    '-----BEGIN CERTIFICATE REQUEST-----\n',
    '-----END CERTIFICATE REQUEST-----',
    'NEW ',
    '\r\n',
    '=',
    ' ',
  ],
  maxBytes: 20 * 1024,
  seeds: () => loadCorpus('csr').map((d) => Buffer.from(toPem('CERTIFICATE REQUEST', d))),
  run(input) {
    const d = csrDerFromText(input.toString('utf8'));
    parseCsr(d, { allow: [...CSR_POLICY.allow], rsaMinBits: CSR_POLICY.rsaMinBits });
    return d;
  },
  accepted(_input, d) {
    csrSeeds ??= validSamples('csr');
    if (!csrSeeds.has(d.toString('hex'))) throw new OracleFailure('a mutated CSR verified');
  },
};

// ---- CRLs ----

let crlIssuer: string | undefined;
let crlSeeds: Set<string> | undefined;

export const crl: FuzzTarget<VerifiedCrl> = {
  name: 'crl',
  about:
    "the agent's CRL reader (client/crl.ts parseVerifiedCrl: framing, parse, signature against the issuer); a mutated CRL must never verify",
  sources: ['client/crl.ts'],
  codes: ['ERR_AGENT_CRL_MALFORMED', 'ERR_AGENT_CRL_SIGNATURE'],
  dictionary: DER_DICT,
  maxBytes: 16 * 1024,
  seeds: () => loadCorpus('crl'),
  run(input) {
    crlIssuer ??= repoFile('test', 'fuzz', 'corpus', 'crl', '_issuer.pem').toString('utf8');
    return parseVerifiedCrl(input, [crlIssuer]);
  },
  accepted(input) {
    crlSeeds ??= validSamples('crl');
    if (!crlSeeds.has(input.toString('hex'))) throw new OracleFailure('a mutated CRL verified');
  },
};

// ---- EK certificate chains ----

let anchors: { roots: X509Certificate[]; intermediates: X509Certificate[]; now: number } | undefined;
function ekAnchors(): NonNullable<typeof anchors> {
  if (anchors) return anchors;
  const dir = join(repoRoot(), 'test', 'vectors', 'tpm');
  const roots = new Map<string, X509Certificate>();
  const intermediates = new Map<string, X509Certificate>();
  let now = 0;
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    const v = JSON.parse(repoFile('test', 'vectors', 'tpm', f).toString('utf8')) as {
      policy: string;
      now: string | number;
    };
    const p = checkAttestationPolicy(v.policy, { methods: METHOD_NAMES });
    for (const r of p.ekRoots) roots.set(r.fingerprint256, r);
    for (const i of p.ekIntermediates) intermediates.set(i.fingerprint256, i);
    now = Math.max(now, Number(v.now));
  }
  anchors = { roots: [...roots.values()], intermediates: [...intermediates.values()], now };
  return anchors;
}
let ekSeeds: Set<string> | undefined;

export const ekChain: FuzzTarget<EkChainResult> = {
  name: 'ek-chain',
  about:
    "EK certificate chain checks (attestation/tpm/ek-chain.ts verifyEkChain) against the recorded vectors' TEST manufacturer; a mutated EK certificate must never be trusted",
  sources: ['attestation/tpm/ek-chain.ts', 'attestation/tpm/der.ts'],
  codes: ['ERR_ATT_TPM_EK_CERT_MALFORMED', 'ERR_ATT_TPM_EK_UNTRUSTED'],
  dictionary: DER_DICT,
  maxBytes: 8 * 1024,
  seeds: () => loadCorpus('ek-chain'),
  run(input) {
    const a = ekAnchors();
    return verifyEkChain(input, a, a.now);
  },
  accepted(input) {
    ekSeeds ??= validSamples('ek-chain');
    if (!ekSeeds.has(input.toString('hex'))) throw new OracleFailure('a mutated EK certificate was trusted');
  },
};
