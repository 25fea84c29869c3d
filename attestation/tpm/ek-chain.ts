// EK certificate validation against the attestation policy's trusted manufacturer roots and
// intermediates. TCG EK certificates carry a critical SAN with a directoryName of TCG attributes
// and EKU 2.23.133.8.1, which generic path validators refuse; we accept exactly those and refuse
// any other unknown critical extension.
import { X509Certificate, createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { EdgewardError } from '../../common/errors.js';
import { children, derAs, parseDer, readBool, readOid } from '../../common/der.js';
import { readCertificate, type CertificateParts } from '../../common/x509.js';

export const TCG_EK_CERTIFICATE_EKU = '2.23.133.8.1';

const KNOWN_CRITICAL = new Set([
  '2.5.29.15', // keyUsage
  '2.5.29.17', // subjectAltName (TCG: directoryName with TPM manufacturer, model, version)
  '2.5.29.19', // basicConstraints
  '2.5.29.32', // certificatePolicies
  '2.5.29.37', // extKeyUsage
  '2.5.29.9', // subjectDirectoryAttributes (TPM specification)
]);

export interface EkTrustAnchors {
  readonly roots: readonly X509Certificate[];
  readonly intermediates: readonly X509Certificate[];
}

export interface EkChainResult {
  /** Subjects from the EK certificate up to the trusted root. */
  readonly chain: readonly string[];
  readonly publicKey: KeyObject;
  /** The certificate's SubjectPublicKeyInfo, DER, as encoded in the certificate. */
  readonly spkiDer: Buffer;
  /** The window (ms since epoch) in which every certificate of the chain is valid. */
  readonly validFrom: number;
  readonly validTo: number;
}

function untrusted(reason: string, detail?: Record<string, unknown>): EdgewardError {
  return new EdgewardError('ERR_ATT_TPM_EK_UNTRUSTED', `EK certificate not trusted: ${reason}`, {
    detail: { reason, ...detail },
  });
}

function inValidity(c: X509Certificate, now: number): boolean {
  return Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
}

function ekuOids(value: Buffer): string[] {
  return ekDer(() => children(parseDer(value, 0x30)).map((t) => readOid(t)));
}

/** basicConstraints cA, read directly: X509Certificate.ca also needs keyCertSign to say true. */
function assertsCa(value: Buffer | undefined): boolean {
  if (!value) return false;
  const first = ekDer(() => children(parseDer(value, 0x30))[0]);
  return first?.tag === 0x01 && ekDer(() => readBool(first));
}

function ekDer<T>(read: () => T): T {
  return derAs('ERR_ATT_TPM_EK_CERT_MALFORMED', 'EK certificate', read);
}

/** The EK certificate's extensions and SPKI, read with the strict DER reader; ERR_ATT_TPM_EK_CERT_MALFORMED. */
export function readEkCertificate(der: Buffer): CertificateParts {
  return ekDer(() => readCertificate(der));
}

function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  return child.checkIssued(parent) && child.verify(parent.publicKey);
}

export function parseEkCertificate(der: Buffer): X509Certificate {
  try {
    return new X509Certificate(der);
  } catch (err) {
    throw new EdgewardError('ERR_ATT_TPM_EK_CERT_MALFORMED', undefined, { cause: err });
  }
}

/** Validates the EK certificate chain at time `now`; throws ERR_ATT_TPM_EK_UNTRUSTED with a reason. */
export function verifyEkChain(der: Buffer, anchors: EkTrustAnchors, now: number): EkChainResult {
  const leaf = parseEkCertificate(der);
  const parts = readEkCertificate(der);
  const exts = parts.extensions;
  for (const e of exts) {
    if (e.critical && !KNOWN_CRITICAL.has(e.oid))
      throw untrusted('unknown critical extension', { oid: e.oid });
  }
  const eku = exts.find((e) => e.oid === '2.5.29.37');
  if (eku && !ekuOids(eku.value).includes(TCG_EK_CERTIFICATE_EKU))
    throw untrusted('EKU is not the TCG EK certificate EKU');
  if (leaf.ca || assertsCa(exts.find((e) => e.oid === '2.5.29.19')?.value)) {
    throw untrusted('EK certificate is a CA certificate');
  }
  if (!inValidity(leaf, now)) throw untrusted('EK certificate outside its validity period');
  const chain = [leaf.subject];
  let from = Date.parse(leaf.validFrom);
  let to = Date.parse(leaf.validTo);
  const narrow = (c: X509Certificate): void => {
    from = Math.max(from, Date.parse(c.validFrom));
    to = Math.min(to, Date.parse(c.validTo));
  };
  let current = leaf;
  for (let depth = 0; depth < 6; depth++) {
    const root = anchors.roots.find((r) => issuedBy(current, r));
    if (root) {
      if (!inValidity(root, now)) throw untrusted('root outside its validity period', { root: root.subject });
      chain.push(root.subject);
      narrow(root);
      return {
        chain,
        publicKey: leaf.publicKey,
        spkiDer: parts.spki.raw,
        validFrom: from,
        validTo: to,
      };
    }
    const next = anchors.intermediates.find((i) => i !== current && i.ca && issuedBy(current, i));
    if (!next) throw untrusted('no path to a trusted manufacturer root', { issuer: current.issuer });
    if (!inValidity(next, now))
      throw untrusted('intermediate outside its validity period', { subject: next.subject });
    chain.push(next.subject);
    narrow(next);
    current = next;
  }
  throw untrusted('chain too long');
}

/** Whether a certificate's SPKI holds the same key as `spkiDer` (node:crypto's export form). */
export function sameKey(certSpki: Buffer, spkiDer: Buffer): boolean {
  // Raw bytes first: certificates usually encode the key exactly as node:crypto exports it, and
  // the comparison then costs no key import. Other encodings (compressed points) are normalised.
  if (certSpki.equals(spkiDer)) return true;
  try {
    return createPublicKey({ key: certSpki, format: 'der', type: 'spki' })
      .export({ format: 'der', type: 'spki' })
      .equals(spkiDer);
  } catch {
    return false;
  }
}

export function sha256Hex(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
