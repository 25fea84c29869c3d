// `edgeward ca ...`: init, serve, token, revoke, release, audit verify.
import cluster from 'node:cluster';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { hostPort, optional, parseCommand, required, UsageError, usageLine } from '../common/args.js';
import { command } from '../common/commands.js';
import { parseDuration, systemClock } from '../common/clock.js';
import { EdgewardError } from '../common/errors.js';
import { parseIdentity } from '../common/identity.js';
import { createLogger } from '../common/log.js';
import { createPrivateFile } from '../common/private-files.js';
import { verifyAuditChain } from './audit.js';
import { FILES, loadAuthority } from './authority.js';
import { initCa } from './init.js';
import { listIdentities, showIdentity } from './listing.js';
import { passphraseFromEnv } from './keys.js';
import { newJoinToken, METHOD_NAMES } from '../attestation/index.js';
import { startCaServer } from './server.js';
import { CaService, CRL_VALIDITY_MAX_MS, CRL_VALIDITY_MIN_MS, foreignTrustDomain } from './service.js';
import { openCaStore } from './store-sqlite.js';
import { openPostgresCaStore } from './store-postgres.js';
import type { CaStore, CaStoreFactory } from './store.js';
import { parsePostgresUrl } from '../common/postgres.js';
import {
  describeAttestationPolicy,
  loadAttestationPolicy,
  type AttestationPolicy,
} from '../policies/index.js';
import { parseServiceNames } from './service-names.js';
import { importPufRecord } from '../attestation/puf/index.js';

/** Registration records are small: helper data and at most 1024 CRPs. */
const MAX_PUF_RECORD_BYTES = 512 * 1024;
import type { KeyKind, KeyPolicy } from '../common/csr.js';
import type { BucketSpec } from '../common/rate-limit.js';

const USAGE = {
  init: usageLine(command('ca init')),
  serve: usageLine(command('ca serve')),
  token: usageLine(command('ca token')),
  revoke: usageLine(command('ca revoke')),
  release: usageLine(command('ca release')),
  audit: usageLine(command('ca audit verify')),
  puf: usageLine(command('ca puf import')),
} as const;

/** `--store postgres://...`: the state CA replicas share; without it, SQLite in --data. */
function storeFactory(url: string | undefined): CaStoreFactory | undefined {
  if (url === undefined) return undefined;
  const parsed = parsePostgresUrl(url);
  return (o) => openPostgresCaStore(parsed, { now: o.now });
}

async function openExisting(dir: string, storeUrl: string | undefined): Promise<CaStore> {
  const shared = storeFactory(storeUrl);
  if (shared) return shared({ now: () => systemClock.now() });
  if (!existsSync(join(dir, FILES.db)))
    throw new EdgewardError('ERR_CA_NOT_INITIALISED', `no CA in ${dir}: run edgeward ca init`);
  return openCaStore(join(dir, FILES.db));
}

/** `ca token --out FILE`: a new file (never overwritten), 0600, holding the token and a newline. */
function createTokenFile(file: string, token: string): void {
  try {
    createPrivateFile(file, `${token}\n`);
  } catch (cause) {
    const why = (cause as NodeJS.ErrnoException).code ?? 'error';
    throw new EdgewardError('ERR_SECRET_FILE', `cannot create ${file} (${why}); it must not exist yet`, {
      cause,
    });
  }
}

async function trustDomainOf(store: CaStore): Promise<string> {
  const td = await store.getMeta('trust_domain');
  if (!td) throw new EdgewardError('ERR_CA_NOT_INITIALISED', 'CA database has no trust domain');
  return td;
}

/**
 * `ca serve --workers N`: N processes share the listening socket (node:cluster) and the SQLite
 * store; sessions are sealed tokens every worker opens, so a begin and its finish may land on
 * different workers. A worker that dies after it served is replaced; one that exits before it
 * was ready (no CA in --data, an unreadable policy, a port taken) stops them all with its status,
 * rather than being started again and again.
 */
async function superviseWorkers(n: number, out: (s: string) => void): Promise<number> {
  const log = createLogger('ca');
  let stopping = false;
  let announced = false;
  const ready = new Set<number>();
  const fork = (): void => {
    const w = cluster.fork();
    w.on('message', (m: { ready?: boolean; url?: string; fingerprint?: string; trustDomain?: string }) => {
      if (!m.ready) return;
      ready.add(w.id);
      if (!announced && ready.size === n) {
        announced = true;
        out(`edgeward CA for ${m.trustDomain ?? ''} listening on ${m.url ?? ''} (${n} workers)`);
        out(`root fingerprint (SHA-256): ${m.fingerprint ?? ''}`);
      }
    });
    w.on('exit', (code, signal) => {
      const served = ready.delete(w.id);
      if (stopping) return;
      if (!served) {
        log.error({ worker: w.process.pid, exitCode: code, signal }, 'CA worker failed to start; stopping');
        startFailure = code !== null && code !== 0 ? code : 1;
        stop();
        return;
      }
      log.error({ worker: w.process.pid, exitCode: code, signal }, 'CA worker exited; starting another');
      fork();
    });
  };
  let startFailure = 0;
  let stop = (): void => {};
  await new Promise<void>((resolve) => {
    stop = (): void => {
      if (stopping) return;
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
      const wait = setInterval(() => {
        if (Object.keys(cluster.workers ?? {}).length === 0) {
          clearInterval(wait);
          resolve();
        }
      }, 50);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    for (let i = 0; i < n; i++) fork();
  });
  return startFailure;
}

/** A bucket of N attempts per minute (burst N), each worker's share of it. */
function perMinute(text: string, workers: number): BucketSpec {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`a rate is a positive number, got ${text}`);
  return { rate: n / 60 / workers, burst: Math.max(1, n / workers) };
}

function parseKeyTypes(text: string): KeyPolicy {
  const allow = text.split(',').map((s) => s.trim());
  for (const k of allow) {
    if (k !== 'ec-p256' && k !== 'ec-p384' && k !== 'rsa')
      throw new UsageError(`--key-types: unknown key type ${k} (ec-p256, ec-p384, rsa)`);
  }
  return { allow: allow as KeyKind[], rsaMinBits: 2048 };
}

export async function runCaCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'init': {
      const a = parseCommand(rest, command('ca init'));
      // Checked before anything is written: the names go into the intermediate for good.
      const list = (v: unknown): string | undefined => (Array.isArray(v) ? v.join(',') : undefined);
      const serviceNames = parseServiceNames(list(a.dns), list(a.ip));
      const initStore = storeFactory(optional(a.store));
      const r = await initCa({
        ...(initStore ? { store: initStore } : {}),
        dataDir: required(a.data, 'data', USAGE.init),
        trustDomain: required(a['trust-domain'], 'trust-domain', USAGE.init),
        clock: systemClock,
        passphrase: passphraseFromEnv(),
        serviceNames,
      });
      out(`CA created in ${required(a.data, 'data', USAGE.init)}`);
      out(`root fingerprint (SHA-256): ${r.fingerprint}`);
      out(`admin identity: ${r.adminDir}`);
      out(
        `service names the CA may vouch for: ${[...serviceNames.dns, ...serviceNames.ips].join(', ') || 'none (URIs of the trust domain only)'}`,
      );
      if (!passphraseFromEnv())
        out('warning: EDGEWARD_CA_PASSPHRASE was not set; CA keys are stored unencrypted (0600)');
      return 0;
    }
    case 'serve': {
      const a = parseCommand(rest, command('ca serve'));
      const workers = Number(optional(a.workers) ?? '1');
      if (!Number.isInteger(workers) || workers < 1 || workers > 64)
        throw new UsageError('--workers is 1 to 64');
      if (workers > 1 && cluster.isPrimary) return superviseWorkers(workers, out);
      const dataDir = required(a.data, 'data', USAGE.serve);
      const { host, port } = hostPort(required(a.listen, 'listen', USAGE.serve), 'listen');
      const durability = optional(a.durability);
      if (durability !== undefined && durability !== 'normal' && durability !== 'full')
        throw new UsageError('--durability is normal or full');
      const rateIp = optional(a['rate-ip']);
      const rateId = optional(a['rate-identity']);
      const rateEnroll = optional(a['rate-enroll']);
      const leafTtl = optional(a['leaf-ttl']);
      const crlValidity = optional(a['crl-validity']);
      let crlValidityMs: number | undefined;
      if (crlValidity !== undefined) {
        try {
          crlValidityMs = parseDuration(crlValidity);
        } catch {
          crlValidityMs = NaN;
        }
        if (!(crlValidityMs >= CRL_VALIDITY_MIN_MS && crlValidityMs <= CRL_VALIDITY_MAX_MS))
          throw new UsageError('--crl-validity must be a duration from 5s to 30d, such as 1h');
      }
      const keyTypes = optional(a['key-types']);
      const log = createLogger('ca');
      const policyFile = optional(a['attestation-policy']);
      let attestationPolicy: AttestationPolicy | undefined;
      if (policyFile !== undefined) {
        attestationPolicy = loadAttestationPolicy(policyFile, METHOD_NAMES);
        log.info(
          { policyFile, policy: describeAttestationPolicy(attestationPolicy) },
          'attestation policy loaded',
        );
      }
      const sharedStore = storeFactory(optional(a.store));
      const ca = await startCaServer({
        dataDir,
        ...(sharedStore ? { store: sharedStore } : {}),
        host,
        port,
        log,
        ...(attestationPolicy ? { attestationPolicy } : {}),
        ...(leafTtl ? { leafTtlMs: parseDuration(leafTtl) } : {}),
        ...(crlValidityMs !== undefined ? { crlValidityMs } : {}),
        ...(durability ? { durability } : {}),
        ...(keyTypes ? { keyPolicy: parseKeyTypes(keyTypes) } : {}),
        ...(Array.isArray(a.siem) && a.siem.length > 0 ? { siem: { url: a.siem } } : {}),
        // Each worker keeps its own buckets, so it gets its share of the configured rates.
        rateLimits: {
          ...(rateIp
            ? { perIp: { rate: Number(rateIp) / workers, burst: (Number(rateIp) * 2) / workers } }
            : {}),
          ...(rateId ? { perIdentity: perMinute(rateId, workers) } : {}),
          ...(rateEnroll ? { perEnrollSource: perMinute(rateEnroll, workers) } : {}),
        },
      });
      if (cluster.isWorker) {
        process.send?.({
          ready: true,
          url: ca.url,
          fingerprint: ca.fingerprint,
          trustDomain: ca.service.trustDomain,
        });
      } else {
        out(`edgeward CA for ${ca.service.trustDomain} listening on ${ca.url}`);
        out(`root fingerprint (SHA-256): ${ca.fingerprint}`);
      }
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          // A worker's IPC channel to the primary keeps it alive after the server closes.
          void ca.close().then(() => (cluster.isWorker ? process.exit(0) : resolve()));
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      return 0;
    }
    case 'token': {
      const a = parseCommand(rest, command('ca token'));
      const store = await openExisting(required(a.data, 'data', USAGE.token), optional(a.store));
      try {
        const id = parseIdentity(required(a.id, 'id', USAGE.token));
        const td = await trustDomainOf(store);
        if (id.trustDomain !== td) throw foreignTrustDomain(id.trustDomain, td);
        const ttl = parseDuration(optional(a.ttl) ?? '15m');
        if (ttl < 60_000 || ttl > 7 * 86_400_000) throw new UsageError('--ttl must be between 1m and 7d');
        const now = systemClock.now();
        const { token, hash } = newJoinToken();
        const file = optional(a.out);
        // The file first: when it cannot be made (it exists already), no token is stored.
        if (file !== undefined) createTokenFile(file, token);
        await store.createToken({ hash, identity: id.uri, createdAt: now, expiresAt: now + ttl }, now);
        out(file === undefined ? token : `wrote a join token for ${id.uri} to ${file} (mode 0600)`);
        return 0;
      } finally {
        await store.close();
      }
    }
    case 'revoke': {
      const a = parseCommand(rest, command('ca revoke'));
      const dataDir = required(a.data, 'data', USAGE.revoke);
      const reason = required(a.reason, 'reason', USAGE.revoke);
      const store = await openExisting(dataDir, optional(a.store));
      try {
        const td = await trustDomainOf(store);
        const service = new CaService(store, loadAuthority(dataDir, td, passphraseFromEnv()), {
          clock: systemClock,
          log: createLogger('ca'),
          methods: [],
        });
        const r = await service.revokeLocal(
          { serial: optional(a.serial), id: optional(a.id), reason },
          'cli',
        );
        out(
          r.revoked.length === 0
            ? 'nothing to revoke (already revoked or expired)'
            : `revoked ${r.revoked.join(', ')}`,
        );
        return 0;
      } finally {
        await store.close();
      }
    }
    case 'release': {
      const a = parseCommand(rest, command('ca release'));
      const store = await openExisting(required(a.data, 'data', USAGE.release), optional(a.store));
      try {
        const id = parseIdentity(required(a.id, 'id', USAGE.release));
        if (a.hold === true) {
          // The analyst's release after a quarantined credential: the holder may renew (and
          // re-attest) or enroll again; the decision itself, while live, still refuses that credential.
          const n = await store.releaseHolds(id.uri, systemClock.now(), 'cli');
          out(n === 0 ? `no renewal hold on ${id.uri}` : `released the renewal hold of ${id.uri}`);
          return 0;
        }
        const n = await store.releaseBindings(id.uri, systemClock.now(), 'cli');
        out(`released ${n} hardware binding(s) of ${id.uri}`);
        return 0;
      } finally {
        await store.close();
      }
    }
    case 'list': {
      const a = parseCommand(rest, command('ca list'));
      const store = await openExisting(String(a['data']), optional(a.store));
      try {
        for (const line of await listIdentities(store, systemClock.now())) out(line);
        return 0;
      } finally {
        await store.close();
      }
    }
    case 'show': {
      const a = parseCommand(rest, command('ca show'));
      if (a._.length !== 1)
        throw new UsageError(`name one identity\nusage: ${usageLine(command('ca show'))}`);
      const id = parseIdentity(a._[0]).uri;
      const store = await openExisting(String(a['data']), optional(a.store));
      try {
        const lines = await showIdentity(store, id, systemClock.now());
        if (!lines) throw new EdgewardError('ERR_NOT_FOUND', `the CA knows no identity ${id}`);
        for (const line of lines) out(line);
        return 0;
      } finally {
        await store.close();
      }
    }
    case 'audit': {
      const [verb, ...more] = rest;
      if (verb !== 'verify') throw new UsageError(`usage: ${USAGE.audit}`);
      const a = parseCommand(more, command('ca audit verify'));
      const store = await openExisting(required(a.data, 'data', USAGE.audit), optional(a.store));
      try {
        const v = await verifyAuditChain(store.auditRecords());
        if (v.ok) {
          out(`audit chain OK: ${v.count} records, head ${v.head}`);
          return 0;
        }
        out(
          `audit chain BROKEN at record ${v.brokenAt}: ${v.reason} (${v.count} records verified before it)`,
        );
        return 1;
      } finally {
        await store.close();
      }
    }
    case 'puf': {
      const [verb, ...more] = rest;
      if (verb !== 'import') throw new UsageError(`usage: ${USAGE.puf}`);
      const a = parseCommand(more, command('ca puf import'));
      const file = a._[0];
      if (!file || a._.length !== 1) throw new UsageError(`usage: ${USAGE.puf}`);
      const store = await openExisting(required(a.data, 'data', USAGE.puf), optional(a.store));
      try {
        const trustDomain = await trustDomainOf(store);
        if (statSync(file).size > MAX_PUF_RECORD_BYTES)
          throw new EdgewardError('ERR_ATT_PUF_RECORD_TOO_LARGE');
        let input: unknown;
        try {
          input = JSON.parse(readFileSync(file, 'utf8'));
        } catch (err) {
          throw new EdgewardError('ERR_ATT_PUF_RECORD_MALFORMED', 'registration record is not JSON', {
            cause: err,
          });
        }
        const now = systemClock.now();
        const r = await store.transaction(async (tx) => {
          const done = await importPufRecord(tx, input, { trustDomain });
          await tx.audit(
            {
              kind: 'puf.import',
              data: { identity: done.identity, publicKey: done.publicKey, crps: done.crps, by: 'cli' },
            },
            now,
          );
          return done;
        });
        out(
          `registered PUF device ${r.identity} (public key ${r.publicKey.slice(0, 16)}…, ${r.crps} challenge-response pairs)`,
        );
        return 0;
      } finally {
        await store.close();
      }
    }
    default:
      throw new UsageError(
        `usage: edgeward ca (init|serve|token|revoke|release|audit verify|puf import) ...\n${Object.values(USAGE).join('\n')}`,
      );
  }
}
