// The CA's keys and certificate profiles: creating a CA (root + name-constrained intermediate),
// loading it, issuing leaves and signing CRLs. No I/O beyond the data folder's key files.
import {
  X509Certificate,
  createHash,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { children, parseDer } from '../common/der.js';
import { EdgewardError } from '../common/errors.js';
import { ipBytes, parseIp } from '../common/ip.js';
import { privateDir } from '../common/private-files.js';
import { isTrustDomain, serviceId } from '../common/identity.js';
import { fromPemAll, toPem } from '../common/pem.js';
import {
  OID,
  encodeName,
  ext,
  fingerprintSha256,
  keyIdentifier,
  normalizeSerial,
  signCertificate,
  signCrl,
  type CrlEntry,
} from '../common/x509.js';
import { readPrivateKey, writePrivateKey } from './keys.js';
import { nameConstraintSubtrees, NO_SERVICE_NAMES, type ServiceNames } from './service-names.js';

export const FILES = {
  db: 'ca.db',
  rootCert: 'root.pem',
  rootKey: 'root.key',
  intCert: 'intermediate.pem',
  intKey: 'intermediate.key',
  adminDir: 'admin',
} as const;

const YEAR = 365 * 86_400_000;
export const BACKDATE_MS = 5 * 60_000;
export const MIN_LEAF_TTL_MS = 5 * 60_000;
export const MAX_LEAF_TTL_MS = 90 * 86_400_000;
export const DEFAULT_LEAF_TTL_MS = 24 * 3_600_000;

function newKey(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

export function newSerial(): Buffer {
  return randomBytes(16);
}

/** The raw DER subject Name and validity end of a certificate. */
function subjectOf(certDer: Buffer): Buffer {
  const tbs = children(parseDer(certDer, 0x30))[0];
  if (!tbs) throw new TypeError('not a certificate');
  const parts = children(tbs);
  const subject = parts[parts[0]?.tag === 0xa0 ? 5 : 4];
  if (!subject) throw new TypeError('certificate without subject');
  return subject.raw;
}

export interface IssueRequest {
  readonly identity: string;
  readonly spkiDer: Buffer;
  readonly lifetimeMs: number;
  readonly now: number;
  /** Only for our own service certificates (the CA's, the SIEM's listener). */
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  /** 16 random bytes by default. */
  readonly serial?: Buffer;
}

export interface IssuedCert {
  readonly serial: string;
  readonly der: Buffer;
  readonly notBefore: number;
  readonly notAfter: number;
}

export class Authority {
  readonly rootDer: Buffer;
  readonly intDer: Buffer;
  readonly rootFingerprint: string;
  readonly intNotAfter: number;
  readonly bundlePem: string;
  readonly intPem: string;
  private readonly intSubject: Buffer;
  private readonly intKeyId: Buffer;

  constructor(
    readonly trustDomain: string,
    rootDer: Buffer,
    intDer: Buffer,
    private readonly intKey: KeyObject,
  ) {
    this.rootDer = rootDer;
    this.intDer = intDer;
    this.rootFingerprint = fingerprintSha256(rootDer);
    const x = new X509Certificate(intDer);
    this.intNotAfter = Date.parse(x.validTo);
    this.intSubject = subjectOf(intDer);
    this.intKeyId = keyIdentifier(x.publicKey.export({ type: 'spki', format: 'der' }));
    this.bundlePem = toPem('CERTIFICATE', rootDer);
    this.intPem = toPem('CERTIFICATE', intDer);
  }

  /**
   * A 256-bit key for `purpose`, derived (HKDF-SHA256) from the intermediate's private key: the
   * same in every process that loads this CA, as secret as that key, and changed with it.
   */
  deriveKey(purpose: string): Buffer {
    const ikm = this.intKey.export({ type: 'pkcs8', format: 'der' });
    return Buffer.from(hkdfSync('sha256', ikm, Buffer.alloc(0), `edgeward ${purpose}`, 32));
  }

  /** Issues a leaf with exactly one URI SAN (plus DNS/IP names for our own services). */
  issue(req: IssueRequest): IssuedCert {
    if (req.lifetimeMs < MIN_LEAF_TTL_MS || req.lifetimeMs > MAX_LEAF_TTL_MS) {
      throw new EdgewardError('ERR_CA_LIFETIME');
    }
    const serial = req.serial ?? newSerial();
    const notBefore = req.now - BACKDATE_MS;
    const notAfter = Math.min(req.now + req.lifetimeMs, this.intNotAfter);
    const hasNames = (req.dnsNames?.length ?? 0) + (req.ipAddresses?.length ?? 0) > 0;
    const der = signCertificate(
      {
        serial,
        issuer: this.intSubject,
        subject: encodeName([]),
        notBefore,
        notAfter,
        spkiDer: req.spkiDer,
        extensions: [
          ext.basicConstraints(false),
          ext.keyUsage([0]),
          ext.extKeyUsage([OID.serverAuth, OID.clientAuth]),
          ext.subjectKeyId(keyIdentifier(req.spkiDer)),
          ext.authorityKeyId(this.intKeyId),
          // The subject is empty, so RFC 5280 4.2.1.6 wants the SAN critical.
          hasNames
            ? ext.subjectAltName(
                [req.identity],
                true,
                req.dnsNames ?? [],
                (req.ipAddresses ?? []).map((ip) => ipBytes(parseIp(ip))),
              )
            : ext.subjectAltName([req.identity], true),
        ],
      },
      this.intKey,
    );
    return { serial: normalizeSerial(serial.toString('hex')), der, notBefore, notAfter };
  }

  /** PEM chain as clients store it: leaf then intermediate. */
  chainPem(leafDer: Buffer): string {
    return toPem('CERTIFICATE', leafDer) + this.intPem;
  }

  signCrl(entries: readonly CrlEntry[], number: number, thisUpdate: number, nextUpdate: number): Buffer {
    return signCrl(
      { issuer: this.intSubject, issuerKeyId: this.intKeyId, thisUpdate, nextUpdate, number, entries },
      this.intKey,
    );
  }

  rootPublicJwk(): Record<string, unknown> {
    return new X509Certificate(this.rootDer).publicKey.export({ format: 'jwk' });
  }

  get intermediatePublicKey(): KeyObject {
    return new X509Certificate(this.intDer).publicKey;
  }
}

export interface InitResult {
  readonly fingerprint: string;
  readonly authority: Authority;
  readonly rootKey: KeyObject;
}

/**
 * Creates root and intermediate keys and certificates in `dir`. Refuses to overwrite. The
 * intermediate may vouch only for the trust domain's URIs and the declared service names.
 */
export function createAuthority(
  dir: string,
  trustDomain: string,
  now: number,
  passphrase: string | undefined,
  names: ServiceNames = NO_SERVICE_NAMES,
): InitResult {
  if (!isTrustDomain(trustDomain))
    throw new EdgewardError('ERR_ID_INVALID', `invalid trust domain ${trustDomain}`);
  for (const f of [FILES.db, FILES.rootCert, FILES.rootKey, FILES.intCert, FILES.intKey]) {
    if (existsSync(join(dir, f)))
      throw new EdgewardError('ERR_CA_EXISTS', `${join(dir, f)} exists; refusing to overwrite a CA`);
  }
  privateDir(dir);
  const root = newKey();
  const int = newKey();
  const rootName = encodeName([
    [OID.organization, 'edgeward'],
    [OID.organizationalUnit, trustDomain],
    [OID.commonName, 'edgeward root CA'],
  ]);
  const intName = encodeName([
    [OID.organization, 'edgeward'],
    [OID.organizationalUnit, trustDomain],
    [OID.commonName, 'edgeward intermediate CA'],
  ]);
  const rootSpki = root.publicKey.export({ type: 'spki', format: 'der' });
  const intSpki = int.publicKey.export({ type: 'spki', format: 'der' });
  const rootKeyId = keyIdentifier(rootSpki);
  const rootDer = signCertificate(
    {
      serial: newSerial(),
      issuer: rootName,
      subject: rootName,
      notBefore: now - BACKDATE_MS,
      notAfter: now + 10 * YEAR,
      spkiDer: rootSpki,
      extensions: [ext.basicConstraints(true), ext.keyUsage([5, 6]), ext.subjectKeyId(rootKeyId)],
    },
    root.privateKey,
  );
  const nc = nameConstraintSubtrees(trustDomain, names);
  const intDer = signCertificate(
    {
      serial: newSerial(),
      issuer: rootName,
      subject: intName,
      notBefore: now - BACKDATE_MS,
      notAfter: now + 5 * YEAR,
      spkiDer: intSpki,
      extensions: [
        ext.basicConstraints(true, 0),
        ext.keyUsage([5, 6]),
        ext.subjectKeyId(keyIdentifier(intSpki)),
        ext.authorityKeyId(rootKeyId),
        ext.nameConstraints(nc.permitted, nc.excluded),
      ],
    },
    root.privateKey,
  );
  writePrivateKey(join(dir, FILES.rootKey), root.privateKey, passphrase);
  writePrivateKey(join(dir, FILES.intKey), int.privateKey, passphrase);
  writeFileSync(join(dir, FILES.rootCert), toPem('CERTIFICATE', rootDer), { mode: 0o644, flag: 'wx' });
  writeFileSync(join(dir, FILES.intCert), toPem('CERTIFICATE', intDer), { mode: 0o644, flag: 'wx' });
  const authority = new Authority(trustDomain, rootDer, intDer, int.privateKey);
  return { fingerprint: authority.rootFingerprint, authority, rootKey: root.privateKey };
}

export function loadAuthority(dir: string, trustDomain: string, passphrase: string | undefined): Authority {
  const rootFile = join(dir, FILES.rootCert);
  if (!existsSync(rootFile))
    throw new EdgewardError('ERR_CA_NOT_INITIALISED', `no CA in ${dir}: run edgeward ca init`);
  const [rootDer] = fromPemAll(readFileSync(rootFile, 'utf8'), 'CERTIFICATE');
  const [intDer] = fromPemAll(readFileSync(join(dir, FILES.intCert), 'utf8'), 'CERTIFICATE');
  if (!rootDer || !intDer)
    throw new EdgewardError('ERR_CA_NOT_INITIALISED', 'CA certificate files are empty');
  const intKey = readPrivateKey(join(dir, FILES.intKey), passphrase);
  return new Authority(trustDomain, rootDer, intDer, intKey);
}

export function adminId(trustDomain: string): string {
  return serviceId(trustDomain, 'admin');
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
