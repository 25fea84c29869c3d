// The decision hub with a recording publisher and a real SQLite store: persisted revisions, one
// signed delta per change handed to every publisher in order, resync when signing fails, and
// followers started in order with the changes.
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyDecisions } from '../../../common/decision-jws.js';
import { silentLogger } from '../../../common/log.js';
import { ResponseEngine } from '../../../siem/playbooks/index.js';
import { DEFAULT_SETTINGS, parsePlaybookTexts } from '../../../policies/index.js';
import { asyncStore, openSqliteStoreSync } from '../../../siem/store/index.js';
import { DecisionHub, type DecisionMessage, type DecisionPublisher } from '../../../siem/service/hub.js';
import { alertOf } from '../../helpers/alerts.js';
import { tempDir } from '../../helpers/tmp.js';

const TD = 'factory.example';
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });

function setup(file: string) {
  // The hub writes through the domain's interface; the test reads the file at once.
  const store = openSqliteStoreSync(file, { synchronous: 'NORMAL' });
  const engine = new ResponseEngine({
    trustDomain: TD,
    config: { settings: DEFAULT_SETTINGS, playbooks: [] },
  });
  engine.importState(store.loadResponseState());
  let t = Date.UTC(2026, 0, 1);
  const hub = new DecisionHub({
    engine,
    store: asyncStore(store),
    signer: { key: privateKey, kid: 'k1' },
    now: () => t,
    log: silentLogger,
  });
  return { store, engine, hub, advance: (ms: number) => (t += ms), now: () => t };
}

/** A publisher that records what the hub hands it, and the store's revision at that moment. */
function recorder(h: { store: { loadResponseState(): { revision: number } } }) {
  const calls: (DecisionMessage & { stored: number })[] = [];
  let resyncs = 0;
  let closed = 0;
  const p: DecisionPublisher = {
    publish(m) {
      calls.push({ ...m, stored: h.store.loadResponseState().revision });
    },
    resync() {
      resyncs++;
    },
    close() {
      closed++;
    },
  };
  return { p, calls, resyncs: () => resyncs, closed: () => closed };
}

const manual = (value: string) => ({
  scope: { type: 'ip' as const, value },
  action: 'quarantine' as const,
  ttlMs: 60_000,
  reason: 'test',
});

describe('DecisionHub', () => {
  it('persists the pending list when it changes without a new revision (cap, reject)', async () => {
    const file = join(tempDir('edgeward-hub-'), 'pending.db');
    const config = parsePlaybookTexts([
      { name: 's.yaml', text: 'kind: response-settings\nblast-radius: { max-per-minute: 1 }\n' },
      {
        name: 'pb.yaml',
        text: 'kind: playbook\nid: pb-ip\nrules: [r-ip]\ndecisions:\n  - { scope: ip, from: source.ip, action: quarantine, ttl: 15m }\n',
      },
    ]);
    const open = () => {
      const store = openSqliteStoreSync(file, { synchronous: 'NORMAL' });
      const engine = new ResponseEngine({ trustDomain: TD, config });
      engine.importState(store.loadResponseState());
      const hub = new DecisionHub({
        engine,
        store: asyncStore(store),
        signer: { key: privateKey, kid: 'k1' },
        now: () => Date.UTC(2026, 0, 1),
        log: silentLogger,
      });
      return { store, hub };
    };
    const alert = (ip: string, i: number) =>
      alertOf(`a${i}`, Date.UTC(2026, 0, 1), { 'source.ip': ip }, { ruleId: 'r-ip', count: 3 });

    const a = open();
    await a.hub.handleAlerts([alert('192.0.2.1', 1)]);
    // The cap is reached: these two wait, and the revision does not move.
    const out = await a.hub.handleAlerts([alert('192.0.2.2', 2), alert('192.0.2.3', 3)]);
    expect(out.pending).toHaveLength(2);
    expect(out.revision).toBe(1);
    await a.hub.change((e) => e.reject(out.pending[0]!.id));
    a.store.close();
    const b = open();
    expect(b.store.loadResponseState().pending.map((p) => p.scope.value)).toEqual(['192.0.2.3']);
    b.store.close();
  });

  it('hands every publisher one verified delta per change, in order, after persisting it', async () => {
    const file = join(tempDir('edgeward-hub-'), 'siem.db');
    const h = setup(file);
    const a = recorder(h);
    const b = recorder(h);
    h.hub.addPublisher(a.p);
    h.hub.addPublisher(b.p);
    await h.hub.change((e, now) => e.createManual(manual('192.0.2.1'), now));
    await h.hub.change((e, now) => e.createManual(manual('192.0.2.2'), now));
    // A change that does not move the revision publishes nothing.
    await h.hub.change(() => undefined);
    await h.hub.settled();
    expect(a.calls.map(({ kind, from, revision, stored }) => ({ kind, from, revision, stored }))).toEqual([
      { kind: 'delta', from: 0, revision: 1, stored: 2 },
      { kind: 'delta', from: 1, revision: 2, stored: 2 },
    ]);
    expect(b.calls.map((m) => m.jws)).toEqual(a.calls.map((m) => m.jws));
    let last: number | null = 0;
    for (const m of a.calls) {
      const d = await verifyDecisions(m.jws, {
        publicKey,
        trustDomain: TD,
        lastApplied: last,
        now: h.now(),
        kid: 'k1',
      });
      if (d.kind !== 'delta') throw new Error('expected a delta');
      expect(d.delta.revision).toBe(m.revision);
      last = d.delta.revision;
    }
    expect(h.hub.published).toBe(2);
    // Persisted: a new engine over the same file resumes at revision 2 with both decisions.
    h.store.close();
    const again = setup(file);
    expect(again.engine.revision).toBe(2);
    expect(again.engine.active()).toHaveLength(2);
    again.store.close();
  });

  it('asks its publishers to resync when a change cannot be signed, and goes on', async () => {
    const h = setup(join(tempDir('edgeward-hub-'), 'siem.db'));
    const r = recorder(h);
    h.hub.addPublisher(r.p);
    const { privateKey: wrongKind } = generateKeyPairSync('ed25519');
    h.hub.setSigner({ key: wrongKind, kid: 'bad' });
    await h.hub.change((e, now) => e.createManual(manual('192.0.2.1'), now));
    await h.hub.settled();
    expect(r.resyncs()).toBe(1);
    expect(r.calls).toEqual([]);
    h.hub.setSigner({ key: privateKey, kid: 'k1' });
    await h.hub.change((e, now) => e.createManual(manual('192.0.2.2'), now));
    await h.hub.settled();
    expect(r.calls.map((m) => [m.from, m.revision])).toEqual([[1, 2]]);
    h.store.close();
  });

  it('a publisher that throws does not keep the change from the others', async () => {
    const h = setup(join(tempDir('edgeward-hub-'), 'siem.db'));
    const r = recorder(h);
    h.hub.addPublisher({
      publish() {
        throw new Error('broken transport');
      },
      resync() {},
      close() {},
    });
    h.hub.addPublisher(r.p);
    await h.hub.change((e, now) => e.createManual(manual('192.0.2.1'), now));
    await h.hub.change((e, now) => e.createManual(manual('192.0.2.2'), now));
    await h.hub.settled();
    expect(r.calls.map((m) => m.revision)).toEqual([1, 2]);
    expect(h.hub.published).toBe(2);
    h.store.close();
  });

  it('starts a follower in order: after the changes before it, before the changes after it', async () => {
    const h = setup(join(tempDir('edgeward-hub-'), 'siem.db'));
    const r = recorder(h);
    h.hub.addPublisher(r.p);
    for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3'])
      await h.hub.change((e, now) => e.createManual(manual(ip), now));
    const seen: string[] = [];
    const started = h.hub.inOrder(async () => {
      seen.push(`follower after ${r.calls.length} published`);
      return h.hub.signedSince(1);
    });
    await h.hub.change((e, now) => e.createManual(manual('192.0.2.4'), now));
    const first = await started;
    await h.hub.settled();
    expect(seen).toEqual(['follower after 3 published']);
    // The engine moved to 4 before the follower ran: it gets the delta to 4, and the publisher
    // carries 3→4 as well (the streams skip what a follower already holds).
    expect(first).toMatchObject({ kind: 'delta', revision: 4 });
    expect(r.calls.map((m) => m.revision)).toEqual([1, 2, 3, 4]);
    // A follower that fails does not stop the changes behind it.
    await expect(h.hub.inOrder(() => Promise.reject(new Error('gone')))).rejects.toThrow('gone');
    await h.hub.change((e, now) => e.createManual(manual('192.0.2.5'), now));
    await h.hub.settled();
    expect(r.calls.map((m) => m.revision)).toEqual([1, 2, 3, 4, 5]);
    h.store.close();
  });

  it('answers what a follower at a revision needs: a snapshot, a delta or nothing', async () => {
    const h = setup(join(tempDir('edgeward-hub-'), 'siem.db'));
    for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3'])
      await h.hub.change((e, now) => e.createManual(manual(ip), now));
    expect((await h.hub.signedSince(null)).kind).toBe('snapshot');
    const d = await h.hub.signedSince(1);
    expect(d).toMatchObject({ kind: 'delta', revision: 3 });
    const v = await verifyDecisions(d.jws ?? '', {
      publicKey,
      trustDomain: TD,
      lastApplied: 1,
      now: h.now(),
    });
    expect(v.kind === 'delta' && v.delta.upserts.length).toBe(2);
    expect(await h.hub.signedSince(3)).toEqual({ kind: 'current', revision: 3 });
    expect((await h.hub.signedSince(99)).kind).toBe('snapshot');
    h.store.close();
  });

  it('expiry removes decisions with a new revision; close lets every publisher go', async () => {
    const h = setup(join(tempDir('edgeward-hub-'), 'siem.db'));
    const r = recorder(h);
    h.hub.addPublisher(r.p);
    await h.hub.change((e, now) => e.createManual(manual('192.0.2.9'), now));
    h.advance(61_000);
    expect(await h.hub.expire()).toHaveLength(1);
    expect(h.engine.revision).toBe(2);
    expect(h.store.loadResponseState().decisions).toHaveLength(0);
    await h.hub.settled();
    expect(r.calls.map((m) => m.revision)).toEqual([1, 2]);
    h.hub.close();
    expect(r.closed()).toBe(1);
    h.store.close();
  });
});
