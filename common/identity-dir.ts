// An identity folder as clients keep it: key.pem (0600), cert.pem (leaf then intermediate) and
// bundle.pem (trust bundle). Replaced atomically: new files are written beside the old ones,
// fsync'd and renamed, and a half-finished swap is completed at the next load.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { EdgewardError } from './errors.js';
import { PRIVATE_FILE_MODE, privateDir, writeFileDurably } from './private-files.js';
import { normalizeSerial, uriSans } from './x509.js';

export interface IdentityFiles {
  readonly keyPem: string;
  readonly certPem: string;
  readonly bundlePem: string;
}

export interface LoadedIdentity extends IdentityFiles {
  readonly key: KeyObject;
  readonly leaf: X509Certificate;
  readonly identity: string;
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function writeIdentity(dir: string, files: IdentityFiles): void {
  privateDir(dir);
  writeFileDurably(join(dir, 'bundle.pem.new'), files.bundlePem, 0o644);
  writeFileDurably(join(dir, 'key.pem.new'), files.keyPem, PRIVATE_FILE_MODE);
  writeFileDurably(join(dir, 'cert.pem.new'), files.certPem, 0o644);
  completeSwap(dir);
}

/** Finishes a swap that a crash interrupted; cert.pem.new is renamed last, so it marks one. */
function completeSwap(dir: string): void {
  if (!existsSync(join(dir, 'cert.pem.new'))) return;
  for (const f of ['bundle.pem', 'key.pem', 'cert.pem']) {
    if (existsSync(join(dir, `${f}.new`))) renameSync(join(dir, `${f}.new`), join(dir, f));
  }
  fsyncDir(dir);
}

export function hasIdentity(dir: string): boolean {
  return existsSync(join(dir, 'cert.pem')) || existsSync(join(dir, 'cert.pem.new'));
}

export function loadIdentity(dir: string): LoadedIdentity {
  completeSwap(dir);
  if (!existsSync(join(dir, 'cert.pem')))
    throw new EdgewardError('ERR_ENROLL_NO_IDENTITY', `no identity in ${dir}`);
  const keyPem = readFileSync(join(dir, 'key.pem'), 'utf8');
  const certPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
  const bundlePem = readFileSync(join(dir, 'bundle.pem'), 'utf8');
  const leaf = new X509Certificate(certPem);
  const key = createPrivateKey(keyPem);
  if (!leaf.checkPrivateKey(key))
    throw new EdgewardError('ERR_ENROLL_NO_IDENTITY', `key.pem does not match cert.pem in ${dir}`);
  const [identity] = uriSans(leaf.subjectAltName);
  if (!identity) throw new EdgewardError('ERR_ENROLL_NO_IDENTITY', 'certificate has no URI SAN');
  return {
    keyPem,
    certPem,
    bundlePem,
    key,
    leaf,
    identity,
    serial: normalizeSerial(leaf.serialNumber),
    notBefore: Date.parse(leaf.validFrom),
    notAfter: Date.parse(leaf.validTo),
  };
}
