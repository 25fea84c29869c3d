// The DecisionVerifiers of enforcement points (agents, the CA) over common/decision-jws.ts: ES256 compact JWS signed by the SIEM,
// checked against a configured public key (PEM), or against the SIEM's certificate chain as it
// rotates, which is kept with the tokens it verified so that they verify again after a restart.
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Clock } from '../common/clock.js';
import { verifyDecisions } from '../common/decision-jws.js';
import { EdgewardError } from '../common/errors.js';
import type { DecisionDelta, DecisionSet } from '../common/decisions.js';
import { fromPemAll } from '../common/pem.js';
import { verifySiemChain, type SiemDecisionKey } from '../common/siem-key.js';
import { decodeProtectedHeader } from 'jose';
import type { DecisionVerifier } from './decisions-store.js';

export function jwsDecisionVerifier(o: {
  publicKey: KeyObject;
  trustDomain: string;
  clock: Clock;
  kid?: string;
}): DecisionVerifier {
  const base = {
    publicKey: o.publicKey,
    trustDomain: o.trustDomain,
    ...(o.kid !== undefined ? { kid: o.kid } : {}),
  };
  return {
    async verifySet(token, lastApplied) {
      const d = await verifyDecisions(token, { ...base, lastApplied, now: o.clock.now() });
      if (d.kind !== 'snapshot')
        throw new EdgewardError('ERR_AGENT_DECISION_INVALID', 'expected a snapshot, got a delta');
      return d.set;
    },
    async verifyDelta(token, lastApplied) {
      const d = await verifyDecisions(token, { ...base, lastApplied, now: o.clock.now() });
      if (d.kind !== 'delta')
        throw new EdgewardError('ERR_AGENT_DECISION_INVALID', 'expected a delta, got a snapshot');
      return d.delta;
    },
  };
}

export async function loadDecisionKey(file: string): Promise<KeyObject> {
  let key: KeyObject;
  try {
    key = createPublicKey(await readFile(file, 'utf8'));
  } catch (cause) {
    throw new EdgewardError(
      'ERR_AGENT_CONFIG_INVALID',
      `decisions.key: ${file} is not a readable PEM public key`,
      { cause },
    );
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new EdgewardError('ERR_AGENT_CONFIG_INVALID', 'decisions.key must be a P-256 public key');
  }
  return key;
}

/** A key this verifier holds: the SIEM's chain (PEM) and the key it vouches for. */
interface HeldKey {
  readonly chainPem: string;
  readonly key: SiemDecisionKey;
  /** Until when the chain was checked valid now (live use); -Infinity for a key restored from disk. */
  liveUntil: number;
}

const MAX_HELD_KEYS = 16;

function kidOf(token: string): string | undefined {
  try {
    return decodeProtectedHeader(token).kid;
  } catch (cause) {
    throw new EdgewardError('ERR_DECISION_MALFORMED', 'decision token has no readable header', { cause });
  }
}

/**
 * A verifier that follows the SIEM's signing key as it rotates: the SIEM signs with its identity
 * key, which changes at every renewal. When a token names a kid we do not hold, the verifier
 * fetches the SIEM's chain (GET /v1/decisions/key over mTLS), checks it against our trust bundle
 * and the name spiffe://TD/svc/siem, and only then uses it. Refetches are spaced out, so a
 * stream of tokens with unknown kids cannot turn into a stream of requests.
 *
 * It hands out the chain that verified each token (`keyOf`), which the decision store persists
 * beside the token, and verifies persisted tokens with their persisted chains and no network
 * (`offline`): the chain must still lead to the bundle and name the SIEM, and must have been
 * valid when the document was issued, so the last verified set is enforced after a restart while
 * the SIEM is unreachable, even past the SIEM certificate's expiry (decisions only ever remove
 * connectivity). A chain read from disk is checked again against the clock before it verifies a
 * live token: every key in use chains to the bundle, none is taken on trust.
 */
export function siemKeyVerifier(o: {
  fetchChain: () => Promise<string>;
  bundle: () => string;
  trustDomain: string;
  clock: Clock;
  minRefetchMs?: number;
}): DecisionVerifier {
  const held = new Map<string, HeldKey>();
  let latest: HeldKey | undefined;
  let lastFetch = -Infinity;
  const hold = (h: HeldKey): HeldKey => {
    held.delete(h.key.kid);
    held.set(h.key.kid, h);
    if (held.size > MAX_HELD_KEYS) held.delete(held.keys().next().value as string);
    return h;
  };
  /** Checks a held chain against the bundle and the clock now (cached until its leaf expires). */
  const liveCheck = (h: HeldKey, now: number): boolean => {
    if (h.liveUntil > now) return true;
    try {
      h.liveUntil = verifySiemChain(h.chainPem, o.bundle(), o.trustDomain, now).notAfter;
      return true;
    } catch {
      return false;
    }
  };
  async function keyFor(token: string): Promise<SiemDecisionKey> {
    const kid = kidOf(token);
    const now = o.clock.now();
    const h = kid === undefined ? undefined : held.get(kid);
    if (h && liveCheck(h, now)) return h.key;
    if (now - lastFetch >= (o.minRefetchMs ?? 2000)) {
      lastFetch = now;
      const chainPem = await o.fetchChain();
      const key = verifySiemChain(chainPem, o.bundle(), o.trustDomain, now);
      latest = hold({ chainPem, key, liveUntil: key.notAfter });
    }
    const k = (kid === undefined ? undefined : held.get(kid)) ?? latest;
    // Whatever we use was checked against the bundle now; a mismatch fails on the signature or kid.
    if (!k || !liveCheck(k, now))
      throw new EdgewardError('ERR_AGENT_DECISION_INVALID', 'the SIEM decision key is not available yet');
    return k.key;
  }
  const verifierFor = (k: SiemDecisionKey): DecisionVerifier =>
    jwsDecisionVerifier({ publicKey: k.publicKey, kid: k.kid, trustDomain: o.trustDomain, clock: o.clock });

  /** A persisted token with its persisted chain: the leaf key verifies it, the chain held at its issuedAt. */
  async function verifyStored<T extends DecisionSet | DecisionDelta>(
    token: string,
    chains: Readonly<Record<string, string>>,
    verify: (v: DecisionVerifier) => Promise<T>,
  ): Promise<T> {
    const kid = kidOf(token);
    const chainPem = kid === undefined ? undefined : chains[kid];
    if (kid === undefined || chainPem === undefined)
      throw new EdgewardError('ERR_AGENT_DECISION_INVALID', 'no stored SIEM key for this decision document');
    const leaf = leafKey(chainPem);
    const doc = await verify(verifierFor({ publicKey: leaf, kid, notAfter: Infinity }));
    const key = verifySiemChain(chainPem, o.bundle(), o.trustDomain, doc.issuedAt);
    if (key.kid !== kid)
      throw new EdgewardError('ERR_AGENT_DECISION_INVALID', 'stored SIEM key does not match its key id');
    if (!held.has(kid)) hold({ chainPem, key, liveUntil: -Infinity });
    return doc;
  }

  const live: DecisionVerifier = {
    async verifySet(token, lastApplied) {
      return verifierFor(await keyFor(token)).verifySet(token, lastApplied);
    },
    async verifyDelta(token, lastApplied) {
      return verifierFor(await keyFor(token)).verifyDelta(token, lastApplied);
    },
    keyOf(token) {
      const kid = kidOf(token);
      const h = kid === undefined ? undefined : held.get(kid);
      return h ? { kid: h.key.kid, chainPem: h.chainPem } : undefined;
    },
    offline(chains) {
      return {
        verifySet: (token, lastApplied) =>
          verifyStored(token, chains, (v) => v.verifySet(token, lastApplied)),
        verifyDelta: (token, lastApplied) =>
          verifyStored(token, chains, (v) => v.verifyDelta(token, lastApplied)),
        keyOf: (token) => live.keyOf?.(token),
      };
    },
  };
  return live;
}

/** The public key of the first certificate of a PEM chain (the leaf). */
function leafKey(chainPem: string): KeyObject {
  const [der] = fromPemAll(chainPem, 'CERTIFICATE');
  if (der === undefined) throw new EdgewardError('ERR_AGENT_DECISION_INVALID', 'stored SIEM chain is empty');
  let key: KeyObject;
  try {
    key = new X509Certificate(der).publicKey;
  } catch (cause) {
    throw new EdgewardError('ERR_AGENT_DECISION_INVALID', 'stored SIEM chain does not parse', { cause });
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    throw new EdgewardError('ERR_AGENT_DECISION_INVALID', 'stored SIEM key is not P-256');
  return key;
}
