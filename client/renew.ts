// `edgeward renew`: a new key and certificate over mTLS with the current one. Identities whose
// method re-attests (TPM, PUF) answer the CA's challenge with their prover on the same connection.
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import type { Prover } from '../attestation/index.js';
import { buildCsr } from '../common/csr.js';
import { loadIdentity, writeIdentity } from '../common/identity-dir.js';
import { EdgewardError } from '../common/errors.js';
import { parseIdentity } from '../common/identity.js';
import { toPem } from '../common/pem.js';
import { hostSans } from '../common/x509.js';
import { caRequest, checkIssued, endpointFromBundle, remoteCode, type IssuedResponse } from './ca-client.js';
import type { ServiceUrls } from './replicas.js';
import { csrKey } from './csr-key.js';

export interface RenewOptions {
  readonly ca: ServiceUrls;
  readonly dir: string;
  /** Needed when the identity's method re-attests at renewal. */
  readonly prover?: Prover;
  readonly print?: (line: string) => void;
}

export async function renew(o: RenewOptions): Promise<IssuedResponse> {
  const print = o.print ?? ((): void => undefined);
  const current = loadIdentity(o.dir);
  const ep = endpointFromBundle(o.ca, current.bundlePem, parseIdentity(current.identity).trustDomain);
  const creds = { keyPem: current.keyPem, certPem: current.certPem };
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  // A service keeps the host names it has (the CA checks them again against its declared names).
  const hosts = hostSans(new X509Certificate(current.certPem).subjectAltName);
  const csr = toPem('CERTIFICATE REQUEST', buildCsr(privateKey, publicKey, current.identity, hosts));
  const spkiDer = publicKey.export({ type: 'spki', format: 'der' });
  print(`renewing ${current.identity} (serial ${current.serial}) over mTLS`);
  let answer: unknown;
  try {
    answer = (await caRequest<unknown>(ep, 'POST', '/v1/renew', { csr }, creds)).json;
  } catch (err) {
    if (remoteCode(err) !== 'ERR_CA_REATTEST_REQUIRED') throw err;
    if (!o.prover)
      throw new EdgewardError(
        'ERR_ENROLL_REFUSED',
        'this identity must re-attest: give its attestation options',
        { cause: err },
      );
    print(`the CA asks for fresh ${o.prover.method} evidence`);
    const begun = await caRequest<{ session: string; challenge: Record<string, unknown> }>(
      ep,
      'POST',
      '/v1/renew/begin',
      { evidence: await o.prover.evidence() },
      creds,
    );
    const response = await o.prover.respond(begun.json.challenge, csrKey(spkiDer));
    answer = (
      await caRequest<unknown>(ep, 'POST', '/v1/renew', { csr, session: begun.json.session, response }, creds)
    ).json;
  }
  const issued = checkIssued(answer, current.identity, spkiDer);
  writeIdentity(o.dir, {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    certPem: issued.certificate,
    bundlePem: issued.bundle,
  });
  print(`renewed: serial ${issued.serial}, valid until ${issued.notAfter}`);
  return issued;
}
