// Shared set-up of the SIEM service tests: a real CA, the SIEM enrolled with a join token, node
// identities, mTLS requests and a real agent-side stream subscriber (client/decisions-client.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { DecisionStreamClient, DecisionStore, jwsDecisionVerifier } from '../../../client/index.js';
import { systemClock } from '../../../common/clock.js';
import { loadIdentity, type LoadedIdentity } from '../../../common/identity-dir.js';
import { loadRules } from '../../../policies/rules/index.js';
import { loadPlaybooks } from '../../../policies/index.js';
import { startSiemServer, type SiemServerOptions } from '../../../siem/server.js';
import type { RunningSiem } from '../../../siem/running-siem.js';
import { ensureSiemIdentity } from '../../../siem/service/identity.js';
import { serviceId } from '../../../common/identity.js';
import { silentLogger } from '../../../common/log.js';
import { verifySiemChain } from '../../../siem/service/decision-key.js';
import { rawRequest, type RawResult } from '../../helpers/https.js';
import { enrollWithToken, type TestCa } from '../../helpers/ca.js';

export const ROOT = join(import.meta.dirname, '..', '..', '..');
export const RULES = join(ROOT, 'policies', 'default', 'rules');
export const PLAYBOOKS = join(ROOT, 'policies', 'default', 'playbooks');

export interface Creds {
  readonly keyPem: string;
  readonly certPem: string;
  readonly bundlePem: string;
  readonly identity: string;
}

export async function enrollAs(ca: TestCa, id: string, out: string): Promise<Creds> {
  await enrollWithToken(ca, id, out);
  const l = loadIdentity(out);
  return { keyPem: l.keyPem, certPem: l.certPem, bundlePem: l.bundlePem, identity: l.identity };
}

export function adminCreds(ca: TestCa): Creds {
  const r = (f: string): string => readFileSync(join(ca.adminDir, f), 'utf8');
  return {
    keyPem: r('key.pem'),
    certPem: r('cert.pem'),
    bundlePem: r('bundle.pem'),
    identity: serviceId(ca.trustDomain, 'admin'),
  };
}

export function call(
  url: string,
  creds: Creds | undefined,
  o: { method?: string; body?: unknown; raw?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<RawResult> {
  const body = o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
  return rawRequest(url, {
    method: o.method ?? (body === undefined ? 'GET' : 'POST'),
    ...(body !== undefined ? { body } : {}),
    ...(o.headers ? { headers: o.headers } : {}),
    ...(creds ? { key: creds.keyPem, cert: creds.certPem, ca: creds.bundlePem } : {}),
  });
}

export async function waitFor<T>(
  what: string,
  fn: () => T | undefined | Promise<T | undefined>,
  ms = 10_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A real agent-side subscriber: the agent's SSE client, its verified on-disk store and verifier. */
export async function subscriber(siemUrl: string, creds: Creds, dir: string, trustDomain: string) {
  const chain = await call(`${siemUrl}/v1/decisions/key`, creds);
  const key = verifySiemChain(chain.body.toString('utf8'), creds.bundlePem, trustDomain, Date.now());
  const store = new DecisionStore(
    join(dir, 'decisions.json'),
    jwsDecisionVerifier({ publicKey: key.publicKey, trustDomain, clock: systemClock, kid: key.kid }),
    trustDomain,
  );
  const applied: { kind: string; revision: number }[] = [];
  const client = new DecisionStreamClient({
    url: siemUrl,
    expect: serviceId(trustDomain, 'siem'),
    context: () => createSecureContext({ key: creds.keyPem, cert: creds.certPem, ca: creds.bundlePem }),
    log: silentLogger,
    revision: () => store.revision,
    maxBackoff: 300,
    apply: async (kind, token) => {
      const r = kind === 'snapshot' ? await store.applySnapshot(token) : await store.applyDelta(token);
      applied.push({ kind, revision: r.set.revision });
      return r.set.revision;
    },
  });
  client.start();
  return { client, store, applied, key };
}

/** The SIEM's identity, enrolled from `ca` with a join token into DIR/siem/identity. */
export async function enrollSiemIdentity(ca: TestCa, dir: string): Promise<LoadedIdentity> {
  return ensureSiemIdentity({
    dir: join(dir, 'siem', 'identity'),
    caUrl: ca.url,
    fingerprint: ca.fingerprint,
    token: await ca.token(serviceId(ca.trustDomain, 'siem')),
  });
}

/** A SIEM on 127.0.0.1 with the default rules and playbooks, its data in DIR/siem. */
export async function startTestSiem(
  dir: string,
  identity: LoadedIdentity,
  caUrl: string,
  extra: Partial<SiemServerOptions> = {},
): Promise<RunningSiem> {
  return startSiemServer({
    dataDir: join(dir, 'siem'),
    host: '127.0.0.1',
    port: 0,
    identity,
    identityDir: join(dir, 'siem', 'identity'),
    caUrl,
    rules: await loadRules(RULES),
    playbooks: await loadPlaybooks(PLAYBOOKS),
    log: silentLogger,
    synchronous: 'NORMAL',
    ...extra,
  });
}
