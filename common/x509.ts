// Certificate and CRL encoding with the DER writer, plus the few readers the mesh needs
// (serials, SPKI hashes, URI SANs). Profiles (what goes into which certificate) live in ca/.
import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import { tryParseIp } from './ip.js';
import {
  bitString,
  bool,
  children,
  explicit,
  implicit,
  octet,
  oid,
  expectTag,
  parseDer,
  readBitStringBytes,
  readBool,
  readOctetString,
  readOid,
  type Tlv,
  seq,
  set,
  smallInt,
  time,
  tlv,
  uint,
  utf8,
} from './der.js';
import { EdgewardError } from './errors.js';

export const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  subjectKeyId: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  crlNumber: '2.5.29.20',
  crlReason: '2.5.29.21',
  nameConstraints: '2.5.29.30',
  authorityKeyId: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  extensionRequest: '1.2.840.113549.1.9.14',
} as const;

export type Rdn = readonly [oid: string, value: string];

export function encodeName(rdns: readonly Rdn[]): Buffer {
  return seq(...rdns.map(([o, v]) => set(seq(oid(o), utf8(v)))));
}

export function extension(oidStr: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(oidStr), bool(true), octet(value)) : seq(oid(oidStr), octet(value));
}

/** SHA-1 over the subjectPublicKey bits (RFC 5280 4.2.1.2, method 1). */
export function keyIdentifier(spkiDer: Buffer): Buffer {
  const parts = children(parseDer(spkiDer, 0x30));
  return createHash('sha1').update(readBitStringBytes(parts[1])).digest();
}

/** GeneralName TLVs (context tags of RFC 5280's GeneralName CHOICE). */
export const generalName = {
  email: (s: string): Buffer => tlv(0x81, Buffer.from(s, 'ascii')),
  dns: (s: string): Buffer => tlv(0x82, Buffer.from(s, 'ascii')),
  uri: (s: string): Buffer => tlv(0x86, Buffer.from(s, 'ascii')),
  /** An address (4 or 16 bytes) in a SAN, or address then mask (8 or 32 bytes) in a constraint. */
  ip: (bytes: Buffer): Buffer => tlv(0x87, bytes),
};

export const ext = {
  basicConstraints(ca: boolean, pathLen?: number): Buffer {
    const inner = ca ? seq(bool(true), ...(pathLen === undefined ? [] : [smallInt(pathLen)])) : seq();
    return extension(OID.basicConstraints, true, inner);
  },
  /** bits: 0 digitalSignature, 5 keyCertSign, 6 cRLSign. */
  keyUsage(bits: readonly number[]): Buffer {
    let mask = 0;
    for (const b of bits) mask |= 0x80 >> b;
    let unused = 0;
    while (unused < 7 && (mask & (1 << unused)) === 0) unused++;
    return extension(OID.keyUsage, true, bitString(Buffer.from([mask]), unused));
  },
  extKeyUsage(oids: readonly string[]): Buffer {
    return extension(OID.extKeyUsage, false, seq(...oids.map((o) => oid(o))));
  },
  subjectKeyId(keyId: Buffer): Buffer {
    return extension(OID.subjectKeyId, false, octet(keyId));
  },
  authorityKeyId(keyId: Buffer): Buffer {
    return extension(OID.authorityKeyId, false, seq(implicit(0, keyId)));
  },
  /** URI SANs, plus optional DNS names and IP addresses (only for our own service certificates). */
  subjectAltName(
    uris: readonly string[],
    critical: boolean,
    dns: readonly string[] = [],
    ips: readonly Buffer[] = [],
  ): Buffer {
    const names = [...uris.map(generalName.uri), ...dns.map(generalName.dns), ...ips.map(generalName.ip)];
    return extension(OID.subjectAltName, critical, seq(...names));
  },
  /**
   * Name constraints (RFC 5280 4.2.1.10), critical: each entry is one GeneralName (see
   * `generalName`) made a GeneralSubtree; [0] permittedSubtrees, [1] excludedSubtrees.
   */
  nameConstraints(permitted: readonly Buffer[], excluded: readonly Buffer[] = []): Buffer {
    const subtrees = (tag: number, names: readonly Buffer[]): Buffer[] =>
      names.length === 0 ? [] : [tlv(tag, Buffer.concat(names.map((n) => seq(n))))];
    return extension(
      OID.nameConstraints,
      true,
      seq(...subtrees(0xa0, permitted), ...subtrees(0xa1, excluded)),
    );
  },
  crlNumber(n: number): Buffer {
    return extension(OID.crlNumber, false, smallInt(n));
  },
};

export interface CertificateTemplate {
  readonly serial: Buffer;
  readonly issuer: Buffer;
  readonly subject: Buffer;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly spkiDer: Buffer;
  readonly extensions: readonly Buffer[];
}

const ECDSA_SHA256 = seq(oid(OID.ecdsaWithSha256));

/** Signs a v3 certificate with an ECDSA P-256 key (the only kind of CA key we make). */
export function signCertificate(t: CertificateTemplate, signer: KeyObject): Buffer {
  const tbs = seq(
    explicit(0, smallInt(2)),
    uint(t.serial),
    ECDSA_SHA256,
    t.issuer,
    seq(time(t.notBefore), time(t.notAfter)),
    t.subject,
    t.spkiDer,
    explicit(3, seq(...t.extensions)),
  );
  return seq(tbs, ECDSA_SHA256, bitString(sign('sha256', tbs, signer)));
}

export const CRL_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  privilegeWithdrawn: 9,
} as const;
export type CrlReason = keyof typeof CRL_REASONS;

export function isCrlReason(r: string): r is CrlReason {
  return Object.hasOwn(CRL_REASONS, r);
}

export interface CrlEntry {
  readonly serialHex: string;
  readonly revokedAt: number;
  readonly reason: CrlReason;
}

export function signCrl(
  o: {
    issuer: Buffer;
    issuerKeyId: Buffer;
    thisUpdate: number;
    nextUpdate: number;
    number: number;
    entries: readonly CrlEntry[];
  },
  signer: KeyObject,
): Buffer {
  const revoked = o.entries.map((e) =>
    seq(
      uint(Buffer.from(e.serialHex.length % 2 ? `0${e.serialHex}` : e.serialHex, 'hex')),
      time(e.revokedAt),
      seq(extension(OID.crlReason, false, tlv(0x0a, Buffer.from([CRL_REASONS[e.reason]])))),
    ),
  );
  const tbs = seq(
    smallInt(1),
    ECDSA_SHA256,
    o.issuer,
    time(o.thisUpdate),
    time(o.nextUpdate),
    ...(revoked.length > 0 ? [seq(...revoked)] : []),
    explicit(0, seq(ext.authorityKeyId(o.issuerKeyId), ext.crlNumber(o.number))),
  );
  return seq(tbs, ECDSA_SHA256, bitString(sign('sha256', tbs, signer)));
}

// ---------- readers ----------

/** Longest canonical serial (RFC 5280 allows 20 octets; foreign certificates in events may be longer). */
export const MAX_SERIAL_HEX = 64;
const SERIAL_INPUT = /^[0-9A-Fa-f]+(:[0-9A-Fa-f]+)*$/;
const CANONICAL_SERIAL = /^(0|[1-9a-f][0-9a-f]{0,63})$/;

/**
 * The one canonical serial, which every comparison (CRL, decisions, events, CA store, enforcement)
 * uses: lower-case hex, no colons, no leading zeros (`0` for zero). Accepts hex in either case,
 * with or without `:` between digit groups (openssl's `AB:CD`); throws ERR_SERIAL_INVALID.
 */
export function normalizeSerial(text: string): string {
  // The hot path (every ingested event with a serial): already canonical, returned as it is.
  if (typeof text === 'string' && CANONICAL_SERIAL.test(text)) return text;
  if (typeof text !== 'string' || text.length > 3 * MAX_SERIAL_HEX || !SERIAL_INPUT.test(text))
    throw new EdgewardError('ERR_SERIAL_INVALID', undefined, {
      detail: { value: String(text).slice(0, 64) },
    });
  const s = text.replace(/:/g, '').toLowerCase().replace(/^0+/, '');
  if (s.length > MAX_SERIAL_HEX)
    throw new EdgewardError('ERR_SERIAL_INVALID', 'serial longer than 64 hex digits');
  return s === '' ? '0' : s;
}

export function isCanonicalSerial(text: unknown): boolean {
  return typeof text === 'string' && CANONICAL_SERIAL.test(text);
}

export function spkiSha256Hex(spkiDer: Buffer): string {
  return createHash('sha256').update(spkiDer).digest('hex');
}

export function fingerprintSha256(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

/** Accepts `AB:CD...` or `abcd...`; returns lower-case hex without colons. */
export function normalizeFingerprint(text: string): string {
  return text.replace(/:/g, '').trim().toLowerCase();
}

/** The SAN entries of a certificate as node:crypto reports them, in order. */
function sanParts(subjectAltName: string | undefined): string[] {
  // node's format: `URI:spiffe://td/x, DNS:a, IP Address:1.2.3.4`; URIs with ", " are quoted.
  return subjectAltName ? subjectAltName.split(/, (?=[A-Za-z ]+:)/) : [];
}

/** The URI SANs of a certificate as node:crypto reports them. */
export function uriSans(subjectAltName: string | undefined): string[] {
  return sanParts(subjectAltName)
    .filter((p) => p.startsWith('URI:'))
    .map((p) => p.slice(4).replace(/^"(.*)"$/, '$1'));
}

/** The DNS and IP SANs of a certificate (IPv6 in canonical form), as node:crypto reports them. */
export function hostSans(subjectAltName: string | undefined): { dns: string[]; ips: string[] } {
  const parts = sanParts(subjectAltName);
  return {
    dns: parts.filter((p) => p.startsWith('DNS:')).map((p) => p.slice(4)),
    ips: parts
      .filter((p) => p.startsWith('IP Address:'))
      .map((p) => p.slice(11))
      .map((ip) => tryParseIp(ip)?.text)
      .filter((ip): ip is string => ip !== undefined),
  };
}

// ---------- certificate structure ----------

export interface CertificateExtension {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Buffer;
}

/** The fields of a signed certificate or CRL that node:crypto does not expose, read with the strict DER reader. */
export interface SignedParts {
  /** The signed part (tbsCertificate, tbsCertList), header included. */
  readonly tbs: Tlv;
  readonly signatureAlgorithm: string;
  readonly signature: Buffer;
}

export interface CertificateParts extends SignedParts {
  readonly issuer: Tlv;
  readonly subject: Tlv;
  /** SubjectPublicKeyInfo exactly as encoded (header included in `raw`). */
  readonly spki: Tlv;
  readonly extensions: readonly CertificateExtension[];
}

/** Certificate, CertificateList: SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING }. Throws ERR_DER_MALFORMED. */
export function readSigned(der: Buffer): SignedParts {
  const [tbs, alg, sig, ...rest] = children(parseDer(der, 0x30));
  if (rest.length > 0)
    throw new EdgewardError('ERR_DER_MALFORMED', 'malformed DER: extra fields after the signature');
  expectTag(tbs, 0x30, 'a signed SEQUENCE');
  const algorithm = children(expectTag(alg, 0x30, 'an AlgorithmIdentifier'));
  return { tbs: tbs as Tlv, signatureAlgorithm: readOid(algorithm[0]), signature: readBitStringBytes(sig) };
}

function readExtensions(list: Tlv): CertificateExtension[] {
  return children(expectTag(list, 0x30, 'Extensions')).map((e) => {
    const parts = children(expectTag(e, 0x30, 'an Extension'));
    const hasCritical = parts[1]?.tag === 0x01;
    if (parts.length !== (hasCritical ? 3 : 2))
      throw new EdgewardError('ERR_DER_MALFORMED', 'malformed DER: bad Extension');
    return {
      oid: readOid(parts[0]),
      critical: hasCritical ? readBool(parts[1]) : false,
      value: readOctetString(parts[hasCritical ? 2 : 1]),
    };
  });
}

/** A DER certificate's issuer, subject, SPKI and extensions. Throws ERR_DER_MALFORMED. */
export function readCertificate(der: Buffer): CertificateParts {
  const signed = readSigned(der);
  const fields = children(signed.tbs);
  // version [0] is optional; then serial, signature, issuer, validity, subject, subjectPublicKeyInfo
  const at = fields[0]?.tag === 0xa0 ? 1 : 0;
  const issuer = expectTag(fields[at + 2], 0x30, 'an issuer Name');
  const subject = expectTag(fields[at + 4], 0x30, 'a subject Name');
  const spki = expectTag(fields[at + 5], 0x30, 'a SubjectPublicKeyInfo');
  const extsWrapper = fields.slice(at + 6).find((t) => t.tag === 0xa3);
  let extensions: CertificateExtension[] = [];
  if (extsWrapper) {
    const inner = children(extsWrapper);
    if (inner.length !== 1) throw new EdgewardError('ERR_DER_MALFORMED', 'malformed DER: bad extensions');
    extensions = readExtensions(inner[0] as Tlv);
  }
  return { ...signed, issuer, subject, spki, extensions };
}

const SIGNATURE_HASH: Readonly<Record<string, string>> = {
  [OID.ecdsaWithSha256]: 'sha256',
  [OID.ecdsaWithSha384]: 'sha384',
  [OID.sha256WithRsa]: 'sha256',
  [OID.sha384WithRsa]: 'sha384',
  [OID.sha512WithRsa]: 'sha512',
};

/** Whether `signed` carries a valid signature by `key` in an algorithm the mesh accepts. */
export function verifySigned(signed: SignedParts, key: KeyObject): boolean {
  const hash = SIGNATURE_HASH[signed.signatureAlgorithm];
  if (!hash) return false;
  try {
    return verify(hash, signed.tbs.raw, key, signed.signature);
  } catch {
    return false; // a key that does not fit the algorithm is just "not this signer"
  }
}

const NAME_ATTRIBUTES: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '0.9.2342.19200300.100.1.25': 'DC',
};

/** A Name as `CN=x, O=y` (attributes in encoded order; unknown types by OID). Throws ERR_DER_MALFORMED. */
export function nameText(name: Tlv): string {
  return children(expectTag(name, 0x30, 'a Name'))
    .flatMap((rdn) => children(expectTag(rdn, 0x31, 'an RDN')))
    .map((atv) => {
      const [type, value] = children(expectTag(atv, 0x30, 'an AttributeTypeAndValue'));
      const key = readOid(type);
      if (!value) throw new EdgewardError('ERR_DER_MALFORMED', 'malformed DER: attribute without value');
      return `${NAME_ATTRIBUTES[key] ?? key}=${value.value.toString('utf8')}`;
    })
    .join(', ');
}
