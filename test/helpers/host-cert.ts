// An operator's web PKI made with the openssl command line (not our own DER code): a root, an
// intermediate and host-name server certificates, as an operator would bring for the dashboard.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openssl } from './openssl.js';

export interface Issued {
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface HostCertOptions {
  /** subjectAltName value (openssl syntax); null for no SAN. Default `DNS:localhost,IP:127.0.0.1`. */
  readonly san?: string | null;
  /** extendedKeyUsage value; null for none. Default `serverAuth`. */
  readonly eku?: string | null;
  /** Validity as openssl `ca` dates (YYYYMMDDHHMMSSZ); default from now for one day. */
  readonly startDate?: string;
  readonly endDate?: string;
}

export interface OpensslCa {
  readonly dir: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
  /** A host-name server certificate and its key (files in the CA's folder). */
  issue(name: string, o?: HostCertOptions): Issued;
  /** A subordinate CA signed by this one. */
  intermediate(name: string): OpensslCa;
}

function newKey(file: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
}

function caAt(dir: string, certFile: string, keyFile: string): OpensslCa {
  const db = join(dir, 'db');
  mkdirSync(join(db, 'new'), { recursive: true });
  writeFileSync(join(db, 'index.txt'), '');
  writeFileSync(join(db, 'serial'), '1000\n');
  const cnf = join(db, 'ca.cnf');
  writeFileSync(
    cnf,
    [
      '[ ca ]',
      'default_ca = this_ca',
      '[ this_ca ]',
      `database = ${join(db, 'index.txt')}`,
      `new_certs_dir = ${join(db, 'new')}`,
      `serial = ${join(db, 'serial')}`,
      `certificate = ${certFile}`,
      `private_key = ${keyFile}`,
      'default_md = sha256',
      'default_days = 1',
      'policy = any_name',
      'unique_subject = no',
      '[ any_name ]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  const sign = (name: string, ext: string[], dates: string[]): Issued => {
    const keyOut = join(dir, `${name}.key`);
    const csr = join(db, `${name}.csr`);
    const extFile = join(db, `${name}.ext`);
    const certOut = join(dir, `${name}.pem`);
    newKey(keyOut);
    openssl(['req', '-new', '-key', keyOut, '-subj', `/CN=${name}`, '-out', csr]);
    writeFileSync(extFile, ext.join('\n') + '\n');
    openssl([
      'ca',
      '-batch',
      '-notext',
      '-config',
      cnf,
      '-in',
      csr,
      '-out',
      certOut,
      '-extfile',
      extFile,
      ...dates,
    ]);
    return {
      certFile: certOut,
      keyFile: keyOut,
      certPem: readFileSync(certOut, 'utf8'),
      keyPem: readFileSync(keyOut, 'utf8'),
    };
  };
  return {
    dir,
    certFile,
    keyFile,
    certPem: readFileSync(certFile, 'utf8'),
    issue(name, o = {}) {
      const san = o.san === undefined ? 'DNS:localhost,IP:127.0.0.1' : o.san;
      const eku = o.eku === undefined ? 'serverAuth' : o.eku;
      const ext = ['basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature'];
      if (eku !== null) ext.push(`extendedKeyUsage = ${eku}`);
      if (san !== null) ext.push(`subjectAltName = ${san}`);
      const dates =
        o.startDate !== undefined || o.endDate !== undefined
          ? [
              ...(o.startDate ? ['-startdate', o.startDate] : []),
              ...(o.endDate ? ['-enddate', o.endDate] : []),
            ]
          : ['-days', '1'];
      return sign(name, ext, dates);
    },
    intermediate(name) {
      const sub = sign(
        name,
        ['basicConstraints = critical,CA:TRUE,pathlen:0', 'keyUsage = critical,keyCertSign,cRLSign'],
        ['-days', '30'],
      );
      const subDir = join(dir, `${name}-ca`);
      mkdirSync(subDir, { recursive: true });
      return caAt(subDir, sub.certFile, sub.keyFile);
    },
  };
}

/** A root CA in `dir` (created), valid for ten years. */
export function opensslRootCa(dir: string, name = 'Operator Web Root'): OpensslCa {
  mkdirSync(dir, { recursive: true });
  const keyFile = join(dir, 'root.key');
  const certFile = join(dir, 'root.pem');
  newKey(keyFile);
  openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    keyFile,
    '-subj',
    `/CN=${name}`,
    '-days',
    '3650',
    '-addext',
    'basicConstraints = critical,CA:TRUE',
    '-addext',
    'keyUsage = critical,keyCertSign,cRLSign',
    '-out',
    certFile,
  ]);
  return caAt(dir, certFile, keyFile);
}
