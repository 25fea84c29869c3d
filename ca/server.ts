// The CA's HTTPS API (fastify): enrollment, renewal and revocation over mTLS, bundle, CRL,
// health and metrics. A thin adapter over CaService; schemas on every route, compiled once.
import cluster from 'node:cluster';
import { generateKeyPairSync, type X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, type TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import { serverMethods, type AttestationMethod } from '../attestation/index.js';
import { methodsFor, type AttestationPolicy } from '../policies/index.js';
import { FILES, loadAuthority } from './authority.js';
import { caEventToEdgeEvent } from './events.js';
import { createCaDecisionFollower, type CaDecisionFollower } from './siem-follower.js';
import type { CredentialSubject } from './quarantine.js';
import type { Decision } from '../common/decisions.js';
import { MAX_SESSION_CHARS } from './sessions.js';
import {
  listenHostNames,
  permittedHostNames,
  SERVICE_NAMES_META,
  serviceNamesFromJson,
} from './service-names.js';
import { Reporter, httpsBatchSender, Spool, type ServiceUrls } from '../client/index.js';
import { serviceId } from '../common/identity.js';
import { passphraseFromEnv } from './keys.js';
import {
  CaService,
  type AuthenticatedPeer,
  type CaEvent,
  type CaRateLimits,
  type EnrollmentPolicy,
} from './service.js';
import { openCaStore } from './store-sqlite.js';
import type { CaStore, CaStoreFactory } from './store.js';
import { systemClock, type Clock } from '../common/clock.js';
import { EdgewardError } from '../common/errors.js';
import { createHttpsServer, listeningUrl, setServerTls } from '../common/http-server.js';
import { createLogger, type Logger } from '../common/log.js';
import { PROMETHEUS_CONTENT_TYPE } from '../common/metrics.js';
import { normalizeSerial, uriSans } from '../common/x509.js';
import type { KeyPolicy } from '../common/csr.js';

export interface CaServerOptions {
  /** The CA's keys (and, without `store`, its SQLite database). */
  readonly dataDir: string;
  /** Opens the CA's state; by default SQLite in dataDir. Replicas share a PostgreSQL one. */
  readonly store?: CaStoreFactory;
  readonly host: string;
  readonly port: number;
  readonly clock?: Clock;
  readonly log?: Logger;
  /**
   * The attestation policy (`--attestation-policy`): the CA then runs the `tpm` method and allows
   * per identity pattern only the methods it lists; without one, every method it runs is allowed.
   */
  readonly attestationPolicy?: AttestationPolicy;
  /** Methods to run besides the registry's (tests, benches). */
  readonly methods?: readonly AttestationMethod[];
  /** Which methods an identity may use; by default the attestation policy's, if any. */
  readonly policy?: EnrollmentPolicy;
  readonly leafTtlMs?: number;
  /** How far ahead of its signing the CRL's nextUpdate is (`--crl-validity`; default 1 h). */
  readonly crlValidityMs?: number;
  readonly keyPolicy?: KeyPolicy;
  readonly rateLimits?: CaRateLimits;
  readonly durability?: 'normal' | 'full';
  readonly bodyLimit?: number;
  /** Decisions to enforce besides those of the followed SIEM stream (for tests). */
  readonly quarantineOf?: (subject: CredentialSubject) => Decision | undefined;
  readonly onEvent?: (event: CaEvent) => void;
  /** The SIEM to report the CA's events to (mTLS as spiffe://TD/svc/ca, spooled while it is down). */
  /** The SIEM's URL, or its replicas' URLs (tried in turn). */
  readonly siem?: { readonly url: ServiceUrls };
}

export interface RunningCa {
  readonly url: string;
  readonly port: number;
  readonly service: CaService;
  readonly store: CaStore;
  readonly fingerprint: string;
  close(): Promise<void>;
}

const SERVER_CERT_TTL_MS = 24 * 3_600_000;

const str = (max: number): Record<string, unknown> => ({ type: 'string', minLength: 1, maxLength: max });
const obj = { type: 'object' };
const SCHEMAS = {
  begin: {
    type: 'object',
    required: ['id', 'method'],
    additionalProperties: false,
    properties: { id: str(2048), method: str(32), evidence: obj },
  },
  finish: {
    type: 'object',
    required: ['session', 'csr'],
    additionalProperties: false,
    properties: { session: str(MAX_SESSION_CHARS), csr: str(16_384), response: obj },
  },
  renewBegin: { type: 'object', additionalProperties: false, properties: { evidence: obj } },
  renew: {
    type: 'object',
    required: ['csr'],
    additionalProperties: false,
    properties: { csr: str(16_384), session: str(MAX_SESSION_CHARS), response: obj },
  },
  revoke: {
    type: 'object',
    additionalProperties: false,
    properties: { serial: str(64), id: str(2048), reason: str(32) },
  },
} as const;

/** The route kind used for audit records of refusals that happen before a handler runs. */
function routeKind(url: string): string | undefined {
  if (url.startsWith('/v1/enroll/begin')) return 'enroll.begin';
  if (url.startsWith('/v1/enroll/finish')) return 'enroll';
  if (url.startsWith('/v1/renew/begin')) return 'renew.begin';
  if (url.startsWith('/v1/renew')) return 'renew';
  if (url.startsWith('/v1/revoke')) return 'revoke';
  return undefined;
}

// A connection's client certificate cannot change (TLS 1.3, no post-handshake auth), so its
// parse is kept per socket for keep-alive requests; the store checks (known, unrevoked,
// unexpired) still run on every request.
const peers = new WeakMap<object, AuthenticatedPeer>();

/** The mTLS peer of a request, or a coded refusal saying why there is none. */
export function peerOf(req: FastifyRequest): AuthenticatedPeer {
  const sock = req.raw.socket as TLSSocket;
  const known = peers.get(sock);
  if (known) return known;
  const peer = readPeer(sock);
  peers.set(sock, peer);
  return peer;
}

function readPeer(sock: TLSSocket): AuthenticatedPeer {
  const cert: X509Certificate | undefined = sock.getPeerX509Certificate?.();
  if (!cert) throw new EdgewardError('ERR_CA_UNAUTHENTICATED');
  if (!sock.authorized) {
    const why = String(sock.authorizationError ?? '');
    if (why === 'CERT_HAS_EXPIRED') throw new EdgewardError('ERR_CA_CERT_EXPIRED');
    throw new EdgewardError('ERR_CA_CERT_UNTRUSTED', undefined, { detail: { why } });
  }
  const uris = uriSans(cert.subjectAltName);
  if (uris.length !== 1 || !uris[0])
    throw new EdgewardError('ERR_CA_CERT_UNKNOWN', 'certificate must carry one URI SAN');
  return { identity: uris[0], serial: normalizeSerial(cert.serialNumber) };
}

export async function startCaServer(o: CaServerOptions): Promise<RunningCa> {
  const clock = o.clock ?? systemClock;
  const log = o.log ?? createLogger('ca');
  const openStore =
    o.store ??
    ((so: { now: () => number }) => {
      if (!existsSync(join(o.dataDir, FILES.db)))
        throw new EdgewardError('ERR_CA_NOT_INITIALISED', `no CA in ${o.dataDir}: run edgeward ca init`);
      return Promise.resolve(
        openCaStore(join(o.dataDir, FILES.db), {
          now: so.now,
          ...(o.durability ? { durability: o.durability } : {}),
        }),
      );
    });
  const store = await openStore({ now: () => clock.now() });
  const trustDomain = await store.getMeta('trust_domain');
  if (!trustDomain) {
    await store.close();
    throw new EdgewardError('ERR_CA_NOT_INITIALISED', 'CA database has no trust domain');
  }
  const authority = loadAuthority(o.dataDir, trustDomain, passphraseFromEnv());
  const serviceNames = serviceNamesFromJson(await store.getMeta(SERVICE_NAMES_META));
  // With --siem the CA follows the SIEM's signed decision stream (set up below) and refuses
  // enrollments and renewals of quarantined credentials.
  let follower: CaDecisionFollower | undefined;
  let applying: Promise<void> = Promise.resolve();
  const attestation = o.attestationPolicy;
  const policy: EnrollmentPolicy | undefined =
    o.policy ?? (attestation ? { methodsFor: (identity) => methodsFor(attestation, identity) } : undefined);
  const service = new CaService(store, authority, {
    clock,
    log,
    methods: [
      ...serverMethods({ tokens: (h) => store.getToken(h), policy: o.attestationPolicy }),
      ...(o.methods ?? []),
    ],
    ...(policy ? { policy } : {}),
    ...(o.leafTtlMs ? { leafTtlMs: o.leafTtlMs } : {}),
    ...(o.crlValidityMs !== undefined ? { crlValidityMs: o.crlValidityMs } : {}),
    ...(o.keyPolicy ? { keyPolicy: o.keyPolicy } : {}),
    ...(o.rateLimits ? { rateLimits: o.rateLimits } : {}),
    serviceNames,
    ...(o.quarantineOf || o.siem
      ? {
          quarantineOf: (subject: CredentialSubject) =>
            o.quarantineOf?.(subject) ?? follower?.quarantineOf(subject),
        }
      : {}),
    // Reporter is set below, before the server takes its first request.
    onEvent: (e) => {
      o.onEvent?.(e);
      reporter?.emit(caEventToEdgeEvent(e, clock.now()));
    },
  });

  async function serverCredentials(): Promise<{ key: string; cert: string }> {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = key.publicKey.export({ type: 'spki', format: 'der' });
    // Where we listen, as far as the intermediate may vouch for it (curl and browsers check it).
    const hosts = permittedHostNames(serviceNames, listenHostNames(o.host));
    const cert = await service.issueService('ca', spki, hosts, SERVER_CERT_TTL_MS);
    return {
      key: key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      cert: authority.chainPem(cert.der),
    };
  }

  let creds = await serverCredentials();
  let reporter: Reporter | undefined;
  let spool: Spool | undefined;
  if (o.siem) {
    // One spool per process: `ca serve --workers N` gives each worker its own file.
    const suffix = cluster.isWorker && cluster.worker ? `-${cluster.worker.id}` : '';
    spool = new Spool(join(o.dataDir, `events-spool${suffix}.sqlite`), {
      maxEvents: 1_000_000,
      maxBytes: 256 * 1024 * 1024,
    });
    let ctx = createSecureContext({ ...creds, ca: authority.bundlePem });
    let ctxFor = creds;
    reporter = new Reporter({
      spool,
      send: httpsBatchSender({
        url: o.siem.url,
        expect: serviceId(trustDomain, 'siem'),
        context: () => {
          if (ctxFor !== creds) {
            ctx = createSecureContext({ ...creds, ca: authority.bundlePem });
            ctxFor = creds;
          }
          return ctx;
        },
      }),
      batchMax: 500,
      flushInterval: 200,
      log,
    });
    reporter.start();
    follower = createCaDecisionFollower({
      siemUrl: o.siem.url,
      trustDomain,
      credentials: () => ({ keyPem: creds.key, certPem: creds.cert, bundlePem: authority.bundlePem }),
      log,
      now: () => clock.now(),
      // One set at a time, in the order they arrive.
      onSet: (set) => {
        applying = applying
          .then(() => service.applyDecisions(set))
          .catch((err: unknown) => log.error({ err }, 'could not apply a decision set'));
      },
      file: join(o.dataDir, `siem-decisions${suffix}.json`),
    });
    await follower.start();
  }
  const app = createHttpsServer({
    log,
    bodyLimit: o.bodyLimit ?? 64 * 1024,
    timeouts: { requestMs: 15_000, keepAliveMs: 10_000 },
    tls: { ...creds, ca: [authority.bundlePem, authority.intPem], requestCert: true },
    onRefusal: async (e, err, req, reply) => {
      const kind = routeKind(req.url);
      // Handlers audit their own refusals; errors raised before a handler (parsing, schema,
      // size) are audited here.
      if (kind && !(err instanceof EdgewardError) && e.code !== 'ERR_INTERNAL') {
        await service.recordRefusal(kind, req.ip, e);
      }
      if (e.code === 'ERR_RATE_LIMITED') void reply.header('retry-after', String(service.retryAfter(req.ip)));
    },
  });
  app.addHook('onRequest', async (req) => {
    if (req.method === 'POST') service.checkIpRate(req.ip);
  });

  app.get('/healthz', async () => ({
    status: 'ok',
    trustDomain,
    // Public in the intermediate anyway; a service reads it to ask only for names it may have.
    serviceNames,
    ...(follower ? { siem: { connected: follower.connected, revision: follower.revision } } : {}),
  }));
  app.get('/metrics', async (_req, reply) =>
    reply.type(PROMETHEUS_CONTENT_TYPE).send(await service.renderMetrics()),
  );
  app.get<{ Querystring: { format?: string } }>(
    '/v1/bundle',
    { schema: { querystring: { type: 'object', properties: { format: { enum: ['pem', 'jwks'] } } } } },
    async (req, reply) => {
      if (req.query.format === 'jwks') return reply.type('application/json').send(await service.bundleJwks());
      return reply.type('application/x-pem-file').send(service.bundlePem());
    },
  );
  app.get('/v1/crl', async (_req, reply) => reply.type('application/pkix-crl').send(await service.crl()));

  app.post<{ Body: { id: string; method: string; evidence?: Record<string, unknown> } }>(
    '/v1/enroll/begin',
    { schema: { body: SCHEMAS.begin } },
    async (req) => service.begin(req.ip, req.body),
  );
  app.post<{ Body: { session: string; csr: string; response?: Record<string, unknown> } }>(
    '/v1/enroll/finish',
    { schema: { body: SCHEMAS.finish } },
    async (req) => issued(await service.finish(req.ip, req.body)),
  );
  app.post<{ Body: { evidence?: Record<string, unknown> } }>(
    '/v1/renew/begin',
    { schema: { body: SCHEMAS.renewBegin } },
    async (req) => service.renewBegin(req.ip, await authenticated(req, 'renew.begin'), req.body),
  );
  app.post<{ Body: { csr: string; session?: string; response?: Record<string, unknown> } }>(
    '/v1/renew',
    { schema: { body: SCHEMAS.renew } },
    async (req) => issued(await service.renew(req.ip, await authenticated(req, 'renew'), req.body)),
  );
  app.post<{ Body: { serial?: string; id?: string; reason?: string } }>(
    '/v1/revoke',
    { schema: { body: SCHEMAS.revoke } },
    async (req) => service.revoke(req.ip, await authenticated(req, 'revoke'), req.body),
  );

  /** The mTLS peer, or an audited refusal. */
  async function authenticated(req: FastifyRequest, kind: string): Promise<AuthenticatedPeer> {
    try {
      return peerOf(req);
    } catch (err) {
      if (err instanceof EdgewardError) await service.recordRefusal(kind, req.ip, err);
      throw err;
    }
  }

  const purge = setInterval(() => {
    service.purge().catch((err: unknown) => log.warn({ err }, 'purge of expired markers failed'));
  }, 30_000);
  purge.unref();
  // Our own server certificate is short-lived too: re-issued at half its lifetime.
  const rotate = setInterval(() => {
    serverCredentials().then(
      (c) => {
        creds = c;
        setServerTls(app, { ...creds, ca: [authority.bundlePem, authority.intPem] });
      },
      (err: unknown) => log.error({ err }, 'server certificate rotation failed'),
    );
  }, SERVER_CERT_TTL_MS / 2);
  rotate.unref();

  await app.listen({ host: o.host, port: o.port });
  const { url, port } = listeningUrl(app, o.host, o.port);
  return {
    url,
    port,
    service,
    store,
    fingerprint: authority.rootFingerprint,
    async close() {
      clearInterval(purge);
      clearInterval(rotate);
      await app.close();
      follower?.stop();
      await reporter?.stop();
      spool?.close();
      await applying;
      await store.close();
    },
  };
}

function issued(r: {
  identity: string;
  serial: string;
  notAfter: number;
  certificate: string;
  bundle: string;
}): Record<string, unknown> {
  return {
    identity: r.identity,
    serial: r.serial,
    notAfter: new Date(r.notAfter).toISOString(),
    certificate: r.certificate,
    bundle: r.bundle,
  };
}
