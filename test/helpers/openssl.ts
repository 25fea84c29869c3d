// Runs the openssl command line, for checking our DER against an independent implementation.
// Returns stdout and stderr together (openssl prints verdicts such as "verify OK" on stderr).
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function openssl(args: string[], input?: Buffer): string {
  const r = spawnSync('openssl', args, { input, encoding: 'utf8' });
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error('openssl is not installed: apt-get install openssl');
    throw r.error;
  }
  const out = `${r.stdout}${r.stderr}`;
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${out}`);
  return out;
}

/**
 * `openssl crl -text` of a DER CRL, its signature checked against the issuer's PEM certificate
 * (the output then holds "verify OK"); the files are written into `dir`.
 */
export function opensslCrlText(dir: string, crlDer: Buffer, issuerPem: string): string {
  writeFileSync(join(dir, 'crl.der'), crlDer);
  writeFileSync(join(dir, 'crl-issuer.pem'), issuerPem);
  return openssl(['crl', '-inform', 'DER', '-in', join(dir, 'crl.der'), '-noout', '-text', '-CAfile',
    join(dir, 'crl-issuer.pem')]); // prettier-ignore
}
