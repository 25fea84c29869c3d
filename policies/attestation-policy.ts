// The attestation policy (YAML): which EK manufacturers are trusted, which TPMs are allowed
// without an EK certificate, and per identity pattern which methods may enroll it, with the PCR
// bank and golden PCR values a TPM quote must match. Parsed and validated once, then frozen.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { parseDuration } from '../common/clock.js';
import { EdgewardError, type ErrorCode } from '../common/errors.js';
import { isValidPattern, matchIdentity } from '../common/identity.js';
import { compileSchema } from '../common/schema.js';

export const PCR_BANKS = { sha256: 32, sha384: 48, sha512: 64 } as const;
export type PcrBank = keyof typeof PCR_BANKS;
export const DEFAULT_NONCE_TTL_MS = 60_000;
const MAX_POLICY_BYTES = 1 << 20;
const MAX_NONCE_TTL_MS = 10 * 60_000;

export interface TpmPatternPolicy {
  readonly pcrBank: PcrBank;
  /** Golden values: for each PCR index, the acceptable values (usually one). */
  readonly pcrs: ReadonlyMap<number, readonly Buffer[]>;
}

export interface IdentityRule {
  readonly pattern: string;
  readonly methods: readonly string[];
  readonly nonceTtlMs: number;
  readonly tpm?: TpmPatternPolicy;
}

export interface AttestationPolicy {
  readonly ekRoots: readonly X509Certificate[];
  readonly ekIntermediates: readonly X509Certificate[];
  /** Lower-case hex SHA-256 of EK SubjectPublicKeyInfo DER, for TPMs without an EK certificate. */
  readonly ekAllowList: ReadonlySet<string>;
  /** In file order; the first matching pattern wins. */
  readonly identities: readonly IdentityRule[];
}

export interface CheckOptions {
  /** The method names a rule may list: the attestation registry's (attestation/registry.ts). */
  readonly methods: readonly string[];
  /** Where relative `file:` paths are resolved; defaults to the working directory. */
  readonly baseDir?: string;
}

function fail(code: ErrorCode, path: string, message: string): EdgewardError {
  return new EdgewardError(code, `attestation policy ${path}: ${message}`, { detail: { path } });
}

type Obj = Record<string, unknown>;

const TEXT = { type: 'string', minLength: 1 } as const;
const CERTS = {
  type: 'array',
  items: { type: 'object', additionalProperties: false, properties: { file: TEXT, pem: TEXT } },
} as const;

/**
 * The policy's shape. Values with codes of their own (PCRs and their bank, EK hashes, patterns,
 * method names, durations, certificates) are read after it, by the functions below.
 */
const policyShape = compileSchema<Obj>(
  {
    type: 'object',
    additionalProperties: false,
    required: ['version'],
    properties: {
      version: { const: 1 },
      ek: {
        type: 'object',
        additionalProperties: false,
        properties: {
          roots: CERTS,
          intermediates: CERTS,
          allow: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              properties: { sha256: {}, note: { type: 'string' } },
            },
          },
        },
      },
      identities: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['pattern'],
          properties: {
            pattern: TEXT,
            methods: { type: 'array', items: TEXT },
            nonceTtl: {},
            tpm: {
              type: 'object',
              additionalProperties: false,
              properties: { pcrBank: {}, pcrs: {} },
            },
          },
        },
      },
    },
  },
  'ERR_POLICY_ATT_SCHEMA',
  'attestation policy',
  { unknownKey: 'ERR_POLICY_ATT_UNKNOWN_KEY' },
);

function asArray(v: unknown): unknown[] {
  return v === undefined ? [] : (v as unknown[]);
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g;

function loadCerts(entries: unknown, path: string, baseDir: string): X509Certificate[] {
  const out: X509Certificate[] = [];
  asArray(entries).forEach((raw, i) => {
    const p = `${path}[${i}]`;
    const e = raw as Obj;
    if ((e['file'] === undefined) === (e['pem'] === undefined)) {
      throw fail('ERR_POLICY_ATT_SCHEMA', p, 'give exactly one of file or pem');
    }
    let text: string;
    if (e['file'] !== undefined) {
      const f = e['file'] as string;
      try {
        text = readFileSync(isAbsolute(f) ? f : resolve(baseDir, f), 'utf8');
      } catch (err) {
        throw new EdgewardError('ERR_POLICY_ATT_CERT', `attestation policy ${p}.file: cannot read ${f}`, {
          cause: err,
          detail: { path: p },
        });
      }
    } else {
      text = e['pem'] as string;
    }
    const blocks = text.match(PEM_CERT) ?? [];
    if (blocks.length === 0) throw fail('ERR_POLICY_ATT_CERT', p, 'no PEM certificate found');
    for (const b of blocks) {
      let c: X509Certificate;
      try {
        c = new X509Certificate(b);
      } catch (err) {
        throw new EdgewardError('ERR_POLICY_ATT_CERT', `attestation policy ${p}: not a certificate`, {
          cause: err,
          detail: { path: p },
        });
      }
      if (!c.ca) throw fail('ERR_POLICY_ATT_CERT', p, `${c.subject} is not a CA certificate`);
      out.push(c);
    }
  });
  return out;
}

function parsePcrs(v: unknown, bank: PcrBank, path: string): Map<number, Buffer[]> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw fail('ERR_POLICY_ATT_PCR', path, 'must map PCR indices to hex values');
  const out = new Map<number, Buffer[]>();
  for (const [k, raw] of Object.entries(v)) {
    if (!/^(\d|1\d|2[0-3])$/.test(k))
      throw fail('ERR_POLICY_ATT_PCR', `${path}.${k}`, 'PCR index must be 0..23');
    const list = Array.isArray(raw) ? raw : [raw];
    if (list.length === 0) throw fail('ERR_POLICY_ATT_PCR', `${path}.${k}`, 'needs at least one value');
    const values = list.map((x, i) => {
      const s = typeof x === 'string' ? x.trim().toLowerCase().replace(/^0x/, '') : '';
      if (!/^[0-9a-f]+$/.test(s) || s.length !== PCR_BANKS[bank] * 2) {
        throw fail(
          'ERR_POLICY_ATT_PCR',
          `${path}.${k}[${i}]`,
          `must be ${PCR_BANKS[bank]} bytes of hex (${bank})`,
        );
      }
      return Buffer.from(s, 'hex');
    });
    out.set(Number(k), values);
  }
  if (out.size === 0) throw fail('ERR_POLICY_ATT_PCR', path, 'needs at least one PCR');
  return out;
}

function parseRule(raw: unknown, path: string, known: readonly string[]): IdentityRule {
  const r = raw as Obj;
  const pattern = r['pattern'] as string;
  if (!isValidPattern(pattern))
    throw fail('ERR_POLICY_ATT_PATTERN', `${path}.pattern`, `not a valid identity pattern: ${pattern}`);
  const methods = (asArray(r['methods']) as string[]).map((s, i) => {
    if (!known.includes(s)) {
      throw fail(
        'ERR_POLICY_ATT_METHOD',
        `${path}.methods[${i}]`,
        `unknown method ${s} (known: ${known.join(', ')})`,
      );
    }
    return s;
  });
  if (methods.length === 0)
    throw fail('ERR_POLICY_ATT_METHOD', `${path}.methods`, 'list at least one method');
  let nonceTtlMs = DEFAULT_NONCE_TTL_MS;
  const ttl = r['nonceTtl'];
  if (ttl !== undefined) {
    try {
      if (typeof ttl !== 'string' && typeof ttl !== 'number') throw new TypeError('not a duration');
      nonceTtlMs = parseDuration(String(ttl));
    } catch {
      throw fail('ERR_POLICY_ATT_DURATION', `${path}.nonceTtl`, 'not a duration (e.g. 60s)');
    }
    if (nonceTtlMs < 1000 || nonceTtlMs > MAX_NONCE_TTL_MS)
      throw fail('ERR_POLICY_ATT_DURATION', `${path}.nonceTtl`, 'must be 1s..10m');
  }
  let tpm: TpmPatternPolicy | undefined;
  if (r['tpm'] !== undefined) {
    const t = r['tpm'] as Obj;
    const bank = t['pcrBank'] ?? 'sha256';
    if (typeof bank !== 'string' || !Object.hasOwn(PCR_BANKS, bank)) {
      throw fail(
        'ERR_POLICY_ATT_PCR',
        `${path}.tpm.pcrBank`,
        `must be one of ${Object.keys(PCR_BANKS).join(', ')}`,
      );
    }
    tpm = Object.freeze({
      pcrBank: bank as PcrBank,
      pcrs: parsePcrs(t['pcrs'], bank as PcrBank, `${path}.tpm.pcrs`),
    });
  }
  if (methods.includes('tpm') && !tpm)
    throw fail('ERR_POLICY_ATT_TPM_MISSING', path, 'allows tpm but has no tpm section with golden PCRs');
  return Object.freeze({ pattern, methods: Object.freeze(methods), nonceTtlMs, ...(tpm ? { tpm } : {}) });
}

/** Parses and validates a policy's text; throws a coded ERR_POLICY_ATT_* error on the first problem. */
export function checkAttestationPolicy(text: string, options: CheckOptions): AttestationPolicy {
  if (Buffer.byteLength(text) > MAX_POLICY_BYTES)
    throw fail('ERR_POLICY_ATT_SCHEMA', '(file)', 'larger than 1 MiB');
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new EdgewardError(
      'ERR_POLICY_ATT_YAML',
      `attestation policy: ${doc.errors[0]?.message ?? 'invalid YAML'}`,
    );
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 50 });
  } catch (err) {
    throw new EdgewardError('ERR_POLICY_ATT_YAML', 'attestation policy: invalid YAML', { cause: err });
  }
  const top = policyShape(data);
  const baseDir = options.baseDir ?? process.cwd();
  const ek = (top['ek'] ?? {}) as Obj;
  const ekRoots = loadCerts(ek['roots'], 'ek.roots', baseDir);
  const ekIntermediates = loadCerts(ek['intermediates'], 'ek.intermediates', baseDir);
  const allow = new Set<string>();
  asArray(ek['allow']).forEach((raw, i) => {
    const e = raw as Obj;
    const h = typeof e['sha256'] === 'string' ? e['sha256'].trim().toLowerCase() : '';
    if (!/^[0-9a-f]{64}$/.test(h))
      throw fail('ERR_POLICY_ATT_ALLOWLIST', `ek.allow[${i}].sha256`, 'must be 64 hex digits');
    allow.add(h);
  });
  const identities = asArray(top['identities']).map((r, i) =>
    parseRule(r, `identities[${i}]`, options.methods),
  );
  return Object.freeze({
    ekRoots: Object.freeze(ekRoots),
    ekIntermediates: Object.freeze(ekIntermediates),
    ekAllowList: allow,
    identities: Object.freeze(identities),
  });
}

/** Reads and checks a policy file; `methods` are the names a rule may list (CheckOptions). */
export function loadAttestationPolicy(file: string, methods: readonly string[]): AttestationPolicy {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new EdgewardError('ERR_POLICY_ATT_FILE', `cannot read attestation policy ${file}`, { cause: err });
  }
  return checkAttestationPolicy(text, { methods, baseDir: dirname(resolve(file)) });
}

/** The first rule whose pattern matches the identity, if any. */
export function ruleFor(policy: AttestationPolicy, identity: string): IdentityRule | undefined {
  return policy.identities.find((r) => matchIdentity(r.pattern, identity));
}

/** The attestation methods the identity may enroll with (empty: none). */
export function methodsFor(policy: AttestationPolicy, identity: string): string[] {
  return [...(ruleFor(policy, identity)?.methods ?? [])];
}

/** One line for `edgeward policy check`: what the policy holds. */
export function describeAttestationPolicy(policy: AttestationPolicy): string {
  const tpmRules = policy.identities.filter((r) => r.tpm).length;
  return (
    `attestation policy OK: ${policy.ekRoots.length} EK root(s), ${policy.ekIntermediates.length} intermediate(s), ` +
    `${policy.ekAllowList.size} allow-listed EK(s), ${policy.identities.length} identity rule(s) (${tpmRules} with golden PCRs)`
  );
}
