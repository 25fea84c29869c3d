// A throw-away test PKI: root + name-constrained intermediate (ECDSA P-256) and leaves with one URI
// SAN, written as identity folders (key.pem, cert.pem = leaf + intermediate, bundle.pem).
import 'reflect-metadata';
import { createHash, randomBytes, webcrypto } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface CaPair {
  readonly cert: x509.X509Certificate;
  readonly keys: webcrypto.CryptoKeyPair;
  readonly pem: string;
}

export interface Leaf {
  readonly id: string;
  readonly dir: string;
  readonly keyPem: string;
  /** Leaf then intermediate. */
  readonly certPem: string;
  readonly leafPem: string;
  /** Lower-case hex, no colons, no leading zero byte. */
  readonly serial: string;
  /** Lower-case hex SHA-256 of the DER SubjectPublicKeyInfo. */
  readonly spki: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface LeafOptions {
  notBefore?: Date;
  notAfter?: Date;
  /** Folder name under the PKI's dir; default derived from the id. */
  name?: string;
  /** Sign with this CA instead (e.g. a foreign one); default the PKI's intermediate. */
  issuer?: CaPair;
  /** No URI SAN at all (negative tests). */
  noSan?: boolean;
  /** Extra URI SANs (negative tests). */
  extraUris?: string[];
}

export interface TestPki {
  readonly dir: string;
  readonly trustDomain: string;
  readonly root: CaPair;
  readonly intermediate: CaPair;
  /** The trust bundle (root PEM). */
  readonly bundlePem: string;
  /** Path of a file holding bundlePem. */
  readonly bundleFile: string;
  issue(id: string, opts?: LeafOptions): Promise<Leaf>;
  /** A CRL signed by the intermediate (or `signer`), revoking these hex serials; DER. */
  crl(
    serials: readonly string[],
    opts?: { signer?: CaPair; thisUpdate?: Date; nextUpdate?: Date },
  ): Promise<Buffer>;
  /** Another, unrelated CA (root + intermediate) for "foreign CA" tests. */
  foreign(): Promise<{ root: CaPair; intermediate: CaPair }>;
  /** Starts a new root + intermediate (CA rotation); the old ones stay valid. */
  rotate(): Promise<{ root: CaPair; intermediate: CaPair }>;
  cleanup(): Promise<void>;
}

function pem(tag: string, der: ArrayBuffer): string {
  return x509.PemConverter.encode(der, tag);
}

async function genKeys(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x10; // positive, no leading zero byte, so hex forms agree everywhere
  return b.toString('hex');
}

/** DER of NameConstraints permitting one URI host: SEQ { [0] SEQ { SEQ { [6] host } } }. */
function nameConstraintsDer(host: string): ArrayBuffer {
  const h = Buffer.from(host, 'ascii');
  const tlv = (tag: number, body: Buffer): Buffer => {
    if (body.length > 127) throw new TypeError('test helper: name too long');
    return Buffer.concat([Buffer.from([tag, body.length]), body]);
  };
  const der = tlv(0x30, tlv(0xa0, tlv(0x30, tlv(0x86, h))));
  return der.buffer.slice(der.byteOffset, der.byteOffset + der.byteLength) as ArrayBuffer;
}

async function makeCa(name: string, trustDomain: string): Promise<{ root: CaPair; intermediate: CaPair }> {
  const now = Date.now();
  const rootKeys = await genKeys();
  const rootCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name} Root`,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 3650 * DAY),
    keys: rootKeys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  const intKeys = await genKeys();
  const intCert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${name} Intermediate`,
    issuer: rootCert.subject,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 365 * DAY),
    publicKey: intKeys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.Extension('2.5.29.30', true, nameConstraintsDer(trustDomain)),
      await x509.SubjectKeyIdentifierExtension.create(intKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  return {
    root: { cert: rootCert, keys: rootKeys, pem: rootCert.toString('pem') },
    intermediate: { cert: intCert, keys: intKeys, pem: intCert.toString('pem') },
  };
}

export function spkiHash(pemOrDer: string | x509.X509Certificate): string {
  const cert = typeof pemOrDer === 'string' ? new x509.X509Certificate(pemOrDer) : pemOrDer;
  return createHash('sha256').update(Buffer.from(cert.publicKey.rawData)).digest('hex');
}

export async function createTestPki(trustDomain = 'factory.example'): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'edgeward-pki-'));
  let { root, intermediate } = await makeCa('Edgeward Test', trustDomain);
  const bundleParts = [root.pem];
  const bundleFile = join(dir, 'bundle.pem');
  await writeFile(bundleFile, root.pem + '\n');
  const pki: TestPki = {
    dir,
    trustDomain,
    get root() {
      return root;
    },
    get intermediate() {
      return intermediate;
    },
    get bundlePem() {
      return bundleParts.join('\n') + '\n';
    },
    bundleFile,
    async issue(id, opts = {}) {
      const now = Date.now();
      const issuer = opts.issuer ?? intermediate;
      const keys = await genKeys();
      const notBefore = opts.notBefore ?? new Date(now - 60_000);
      const notAfter = opts.notAfter ?? new Date(now + DAY);
      const sans: x509.JsonGeneralName[] = [];
      if (!opts.noSan) sans.push({ type: 'url', value: id });
      for (const u of opts.extraUris ?? []) sans.push({ type: 'url', value: u });
      const exts: x509.Extension[] = [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([
          x509.ExtendedKeyUsage.serverAuth,
          x509.ExtendedKeyUsage.clientAuth,
        ]),
        await x509.AuthorityKeyIdentifierExtension.create(issuer.keys.publicKey),
      ];
      if (sans.length > 0) exts.push(new x509.SubjectAlternativeNameExtension(sans, true));
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: '',
        issuer: issuer.cert.subject,
        notBefore,
        notAfter,
        publicKey: keys.publicKey,
        signingKey: issuer.keys.privateKey,
        signingAlgorithm: ALG,
        extensions: exts,
      });
      const keyPem = pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
      const leafPem = cert.toString('pem');
      const certPem = `${leafPem}\n${issuer.pem}\n`;
      const name = opts.name ?? id.replace(/[^A-Za-z0-9]+/g, '_');
      const leafDir = join(dir, name);
      await mkdir(leafDir, { recursive: true });
      await writeFile(join(leafDir, 'key.pem'), keyPem, { mode: 0o600 });
      await writeFile(join(leafDir, 'cert.pem'), certPem);
      await writeFile(join(leafDir, 'bundle.pem'), pki.bundlePem);
      return {
        id,
        dir: leafDir,
        keyPem,
        certPem,
        leafPem,
        serial: cert.serialNumber.toLowerCase(),
        spki: spkiHash(cert),
        notBefore,
        notAfter,
      };
    },
    async crl(serials, opts = {}) {
      const signer = opts.signer ?? intermediate;
      const crl = await x509.X509CrlGenerator.create({
        issuer: signer.cert.subject,
        thisUpdate: opts.thisUpdate ?? new Date(),
        nextUpdate: opts.nextUpdate ?? new Date(Date.now() + DAY),
        signingKey: signer.keys.privateKey,
        signingAlgorithm: ALG,
        entries: serials.map((s) => ({ serialNumber: s, revocationDate: new Date() })),
      });
      return Buffer.from(crl.rawData);
    },
    async foreign() {
      return makeCa('Foreign', trustDomain);
    },
    async rotate() {
      const next = await makeCa('Edgeward Test Next', trustDomain);
      root = next.root;
      intermediate = next.intermediate;
      bundleParts.push(root.pem);
      await writeFile(bundleFile, pki.bundlePem);
      return next;
    },
    async cleanup() {
      await rm(dir, { recursive: true, force: true });
    },
  };
  return pki;
}
