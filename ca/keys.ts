// CA private keys at rest: 0600 files, encrypted with scrypt + AES-256-GCM when
// EDGEWARD_CA_PASSPHRASE is set. The envelope is JSON so its parameters are explicit.
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  randomBytes,
  scryptSync,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EdgewardError } from '../common/errors.js';
import { createPrivateFile } from '../common/private-files.js';

const SCRYPT = { N: 1 << 16, r: 8, p: 1, maxmem: 256 * 1024 * 1024 };

interface Envelope {
  v: 1;
  kdf: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: string;
  iv: string;
  tag: string;
  ct: string;
}

export function passphraseFromEnv(): string | undefined {
  const p = process.env['EDGEWARD_CA_PASSPHRASE'];
  return p === undefined || p === '' ? undefined : p;
}

export function writePrivateKey(file: string, key: KeyObject, passphrase: string | undefined): void {
  const der = key.export({ type: 'pkcs8', format: 'der' });
  if (passphrase === undefined) {
    createPrivateFile(file, key.export({ type: 'pkcs8', format: 'pem' }));
    return;
  }
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const k = scryptSync(passphrase, salt, 32, SCRYPT);
  const c = createCipheriv('aes-256-gcm', k, iv);
  const ct = Buffer.concat([c.update(der), c.final()]);
  const env: Envelope = {
    v: 1,
    kdf: 'scrypt',
    N: SCRYPT.N,
    r: SCRYPT.r,
    p: SCRYPT.p,
    salt: salt.toString('base64'),
    iv: iv.toString('base64'),
    tag: c.getAuthTag().toString('base64'),
    ct: ct.toString('base64'),
  };
  createPrivateFile(file, JSON.stringify(env) + '\n');
}

export function readPrivateKey(file: string, passphrase: string | undefined): KeyObject {
  const text = readFileSync(file, 'utf8');
  if (!text.trimStart().startsWith('{')) return createPrivateKey(text);
  if (passphrase === undefined) {
    throw new EdgewardError('ERR_CA_PASSPHRASE', 'the CA keys are encrypted: set EDGEWARD_CA_PASSPHRASE');
  }
  const env = JSON.parse(text) as Envelope;
  if (env.v !== 1 || env.kdf !== 'scrypt')
    throw new EdgewardError('ERR_CA_PASSPHRASE', 'unknown key envelope');
  const k = scryptSync(passphrase, Buffer.from(env.salt, 'base64'), 32, {
    N: env.N,
    r: env.r,
    p: env.p,
    maxmem: SCRYPT.maxmem,
  });
  const d = createDecipheriv('aes-256-gcm', k, Buffer.from(env.iv, 'base64'));
  d.setAuthTag(Buffer.from(env.tag, 'base64'));
  try {
    const der = Buffer.concat([d.update(Buffer.from(env.ct, 'base64')), d.final()]);
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw new EdgewardError('ERR_CA_PASSPHRASE', 'wrong CA key passphrase', { cause: err });
  }
}
