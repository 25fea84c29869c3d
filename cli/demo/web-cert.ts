// The demo's local web certificate for the dashboard (localhost, 127.0.0.1, ::1): a throwaway
// root, name-constrained to those names, signs one server certificate and its key is dropped,
// so trusting the root in a browser vouches for nothing else. The mesh CA never signs it.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPrivateFile, privateDir } from '../../common/private-files.js';
import { OID, encodeName, ext, generalName, keyIdentifier, signCertificate } from '../../common/x509.js';
import { ipBytes, parseIp } from '../../common/ip.js';
import { toPem } from '../../common/pem.js';

const DNS = ['localhost'];
const IPS = ['127.0.0.1', '::1'];

export interface LocalWebCertificate {
  /** The root for the browser (and `curl --cacert`). */
  readonly rootFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly rootPem: string;
}

export function makeLocalWebCertificate(dir: string, now: number, lifetimeMs: number): LocalWebCertificate {
  const root = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const leaf = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rootSpki = root.publicKey.export({ type: 'spki', format: 'der' });
  const leafSpki = leaf.publicKey.export({ type: 'spki', format: 'der' });
  const rootName = encodeName([
    [OID.organization, 'edgeward demo'],
    [OID.commonName, 'edgeward demo local web root (localhost only)'],
  ]);
  const hostBytes = IPS.map((ip) => ipBytes(parseIp(ip)));
  const validity = { notBefore: now - 5 * 60_000, notAfter: now + lifetimeMs };
  const rootDer = signCertificate(
    {
      serial: randomBytes(16),
      issuer: rootName,
      subject: rootName,
      ...validity,
      spkiDer: rootSpki,
      extensions: [
        ext.basicConstraints(true, 0),
        ext.keyUsage([5, 6]),
        ext.subjectKeyId(keyIdentifier(rootSpki)),
        ext.nameConstraints([
          ...DNS.map(generalName.dns),
          ...hostBytes.map((b) => generalName.ip(Buffer.concat([b, Buffer.alloc(b.length, 0xff)]))),
          generalName.email('invalid'),
        ]),
      ],
    },
    root.privateKey,
  );
  const leafDer = signCertificate(
    {
      serial: randomBytes(16),
      issuer: rootName,
      subject: encodeName([[OID.commonName, 'localhost']]),
      ...validity,
      spkiDer: leafSpki,
      extensions: [
        ext.basicConstraints(false),
        ext.keyUsage([0]),
        ext.extKeyUsage([OID.serverAuth]),
        ext.subjectKeyId(keyIdentifier(leafSpki)),
        ext.authorityKeyId(keyIdentifier(rootSpki)),
        ext.subjectAltName([], false, DNS, hostBytes),
      ],
    },
    root.privateKey,
  );
  privateDir(dir);
  const rootPem = toPem('CERTIFICATE', rootDer);
  const files = {
    rootFile: join(dir, 'web-root.pem'),
    certFile: join(dir, 'cert.pem'),
    keyFile: join(dir, 'key.pem'),
  };
  writeFileSync(files.rootFile, rootPem);
  writeFileSync(files.certFile, toPem('CERTIFICATE', leafDer));
  createPrivateFile(files.keyFile, leaf.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return { ...files, rootPem };
}
