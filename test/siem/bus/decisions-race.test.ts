// Replica B of a SIEM on PostgreSQL and the decisions stream, with this test standing in for
// replica A (it commits a revision in B's store and puts A's signed document on the stream when
// it chooses): whatever B's store poll sees first, B's agents get A's document, byte for byte, and
// the stream holds that one document for the revision.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecisionStore, DecisionStreamClient, jwsDecisionVerifier } from '../../../client/index.js';
import { systemClock } from '../../../common/clock.js';
import { signDecisionDelta } from '../../../common/decision-jws.js';
import type { LoadedIdentity } from '../../../common/identity-dir.js';
import { serviceId } from '../../../common/identity.js';
import { silentLogger } from '../../../common/log.js';
import { verifySiemChain } from '../../../common/siem-key.js';
import { DEFAULT_SETTINGS } from '../../../policies/index.js';
import {
  busLayout,
  decisionMsgId,
  deleteBusLayout,
  parseBusDecision,
  type BusDecision,
} from '../../../siem/bus/index.js';
import { ResponseEngine } from '../../../siem/playbooks/index.js';
import type { RunningSiem } from '../../../siem/running-siem.js';
import { signerOf } from '../../../siem/service/decision-key.js';
import { openPostgresSiem, postgresStores } from '../../../siem/store/index.js';
import type { SiemStoreFactory } from '../../../siem/store/stores.js';
import { startTestCa, type TestCa } from '../../helpers/ca.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/postgres.js';
import { tempDir } from '../../helpers/tmp.js';
import { call, enrollAs, enrollSiemIdentity, startTestSiem, waitFor, type Creds } from '../service/setup.js';

const NATS = process.env['EDGEWARD_TEST_NATS'] ?? 'nats://127.0.0.1:4222';
const dir = tempDir('edgeward-bus-race-');
let ca: TestCa;
let db: TestDatabase;
let nc: NatsConnection;
let identity: LoadedIdentity;
let node: Creds;
const prefixes: string[] = [];

beforeAll(async () => {
  [ca, db] = await Promise.all([startTestCa(), createTestDatabase()]);
  nc = await connect({ servers: NATS });
  identity = await enrollSiemIdentity(ca, dir);
  node = await enrollAs(ca, `spiffe://${ca.trustDomain}/node/edge-1`, join(dir, 'edge-1'));
}, 60_000);
afterAll(async () => {
  if (nc !== undefined) {
    const jsm = await nc.jetstreamManager();
    for (const p of prefixes) await deleteBusLayout(jsm, busLayout(p, 1));
    await nc.close();
  }
  await ca?.stop();
  await db?.drop();
});

/**
 * B's store, with a hook on its poll's revision read: `once(fn)` runs fn between the next such
 * read and its answer, so the answer is what the store held just before (another replica
 * committing in that moment, as it can at any time).
 */
function hookedStores(): { factory: SiemStoreFactory; once(fn: () => Promise<void>): Promise<void> } {
  const real = postgresStores(db.url);
  let hook: { fn: () => Promise<void>; done: () => void; failed: (e: unknown) => void } | undefined;
  const factory: SiemStoreFactory = async (o) => {
    const stores = await real(o);
    const store = new Proxy(stores.store, {
      get(target, name, receiver) {
        const v = Reflect.get(target, name, receiver) as unknown;
        if (name !== 'revision' || typeof v !== 'function') return v;
        return async (): Promise<number> => {
          const r = await (v as () => Promise<number>).call(target);
          const h = hook;
          // The poll's own read of the revision (server.ts), not a read the hub makes after it.
          if (h === undefined || new Error().stack?.includes('followStore') !== true) return r;
          hook = undefined;
          await h.fn().then(h.done, h.failed);
          return r;
        };
      },
    });
    return { ...stores, store };
  };
  return {
    factory,
    once: (fn) =>
      new Promise<void>((done, failed) => {
        hook = { fn, done, failed };
      }),
  };
}

/** Replica A's commit: the next revision in the shared store, and A's own signed delta for it. */
async function commitAsA(who: string): Promise<BusDecision> {
  const pg = await openPostgresSiem(db.url, { poolMax: 2 });
  try {
    const engine = new ResponseEngine({
      trustDomain: ca.trustDomain,
      config: { settings: DEFAULT_SETTINGS, playbooks: [] },
    });
    engine.importState(await pg.store.loadResponseState());
    const before = engine.revision;
    const now = Date.now();
    engine.createManual(
      { scope: { type: 'identity', value: `spiffe://${ca.trustDomain}/device/${who}` }, action: 'quarantine', ttlMs: 3_600_000, reason: 'replica a' },
      now,
    ); // prettier-ignore
    const a = engine.deltaSince(before, now);
    if (a.kind !== 'delta') throw new Error('no delta');
    await pg.store.saveDecisionChanges({
      revision: engine.revision,
      upserts: a.delta.upserts,
      removals: a.delta.removals,
      at: now,
      pending: engine.pending(),
    });
    const s = signerOf(identity);
    const jws = await signDecisionDelta(a.delta, s.key, s.kid);
    return { kind: 'delta', from: before, revision: engine.revision, kid: s.kid, jws };
  } finally {
    await pg.close();
  }
}

async function publishAsA(prefix: string, d: BusDecision): Promise<void> {
  const js = nc.jetstream();
  await js.publish(busLayout(prefix, 1).decisionsSubject, JSON.stringify(d), {
    msgID: decisionMsgId(d.revision),
  });
}

async function onStream(prefix: string): Promise<BusDecision[]> {
  const jsm = await nc.jetstreamManager();
  const stream = busLayout(prefix, 1).decisionsStream;
  const { state } = await jsm.streams.info(stream);
  const out: BusDecision[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++)
    out.push(parseBusDecision((await jsm.streams.getMessage(stream, { seq })).data));
  return out;
}

/** An agent on B: every document it applied, as received. */
async function agentOn(siem: RunningSiem, file: string) {
  const chain = await call(`${siem.url}/v1/decisions/key`, node);
  const key = verifySiemChain(chain.body.toString('utf8'), node.bundlePem, ca.trustDomain, Date.now());
  const store = new DecisionStore(
    file,
    jwsDecisionVerifier({
      publicKey: key.publicKey,
      trustDomain: ca.trustDomain,
      clock: systemClock,
      kid: key.kid,
    }),
    ca.trustDomain,
  );
  const frames: { kind: string; revision: number; token: string }[] = [];
  const client = new DecisionStreamClient({
    url: siem.url,
    expect: serviceId(ca.trustDomain, 'siem'),
    context: () => createSecureContext({ key: node.keyPem, cert: node.certPem, ca: node.bundlePem }),
    log: silentLogger,
    revision: () => store.revision,
    maxBackoff: 300,
    apply: async (kind, token) => {
      const r = kind === 'snapshot' ? await store.applySnapshot(token) : await store.applyDelta(token);
      frames.push({ kind, revision: r.set.revision, token });
      return r.set.revision;
    },
  });
  client.start();
  return { frames, stop: () => client.stop() };
}

async function startB(prefix: string, stores: SiemStoreFactory, sub: string): Promise<RunningSiem> {
  prefixes.push(prefix);
  mkdirSync(join(dir, sub, 'siem'), { recursive: true, mode: 0o700 });
  return startTestSiem(join(dir, sub), identity, ca.url, {
    stores,
    followMs: 25,
    busCatchUpMs: 3_000,
    bus: { servers: [NATS], prefix, shards: 1, correlate: [] },
  });
}

describe('one signed document per revision, whichever B sees first', () => {
  it('the store poll reads a revision whose document is not on the stream yet: B waits for A’s', async () => {
    const prefix = `race${randomBytes(4).toString('hex')}`;
    const hooked = hookedStores();
    const b = await startB(prefix, hooked.factory, 'b1');
    const agent = await agentOn(b, join(dir, 'edge-1', 'race-1.json'));
    try {
      await waitFor('the first snapshot from B', () => agent.frames.length > 0);
      // A commits while B's poll is between reading the revision and acting on it.
      let doc: BusDecision | undefined;
      await hooked.once(async () => {
        doc = await commitAsA('between-reads');
      });
      const a = doc as BusDecision;
      // Well within the grace, as a replica under load may take.
      await new Promise((r) => setTimeout(r, 400));
      await publishAsA(prefix, a);
      const frame = await waitFor('the revision at the agent on B', () =>
        agent.frames.find((f) => f.revision >= a.revision),
      );
      expect(frame).toMatchObject({ kind: 'delta', revision: a.revision });
      expect(frame.token).toBe(a.jws);
      expect((await onStream(prefix)).filter((d) => d.revision === a.revision)).toEqual([a]);
    } finally {
      await b.close();
      agent.stop();
    }
  }, 60_000);

  it('a revision stored and not yet published when B starts: B leaves it to A within the grace', async () => {
    const prefix = `race${randomBytes(4).toString('hex')}`;
    const a = await commitAsA('before-b-starts');
    const b = await startB(prefix, postgresStores(db.url), 'b2');
    try {
      await new Promise((r) => setTimeout(r, 400));
      await publishAsA(prefix, a);
      const docs = await waitFor('the revision on the stream', async () => {
        const d = await onStream(prefix);
        return d.some((x) => x.revision === a.revision) ? d : undefined;
      });
      expect(docs.filter((d) => d.revision === a.revision)).toEqual([a]);
      expect(b.hub.revision).toBe(a.revision);
    } finally {
      await b.close();
    }
  }, 60_000);
});
