// PKCS#10 certificate signing requests: built by the device side, parsed and verified by the CA.
// One module for both so they cannot drift. Parsing is strict: everything in a CSR is hostile.
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import {
  children,
  expectTag,
  explicit,
  oid,
  parseDer,
  readBitStringBytes,
  readBool,
  readOid,
  readSmallInt,
  seq,
  set,
  tlv,
  bitString,
  smallInt,
  type Tlv,
} from './der.js';
import { EdgewardError } from './errors.js';
import { ipBytes, ipFromBytes, parseIp } from './ip.js';
import { OID, encodeName, ext } from './x509.js';

export const MAX_CSR_BYTES = 8192;

/** DNS names and IP addresses a service asks for besides its URI SAN (where it listens). */
export interface HostNames {
  readonly dns: readonly string[];
  readonly ips: readonly string[];
}

export const NO_HOST_NAMES: HostNames = Object.freeze({ dns: [], ips: [] });

export type KeyKind = 'ec-p256' | 'ec-p384' | 'rsa';

export interface ParsedCsr {
  /** Canonical DER SubjectPublicKeyInfo, re-exported by node:crypto. */
  readonly spkiDer: Buffer;
  readonly spkiSha256: Buffer;
  readonly publicKey: KeyObject;
  readonly keyKind: KeyKind;
  readonly rsaBits: number | undefined;
  /** The one URI SAN, if the CSR asked for one. */
  readonly uri: string | undefined;
  /**
   * DNS and IP SANs asked besides the URI (as written; IPs in canonical text). The CA grants
   * them only to service identities, within the names declared at `ca init`.
   */
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
}

export interface KeyPolicy {
  /** Allowed key kinds; default ['ec-p256']. RSA additionally needs rsaMinBits (>= 2048). */
  readonly allow: readonly KeyKind[];
  readonly rsaMinBits: number;
}

export const DEFAULT_KEY_POLICY: KeyPolicy = { allow: ['ec-p256'], rsaMinBits: 2048 };

const SIG_HASH: Record<string, string> = {
  [OID.ecdsaWithSha256]: 'sha256',
  [OID.ecdsaWithSha384]: 'sha384',
  [OID.sha256WithRsa]: 'sha256',
  [OID.sha384WithRsa]: 'sha384',
  [OID.sha512WithRsa]: 'sha512',
};

function bad(why: string, cause?: unknown): EdgewardError {
  return new EdgewardError(
    'ERR_CA_CSR_MALFORMED',
    `malformed CSR: ${why}`,
    cause === undefined ? {} : { cause },
  );
}

/** Accepts PEM text or base64 DER. */
export function csrDerFromText(text: string): Buffer {
  if (text.length > MAX_CSR_BYTES * 2) throw new EdgewardError('ERR_INPUT_TOO_LARGE', 'CSR too large');
  const pem =
    /^-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END (NEW )?CERTIFICATE REQUEST-----\s*$/.exec(
      text.trim() + '\n',
    );
  const b64 = pem ? (pem[2] ?? '').replace(/\s+/g, '') : text.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) throw bad('not PEM or base64 DER');
  const der = Buffer.from(b64, 'base64');
  if (der.length > MAX_CSR_BYTES) throw new EdgewardError('ERR_INPUT_TOO_LARGE', 'CSR too large');
  return der;
}

/** At most this many DNS names and IP addresses in a CSR (only service identities may ask any). */
export const MAX_CSR_HOST_NAMES = 16;

interface SanNames {
  readonly uris: string[];
  readonly dnsNames: string[];
  readonly ipAddresses: string[];
}

function parseSans(value: Buffer): SanNames {
  const out: SanNames = { uris: [], dnsNames: [], ipAddresses: [] };
  for (const n of children(parseDer(value, 0x30))) {
    if (n.tag === 0x87) {
      if (n.value.length !== 4 && n.value.length !== 16)
        throw new EdgewardError('ERR_CA_CSR_SANS', 'CSR IP SAN is not 4 or 16 bytes');
      const ip = ipFromBytes(n.value);
      // One spelling per address: an IPv4-mapped IPv6 SAN would be IPv4 to us, IPv6 to clients.
      if (n.value.length === 16 && ip.family === 4)
        throw new EdgewardError(
          'ERR_CA_CSR_SANS',
          'CSR IP SAN is an IPv4-mapped IPv6 address: give the IPv4 address',
        );
      out.ipAddresses.push(ip.text);
      continue;
    }
    if (n.tag !== 0x86 && n.tag !== 0x82)
      throw new EdgewardError('ERR_CA_CSR_SANS', 'CSR SAN holds a name that is not a URI, DNS name or IP');
    const s = n.value.toString('latin1');
    if (!/^[\x21-\x7e]+$/.test(s))
      throw new EdgewardError('ERR_CA_CSR_SANS', 'CSR SAN is not printable ASCII');
    (n.tag === 0x86 ? out.uris : out.dnsNames).push(s);
  }
  if (out.dnsNames.length + out.ipAddresses.length > MAX_CSR_HOST_NAMES)
    throw new EdgewardError('ERR_CA_CSR_SANS', `CSR asks for more than ${MAX_CSR_HOST_NAMES} host names`);
  return out;
}

function parseExtensions(attrs: Tlv): SanNames {
  let sans: SanNames = { uris: [], dnsNames: [], ipAddresses: [] };
  let sawSan = false;
  for (const attr of children(attrs)) {
    const [typeT, valuesT] = children(attr);
    if (readOid(typeT) !== OID.extensionRequest) continue;
    if (!valuesT || valuesT.tag !== 0x31) throw bad('attribute values');
    const values = children(valuesT);
    if (values.length !== 1 || !values[0]) throw bad('extensionRequest must have one value');
    const seen = new Set<string>();
    for (const e of children(values[0])) {
      const parts = children(e);
      const id = readOid(parts[0]);
      if (seen.has(id)) throw bad('duplicate extension');
      seen.add(id);
      let i = 1;
      let critical = false;
      if (parts[i]?.tag === 0x01) critical = readBool(parts[i++]);
      const valueT = parts[i++];
      if (!valueT || valueT.tag !== 0x04 || i !== parts.length) throw bad('extension shape');
      if (id === OID.subjectAltName) {
        sawSan = true;
        sans = parseSans(valueT.value);
      } else if (id === OID.basicConstraints) {
        const bc = children(parseDer(valueT.value, 0x30));
        if (bc[0]?.tag === 0x01 && readBool(bc[0])) throw new EdgewardError('ERR_CA_CSR_CA_FLAG');
      } else if (critical && id !== OID.keyUsage && id !== OID.extKeyUsage) {
        // We never copy CSR extensions, but an unknown critical one says the requester expects
        // semantics we will not provide.
        throw new EdgewardError('ERR_CA_CSR_EXTENSION', `unsupported critical extension ${id}`);
      }
    }
  }
  if (sawSan && sans.uris.length !== 1)
    throw new EdgewardError('ERR_CA_CSR_SANS', 'CSR must carry exactly one URI SAN');
  return sans;
}

// DER prefix of a named-curve P-256 SubjectPublicKeyInfo with an uncompressed point (RFC 5480).
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

/**
 * The common case, fast: OpenSSL 3's DER key decoder costs ~0.3 ms per key, a JWK import half of
 * that, and for a P-256 SPKI in canonical form the DER needs no re-export.
 */
function importP256(spki: Buffer): KeyObject | undefined {
  if (spki.length !== 91 || spki[26] !== 0x04 || !spki.subarray(0, 26).equals(P256_SPKI_PREFIX))
    return undefined;
  try {
    return createPublicKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: spki.subarray(27, 59).toString('base64url'),
        y: spki.subarray(59, 91).toString('base64url'),
      },
      format: 'jwk',
    });
  } catch (err) {
    // Not a point on the curve.
    throw bad('invalid P-256 public key', err);
  }
}

function classifyKey(key: KeyObject): { kind: KeyKind; rsaBits: number | undefined } {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    if (d.namedCurve === 'prime256v1') return { kind: 'ec-p256', rsaBits: undefined };
    if (d.namedCurve === 'secp384r1') return { kind: 'ec-p384', rsaBits: undefined };
    throw new EdgewardError('ERR_CA_WEAK_KEY', `unsupported curve ${String(d.namedCurve)}`);
  }
  if (key.asymmetricKeyType === 'rsa') return { kind: 'rsa', rsaBits: d.modulusLength };
  throw new EdgewardError('ERR_CA_WEAK_KEY', `unsupported key type ${String(key.asymmetricKeyType)}`);
}

/** Parses a CSR, verifies its signature and its key against the policy. Throws coded errors. */
export function parseCsr(der: Buffer, policy: KeyPolicy = DEFAULT_KEY_POLICY): ParsedCsr {
  if (der.length > MAX_CSR_BYTES) throw new EdgewardError('ERR_INPUT_TOO_LARGE', 'CSR too large');
  let info: Tlv, sigAlg: string, sig: Buffer, spkiT: Tlv, attrs: Tlv | undefined;
  try {
    const top = children(parseDer(der, 0x30));
    if (top.length !== 3 || !top[0] || !top[1]) throw bad('CertificationRequest shape');
    info = top[0];
    // The algorithm sits outside the signed info: one encoding only (RFC 5758: no parameters for
    // ECDSA; RFC 4055: NULL for RSA), so no other bytes verify as the same CSR.
    const alg = children(expectTag(top[1], 0x30, 'an AlgorithmIdentifier'));
    sigAlg = readOid(alg[0]);
    const ec = sigAlg === OID.ecdsaWithSha256 || sigAlg === OID.ecdsaWithSha384;
    if (ec ? alg.length !== 1 : alg.length !== 2 || alg[1]?.tag !== 0x05 || alg[1].value.length !== 0)
      throw bad('signature algorithm parameters');
    sig = readBitStringBytes(top[2]);
    const infoParts = children(info);
    if (readSmallInt(infoParts[0]) !== 0) throw bad('version');
    if (infoParts[1]?.tag !== 0x30) throw bad('subject');
    if (infoParts[2]?.tag !== 0x30) throw bad('subjectPublicKeyInfo');
    spkiT = infoParts[2];
    attrs = infoParts[3];
    if (attrs && attrs.tag !== 0xa0) throw bad('attributes');
    if (infoParts.length > 4) throw bad('trailing fields');
  } catch (err) {
    if (err instanceof EdgewardError && err.code === 'ERR_DER_MALFORMED') throw bad(err.message, err);
    throw err;
  }
  const hash = SIG_HASH[sigAlg];
  if (!hash) throw new EdgewardError('ERR_CA_WEAK_KEY', `unsupported signature algorithm ${sigAlg}`);
  let publicKey: KeyObject;
  const fast = importP256(spkiT.raw);
  try {
    publicKey = fast ?? createPublicKey({ key: spkiT.raw, format: 'der', type: 'spki' });
  } catch (err) {
    throw bad('unreadable public key', err);
  }
  const { kind, rsaBits } = classifyKey(publicKey);
  if (!policy.allow.includes(kind))
    throw new EdgewardError('ERR_CA_WEAK_KEY', `key kind ${kind} not allowed`);
  if (kind === 'rsa' && (rsaBits ?? 0) < Math.max(2048, policy.rsaMinBits)) {
    throw new EdgewardError('ERR_CA_WEAK_KEY', `RSA key of ${rsaBits} bits is too small`);
  }
  const isEcAlg = sigAlg === OID.ecdsaWithSha256 || sigAlg === OID.ecdsaWithSha384;
  if (isEcAlg !== (kind !== 'rsa'))
    throw new EdgewardError('ERR_CA_CSR_SIGNATURE', 'signature algorithm does not fit the key');
  let ok = false;
  try {
    ok = verify(hash, info.raw, publicKey, sig);
  } catch {
    ok = false;
  }
  if (!ok) throw new EdgewardError('ERR_CA_CSR_SIGNATURE');
  let sans: SanNames = { uris: [], dnsNames: [], ipAddresses: [] };
  try {
    if (attrs) sans = parseExtensions(attrs);
  } catch (err) {
    if (err instanceof EdgewardError && err.code === 'ERR_DER_MALFORMED') throw bad(err.message, err);
    throw err;
  }
  const spkiDer = fast ? Buffer.from(spkiT.raw) : publicKey.export({ type: 'spki', format: 'der' });
  return {
    spkiDer,
    spkiSha256: createHash('sha256').update(spkiDer).digest(),
    publicKey,
    keyKind: kind,
    rsaBits,
    uri: sans.uris[0],
    dnsNames: sans.dnsNames,
    ipAddresses: sans.ipAddresses,
  };
}

/** Builds a CSR for an EC key with one URI SAN (device side), plus host names for a service. */
export function buildCsr(
  privateKey: KeyObject,
  publicKey: KeyObject,
  uri: string,
  hosts: HostNames = NO_HOST_NAMES,
): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const san = ext.subjectAltName(
    [uri],
    false,
    hosts.dns,
    hosts.ips.map((ip) => ipBytes(parseIp(ip))),
  );
  const attrs = explicit(0, seq(oid(OID.extensionRequest), set(seq(san))));
  const info = seq(smallInt(0), encodeName([]), spki, attrs);
  const isEc = publicKey.asymmetricKeyType === 'ec';
  const alg = seq(
    oid(isEc ? OID.ecdsaWithSha256 : OID.sha256WithRsa),
    ...(isEc ? [] : [tlv(0x05, Buffer.alloc(0))]),
  );
  return seq(info, alg, bitString(sign('sha256', info, privateKey)));
}
