// The decision hub with in-memory subscribers and a real SQLite store: persisted revisions, one
// signed delta per change in order, snapshot or delta on subscribe, slow subscribers dropped.
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyDecisions } from '../../../common/decision-jws.js';
import { silentLogger } from '../../../common/log.js';
import { ResponseEngine } from '../../../siem/playbooks/index.js';
import { DEFAULT_SETTINGS, parsePlaybookTexts } from '../../../policies/index.js';
import { openSqliteStore } from '../../../siem/store/index.js';
import { DecisionHub, type Subscriber } from '../../../siem/service/hub.js';
import { alertOf } from '../../helpers/alerts.js';
import { tempDir } from '../../helpers/tmp.js';

const TD = 'factory.example';
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });

function setup(file: string) {
  const store = openSqliteStore(file, { synchronous: 'NORMAL' });
  const engine = new ResponseEngine({
    trustDomain: TD,
    config: { settings: DEFAULT_SETTINGS, playbooks: [] },
  });
  engine.importState(store.loadResponseState());
  let t = Date.UTC(2026, 0, 1);
  const hub = new DecisionHub({
    engine,
    store,
    signer: { key: privateKey, kid: 'k1' },
    now: () => t,
    log: silentLogger,
  });
  return { store, engine, hub, advance: (ms: number) => (t += ms), now: () => t };
}

function sub(identity = 'spiffe://factory.example/node/n1', room = Infinity) {
  const frames: { event: string; data: string }[] = [];
  let closed = false;
  const s: Subscriber = {
    identity,
    sent: -1,
    send(f) {
      if (closed || frames.length >= room) return false;
      const event = /event: (\S+)/.exec(f)?.[1] ?? '';
      const data = /data: (.*)/.exec(f)?.[1] ?? '';
      frames.push({ event, data });
      return true;
    },
    close() {
      closed = true;
    },
  };
  return { s, frames, isClosed: () => closed };
}

const manual = (value: string) => ({
  scope: { type: 'ip' as const, value },
  action: 'quarantine' as const,
  ttlMs: 60_000,
  reason: 'test',
});

describe('DecisionHub', () => {
  it('persists the pending list when it changes without a new revision (cap, reject)', () => {
    const file = join(tempDir('edgeward-hub-'), 'pending.db');
    const config = parsePlaybookTexts([
      { name: 's.yaml', text: 'kind: response-settings\nblast-radius: { max-per-minute: 1 }\n' },
      {
        name: 'pb.yaml',
        text: 'kind: playbook\nid: pb-ip\nrules: [r-ip]\ndecisions:\n  - { scope: ip, from: source.ip, action: quarantine, ttl: 15m }\n',
      },
    ]);
    const open = () => {
      const store = openSqliteStore(file, { synchronous: 'NORMAL' });
      const engine = new ResponseEngine({ trustDomain: TD, config });
      engine.importState(store.loadResponseState());
      const hub = new DecisionHub({
        engine,
        store,
        signer: { key: privateKey, kid: 'k1' },
        now: () => Date.UTC(2026, 0, 1),
        log: silentLogger,
      });
      return { store, hub };
    };
    const alert = (ip: string, i: number) =>
      alertOf(`a${i}`, Date.UTC(2026, 0, 1), { 'source.ip': ip }, { ruleId: 'r-ip', count: 3 });

    const a = open();
    a.hub.handleAlerts([alert('192.0.2.1', 1)]);
    // The cap is reached: these two wait, and the revision does not move.
    const out = a.hub.handleAlerts([alert('192.0.2.2', 2), alert('192.0.2.3', 3)]);
    expect(out.pending).toHaveLength(2);
    expect(out.revision).toBe(1);
    a.hub.change((e) => e.reject(out.pending[0]!.id));
    a.store.close();
    const b = open();
    expect(b.store.loadResponseState().pending.map((p) => p.scope.value)).toEqual(['192.0.2.3']);
    b.store.close();
  });

  it('fans out one verified delta per change, in order, after persisting it', async () => {
    const file = join(tempDir('edgeward-hub-'), 'siem.db');
    const h = setup(file);
    const a = sub();
    await h.hub.subscribe(a.s, null);
    expect(a.frames.map((f) => f.event)).toEqual(['snapshot', 'ready']);
    h.hub.change((e, now) => e.createManual(manual('192.0.2.1'), now));
    h.hub.change((e, now) => e.createManual(manual('192.0.2.2'), now));
    await h.hub.settled();
    expect(a.frames.map((f) => f.event)).toEqual(['snapshot', 'ready', 'delta', 'delta']);
    let last: number | null = null;
    for (const f of a.frames.filter((x) => x.event !== 'ready')) {
      const d = await verifyDecisions(f.data, {
        publicKey,
        trustDomain: TD,
        lastApplied: last,
        now: h.now(),
        kid: 'k1',
      });
      last = d.kind === 'snapshot' ? d.set.revision : d.delta.revision;
    }
    expect(last).toBe(2);
    // Persisted: a new engine over the same file resumes at revision 2 with both decisions.
    expect(h.store.loadResponseState().revision).toBe(2);
    h.store.close();
    const again = setup(file);
    expect(again.engine.revision).toBe(2);
    expect(again.engine.active()).toHaveLength(2);
    again.store.close();
  });

  it('answers a resuming subscriber with the delta since its revision, or nothing when current', async () => {
    const h = setup(join(tempDir('edgeward-hub-'), 'siem.db'));
    for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3'])
      h.hub.change((e, now) => e.createManual(manual(ip), now));
    const behind = sub();
    await h.hub.subscribe(behind.s, 1);
    expect(behind.frames[0]?.event).toBe('delta');
    const d = await verifyDecisions(behind.frames[0]?.data ?? '', {
      publicKey,
      trustDomain: TD,
      lastApplied: 1,
      now: h.now(),
    });
    expect(d.kind === 'delta' && d.delta.upserts.length).toBe(2);
    const current = sub();
    await h.hub.subscribe(current.s, 3);
    expect(current.frames.map((f) => f.event)).toEqual(['ready']);
    expect((await h.hub.signedSince(99)).kind).toBe('snapshot');
    h.store.close();
  });

  it('expiry removes decisions with a new revision; a subscriber that cannot keep up is dropped', async () => {
    const h = setup(join(tempDir('edgeward-hub-'), 'siem.db'));
    const slow = sub('spiffe://factory.example/node/slow', 2);
    await h.hub.subscribe(slow.s, null);
    h.hub.change((e, now) => e.createManual(manual('192.0.2.9'), now));
    await h.hub.settled();
    expect(slow.isClosed()).toBe(true);
    expect(h.hub.subscribers).toBe(0);
    h.advance(61_000);
    expect(h.hub.expire()).toHaveLength(1);
    expect(h.engine.revision).toBe(2);
    expect(h.store.loadResponseState().decisions).toHaveLength(0);
    h.store.close();
  });
});
