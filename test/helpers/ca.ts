// A real CA for tests: `ca init` into a temp folder, then the HTTPS server on 127.0.0.1 with a
// real SQLite file and real TLS. Other parts' integration tests use it.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import {
  FILES,
  type AuditRecord,
  initCa,
  type ServiceNames,
  startCaServer,
  type CaServerOptions,
  type RunningCa,
  type EnrollmentPolicy,
} from '../../ca/index.js';
import { type AttestationMethod, createTokenProver, newJoinToken } from '../../attestation/index.js';
import { enroll } from '../../client/index.js';
import { systemClock, type Clock } from '../../common/clock.js';
import { silentLogger } from '../../common/log.js';
import { createPrivateFile } from '../../common/private-files.js';
import { tempDir } from './tmp.js';

export const TEST_TD = 'factory.example';

export interface TestCa {
  readonly url: string;
  readonly fingerprint: string;
  readonly dataDir: string;
  readonly adminDir: string;
  readonly rootPem: string;
  readonly trustDomain: string;
  readonly running: RunningCa;
  /** A one-time join token for the identity. */
  token(id: string, ttlMs?: number): Promise<string>;
  /** The same in a new 0600 file, for `--token-file` (tokens never go on a command line). */
  tokenFile(id: string, ttlMs?: number): Promise<string>;
  auditRecords(): Promise<AuditRecord[]>;
  /** Audit records of a kind, with their data parsed. */
  audits(kind: string): Promise<Array<Record<string, unknown>>>;
  stop(): Promise<void>;
}

export interface TestCaOptions {
  readonly methods?: readonly AttestationMethod[];
  readonly policy?: EnrollmentPolicy;
  readonly clock?: Clock;
  readonly leafTtlMs?: number;
  readonly rateLimits?: CaServerOptions['rateLimits'];
  readonly dataDir?: string;
  readonly keyPolicy?: CaServerOptions['keyPolicy'];
  /** Decisions the CA enforces as if it followed a SIEM. */
  readonly quarantineOf?: CaServerOptions['quarantineOf'];
  /** The DNS names and IP ranges `ca init` declares (default none). */
  readonly serviceNames?: ServiceNames;
}

export async function startTestCa(o: TestCaOptions = {}): Promise<TestCa> {
  const clock = o.clock ?? systemClock;
  const dataDir = o.dataDir ?? join(tempDir('edgeward-ca-'), 'ca');
  const init = await initCa({
    dataDir,
    trustDomain: TEST_TD,
    clock,
    passphrase: undefined,
    ...(o.serviceNames ? { serviceNames: o.serviceNames } : {}),
  });
  const tokens = tempDir('edgeward-tokens-');
  const running = await startCaServer({
    dataDir,
    host: '127.0.0.1',
    port: 0,
    clock,
    log: silentLogger,
    ...(o.methods ? { methods: o.methods } : {}),
    ...(o.policy ? { policy: o.policy } : {}),
    ...(o.leafTtlMs ? { leafTtlMs: o.leafTtlMs } : {}),
    ...(o.keyPolicy ? { keyPolicy: o.keyPolicy } : {}),
    ...(o.quarantineOf ? { quarantineOf: o.quarantineOf } : {}),
    rateLimits: o.rateLimits ?? {
      perIp: { rate: 10_000, burst: 10_000 },
      perIdentity: { rate: 1000, burst: 1000 },
      perEnrollSource: { rate: 10_000, burst: 10_000 },
    },
  });
  const token = async (id: string, ttlMs = 15 * 60_000): Promise<string> => {
    const t = newJoinToken();
    const now = clock.now();
    await running.store.createToken(
      { hash: t.hash, identity: id, createdAt: now, expiresAt: now + ttlMs },
      now,
    );
    return t.token;
  };
  return {
    url: running.url,
    fingerprint: init.fingerprint,
    dataDir,
    adminDir: init.adminDir,
    rootPem: running.service.bundlePem(),
    trustDomain: TEST_TD,
    running,
    token,
    async tokenFile(id, ttlMs) {
      const file = join(tokens, `${randomUUID()}.token`);
      createPrivateFile(file, `${await token(id, ttlMs)}\n`);
      return file;
    },
    auditRecords: () => all(running.store.auditRecords()),
    async audits(kind) {
      return (await all(running.store.auditRecords()))
        .filter((r) => r.kind === kind)
        .map((r) => JSON.parse(r.data) as Record<string, unknown>);
    },
    stop: () => running.close(),
  };
}

export const caFile = (ca: TestCa, f: keyof typeof FILES): string => join(ca.dataDir, FILES[f]);

/** Enrolls `id` at the test CA with a fresh join token, writing the identity folder `out`. */
export async function enrollWithToken(ca: TestCa, id: string, out: string): ReturnType<typeof enroll> {
  return enroll({
    ca: ca.url,
    fingerprint: ca.fingerprint,
    id,
    prover: createTokenProver(await ca.token(id)),
    out,
  });
}

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}
