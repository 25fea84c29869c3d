// Signed and sealed inputs: decision documents (compact JWS), sealed enrollment sessions and join
// tokens. Samples are signed or sealed at start with keys made for the run (the corpus holds the
// documents, not keys); a verifier may say yes only to a sample exactly as it was made.
import { createECDH, createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { CompactSign } from 'jose';
import { createTokenMethod, hashToken, type MethodContext } from '../../../attestation/index.js';
import { openSealedSession, sealSession, type SessionClaims } from '../../../ca/index.js';
import {
  DECISIONS_TYP,
  signDecisionDelta,
  signDecisionSet,
  verifyDecisions,
  type SignedDecisions,
} from '../../../common/decision-jws.js';
import { parseIdentity } from '../../../common/identity.js';
import { silentLogger } from '../../../common/log.js';
import { OracleFailure, type FuzzTarget } from '../engine.js';
import { loadCorpus, loadCorpusFiles } from '../corpus.js';
import { mutateTree, valuePool } from '../json.js';

// ---- decision documents ----

const TRUST_DOMAIN = 'factory.example';
const NOW = Date.UTC(2026, 11, 7);
const LAST_APPLIED = 5;

let siemKey: { privateKey: KeyObject; publicKey: KeyObject } | undefined;
/** The SIEM key of the fuzz runs: fixed (from a label), so a finding's token can be replayed. */
export function fuzzDecisionKey(): { privateKey: KeyObject; publicKey: KeyObject } {
  if (siemKey) return siemKey;
  const d = createHash('sha256').update('edgeward fuzz decision key').digest();
  const point = createECDH('prime256v1');
  point.setPrivateKey(d);
  const pub = point.getPublicKey();
  const jwk = {
    kty: 'EC',
    crv: 'P-256',
    x: pub.subarray(1, 33).toString('base64url'),
    y: pub.subarray(33).toString('base64url'),
  };
  siemKey = {
    privateKey: createPrivateKey({ key: { ...jwk, d: d.toString('base64url') }, format: 'jwk' }),
    publicKey: createPublicKey({ key: jwk, format: 'jwk' }),
  };
  return siemKey;
}
const decisionKey = fuzzDecisionKey;

/** Signs any payload bytes as the SIEM does (ES256, typ and kid), valid or not as a document. */
async function signRaw(payload: Buffer, header: Record<string, unknown> = {}): Promise<string> {
  return new CompactSign(payload)
    .setProtectedHeader({ alg: 'ES256', kid: 'siem-1', typ: DECISIONS_TYP, ...header })
    .sign(decisionKey().privateKey);
}

const verifyOpts = (): Parameters<typeof verifyDecisions>[1] => ({
  publicKey: decisionKey().publicKey,
  trustDomain: TRUST_DOMAIN,
  lastApplied: LAST_APPLIED,
  now: NOW,
  kid: 'siem-1',
});

const DECISION_CODES = [
  'ERR_DECISION_TOO_LARGE',
  'ERR_DECISION_MALFORMED',
  'ERR_DECISION_SIGNATURE',
  'ERR_DECISION_TYP',
  'ERR_DECISION_KID',
  'ERR_DECISION_TRUST_DOMAIN',
  'ERR_DECISION_STALE',
  'ERR_DECISION_GAP',
  'ERR_DECISION_FUTURE',
  'ERR_DECISION_SCOPE_NOT_CANONICAL',
] as const;

let signedSamples: Set<string> | undefined;

export const decisionJws: FuzzTarget<SignedDecisions> = {
  name: 'decision-jws',
  about:
    'signed decision documents as agents receive them (common/decision-jws.ts verifyDecisions); a changed byte of a signed document must never verify',
  sources: ['common/decision-jws.ts', 'common/decision-scope.ts'],
  codes: [...DECISION_CODES],
  dictionary: ['.', '-', '_', '=', 'A', 'eyJ', 'ey', '..'],
  maxBytes: 64 * 1024,
  async seeds() {
    const out = await Promise.all(loadCorpus('decisions').map((d) => signRaw(d)));
    const findings = loadCorpusFiles('decision-jws').map((f) => f.data);
    out.push(await signRaw(Buffer.from('{"kind":"snapshot"}'), { typ: 'JWT' }));
    out.push(await signRaw(Buffer.from('[]'), { kid: 'other' }));
    // A finding's token re-spelled canonically is the fixed key's own signature: valid.
    const canonical = findings.map((f) => {
      const t = f.toString('latin1');
      const dot = t.lastIndexOf('.') + 1;
      return t.slice(0, dot) + Buffer.from(t.slice(dot), 'base64url').toString('base64url');
    });
    signedSamples = new Set([...out, ...canonical]);
    return [...out.map((s) => Buffer.from(s)), ...findings];
  },
  run: (input) => verifyDecisions(input.toString('latin1'), verifyOpts()),
  accepted(input) {
    if (!signedSamples?.has(input.toString('latin1')))
      throw new OracleFailure('a changed signed document verified');
  },
};

const DECISION_KEYS = [
  'kind',
  'trustDomain',
  'revision',
  'issuedAt',
  'decisions',
  'from',
  'upserts',
  'removals',
  'id',
  'scope',
  'type',
  'value',
  'action',
  'reason',
  'createdAt',
  'expiresAt',
  'alerts',
  '__proto__',
];

let payloads: unknown[] | undefined;

export const decisionPayload: FuzzTarget<SignedDecisions> = {
  name: 'decision-payload',
  about:
    'decision payloads, freshly signed (verifyDecisions past the signature: schema, scopes, revisions); an accepted document signs and verifies back to itself',
  sources: ['common/decision-jws.ts', 'common/decision-scope.ts'],
  codes: [...DECISION_CODES],
  dictionary: DECISION_KEYS.map((k) => `"${k}"`),
  generateShare: 0.7,
  maxBytes: 64 * 1024,
  seeds: () => loadCorpus('decisions'),
  generate(rng) {
    payloads ??= loadCorpus('decisions').map((d) => JSON.parse(d.toString('utf8')) as unknown);
    return Buffer.from(JSON.stringify(mutateTree(rng.pick(payloads), rng, valuePool(11), DECISION_KEYS)));
  },
  async run(input) {
    return verifyDecisions(await signRaw(input), verifyOpts());
  },
  async accepted(_input, doc) {
    const key = decisionKey().privateKey;
    const again = await verifyDecisions(
      doc.kind === 'snapshot'
        ? await signDecisionSet(doc.set, key, 'siem-1')
        : await signDecisionDelta(doc.delta, key, 'siem-1'),
      verifyOpts(),
    );
    if (!isDeepStrictEqual(again, doc)) throw new OracleFailure('sign -> verify changed the document');
  },
};

// ---- sealed enrollment sessions ----

/** The sealing key of the fuzz runs (fixed, so a finding's token can be replayed). */
export const FUZZ_SESSION_KEY = createHash('sha256').update('edgeward fuzz session key').digest();
let sessions: Set<string> | undefined;

export const session: FuzzTarget<SessionClaims> = {
  name: 'session',
  about:
    'sealed enrollment sessions (ca/sessions.ts openSealedSession, AES-256-GCM); a changed byte of a sealed token must never open',
  sources: ['ca/sessions.ts'],
  codes: ['ERR_CA_SESSION_UNKNOWN'],
  dictionary: ['ews1.', '.', '-', '_', '=', '+', '/', 'A', ' ', '\n'],
  maxBytes: 20 * 1024,
  seeds() {
    // Claims (JSON) are sealed afresh; a finding's sample is the token itself.
    const files = loadCorpusFiles('session');
    const out = files
      .filter((f) => !f.name.startsWith('finding-'))
      .map(
        (f) =>
          sealSession(FUZZ_SESSION_KEY, JSON.parse(f.data.toString('utf8')) as Omit<SessionClaims, 'id'>)
            .token,
      );
    const findings = files.filter((f) => f.name.startsWith('finding-')).map((f) => f.data);
    // A finding's token spelled canonically is a session the fixed key sealed: valid.
    const canonical = findings.map((f) => {
      const t = f.toString('latin1');
      return `ews1.${Buffer.from(t.slice(5), 'base64url').toString('base64url')}`;
    });
    sessions = new Set([...out, ...canonical]);
    return [...out.map((t) => Buffer.from(t)), ...findings];
  },
  run: (input) => openSealedSession(FUZZ_SESSION_KEY, input.toString('latin1')),
  accepted(input) {
    if (!sessions?.has(input.toString('latin1'))) throw new OracleFailure('a changed sealed session opened');
  },
};

// ---- join tokens ----

const JOIN_TOKEN = `ewt_${Buffer.alloc(32, 7).toString('base64url')}`;
const TOKEN_IDENTITY = parseIdentity('spiffe://factory.example/service/api');
const tokenMethod = createTokenMethod((hash) =>
  Promise.resolve(
    hash === hashToken(JOIN_TOKEN)
      ? { hash, identity: TOKEN_IDENTITY.uri, createdAt: NOW - 1000, expiresAt: NOW + 60_000 }
      : undefined,
  ),
);
const tokenCtx: MethodContext = {
  clock: { now: () => NOW },
  log: silentLogger,
  trustDomain: TRUST_DOMAIN,
  store: {
    getBinding: () => Promise.resolve(undefined),
    findBindingByHardware: () => Promise.resolve(undefined),
    wasUsed: () => Promise.resolve(false),
  },
  renewal: false,
  source: '127.0.0.1',
};

export const joinToken: FuzzTarget<unknown> = {
  name: 'join-token',
  about:
    'join tokens at finish (attestation/token/method.ts): response JSON with the token; only the issued token, unchanged, is accepted',
  sources: ['attestation/token/method.ts'],
  codes: [
    'ERR_CA_TOKEN_INVALID',
    'ERR_CA_TOKEN_IDENTITY',
    'ERR_CA_TOKEN_EXPIRED',
    'ERR_CA_TOKEN_USED',
    'ERR_INPUT_MALFORMED',
  ],
  dictionary: ['"token"', 'ewt_', '"', '{', '}', ':', '-', '_', '=', '\\u0000'],
  maxBytes: 4096,
  seeds: () => [
    Buffer.from(JSON.stringify({ token: JOIN_TOKEN })),
    Buffer.from(JSON.stringify({ token: `ewt_${Buffer.alloc(32, 8).toString('base64url')}` })),
    Buffer.from(JSON.stringify({ token: JOIN_TOKEN, extra: 1 })),
  ],
  async run(input) {
    let response: unknown;
    try {
      response = JSON.parse(input.toString('utf8'));
    } catch {
      response = input.toString('utf8');
    }
    return tokenMethod.finish(tokenCtx, TOKEN_IDENTITY, null, response, {
      spkiDer: Buffer.alloc(0),
      spkiSha256: Buffer.alloc(32),
    });
  },
  accepted(input) {
    const r = JSON.parse(input.toString('utf8')) as { token?: unknown };
    if (r.token !== JOIN_TOKEN) throw new OracleFailure('a changed join token was accepted');
  },
};
