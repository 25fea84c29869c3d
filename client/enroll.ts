// `edgeward enroll`: make a P-256 key and CSR, prove the device with an attestation method's
// prover (token, tpm, puf), and write the identity folder.
import { generateKeyPairSync } from 'node:crypto';
import type { Prover } from '../attestation/index.js';
import { buildCsr, NO_HOST_NAMES, type HostNames } from '../common/csr.js';
import { writeIdentity } from '../common/identity-dir.js';
import { parseIdentity } from '../common/identity.js';
import { toPem } from '../common/pem.js';
import type { ServiceUrls } from './replicas.js';
import { csrKey } from './csr-key.js';
import { caRequest, checkIssued, pinCa, type CaEndpoint, type IssuedResponse } from './ca-client.js';

export interface EnrollOptions {
  readonly ca: ServiceUrls;
  readonly fingerprint: string;
  readonly id: string;
  readonly prover: Prover;
  readonly out: string;
  /** Step-by-step progress for the operator. */
  readonly print?: (line: string) => void;
  /** A service's DNS names and IP addresses (where it listens), within what the CA permits. */
  readonly hosts?: HostNames;
}

export async function enroll(o: EnrollOptions): Promise<IssuedResponse> {
  const print = o.print ?? ((): void => undefined);
  const id = parseIdentity(o.id);
  print(`pinning the CA at ${typeof o.ca === 'string' ? o.ca : o.ca.join(', ')} by its root fingerprint`);
  const ep = await pinCa(o.ca, o.fingerprint, id.trustDomain);
  return enrollWith(ep, o.id, o.prover, o.out, print, o.hosts);
}

export async function enrollWith(
  ep: CaEndpoint,
  id: string,
  prover: Prover,
  out: string,
  print: (line: string) => void,
  hosts: HostNames = NO_HOST_NAMES,
): Promise<IssuedResponse> {
  print('generating an ECDSA P-256 key and CSR');
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const csrDer = buildCsr(privateKey, publicKey, id, hosts);
  const spkiDer = publicKey.export({ type: 'spki', format: 'der' });
  print(`collecting ${prover.method} evidence`);
  const evidence = await prover.evidence();
  print('POST /v1/enroll/begin');
  const begun = await caRequest<{ session: string; challenge: Record<string, unknown> }>(
    ep,
    'POST',
    '/v1/enroll/begin',
    {
      id,
      method: prover.method,
      evidence,
    },
  );
  print(`answering the CA's ${prover.method} challenge`);
  const response = await prover.respond(begun.json.challenge, csrKey(spkiDer));
  print('POST /v1/enroll/finish');
  const done = await caRequest<unknown>(ep, 'POST', '/v1/enroll/finish', {
    session: begun.json.session,
    csr: toPem('CERTIFICATE REQUEST', csrDer),
    response,
  });
  const issued = checkIssued(done.json, id, spkiDer);
  writeIdentity(out, {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    certPem: issued.certificate,
    bundlePem: issued.bundle,
  });
  print(`issued ${issued.identity} serial ${issued.serial}, valid until ${issued.notAfter}; wrote ${out}`);
  return issued;
}
