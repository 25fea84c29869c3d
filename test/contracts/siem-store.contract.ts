// Every behaviour the SIEM's stores must have (siem/store/store.ts), written once and run against
// each adapter (siem-store.test.ts). `open` gives two handles on one backing store, as two SIEM
// replicas have: what one writes, the other must see.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeClock } from '../../common/clock.js';
import type { Decision } from '../../common/decisions.js';
import type { EdgeEvent } from '../../common/events.js';
import { DashboardSessions, DashboardUsers, quarantineSet } from '../../siem/index.js';
import type { PendingDecision } from '../../siem/playbooks/index.js';
import { ACK_HISTORY, type SessionRecord, type SiemStores } from '../../siem/store/index.js';
import { alertOf } from '../helpers/alerts.js';

export interface SiemContractBackend {
  /** Two handles on one new, empty set of stores. */
  open(): Promise<{ a: SiemStores; b: SiemStores; cleanup(): Promise<void> }>;
}

const TD = 'spiffe://contract.example';
const CA = `${TD}/svc/ca`;
const NODE = `${TD}/node/n1`;
const T = 1_800_000_000_000;
const DAY = 86_400_000;
let n = 0;

/** A stamped event (the SIEM's id, the verified reporter) at `T + dt`. */
function ev(dt: number, fields: Partial<EdgeEvent> = {}, observer = NODE): EdgeEvent {
  n++;
  return {
    '@timestamp': T + dt,
    'event.action': 'connection.accepted',
    'event.id': `ev-${n.toString().padStart(6, '0')}`,
    'event.ingested': T + dt + 1,
    'observer.identity': observer,
    'observer.type': observer === CA ? 'ca' : 'node',
    ...fields,
  };
}

function decision(id: string, revision: number, value: string): Decision {
  return {
    id,
    revision,
    scope: { type: 'ip', value },
    action: 'quarantine',
    reason: 'contract',
    createdAt: T + revision,
    expiresAt: T + DAY,
    alerts: [`alert-${id}`],
  };
}

function pending(id: string, value: string): PendingDecision {
  return {
    id,
    createdAt: T,
    why: 'blast-radius',
    playbook: 'pb',
    scope: { type: 'ip', value },
    action: 'quarantine',
    ttlMs: 60_000,
    reason: 'contract',
    alerts: [],
  } as unknown as PendingDecision;
}

const ids = (events: readonly EdgeEvent[]): string[] => events.map((e) => e['event.id'] as string);

export function siemStoreContract(name: string, backend: SiemContractBackend): void {
  describe(`SIEM store contract: ${name}`, () => {
    let a: SiemStores;
    let b: SiemStores;
    let opened: Awaited<ReturnType<SiemContractBackend['open']>>;
    beforeAll(async () => {
      opened = await backend.open();
      ({ a, b } = opened);
    });
    afterAll(async () => {
      await opened.cleanup();
    });

    describe('events', () => {
      const D = `${TD}/device/events`;
      const E = `${TD}/device/peer`;
      const stored: EdgeEvent[] = [];
      beforeAll(async () => {
        for (let i = 0; i < 5; i++)
          stored.push(
            ev(i * 10, {
              'source.identity': D,
              'source.ip': '10.9.0.1',
              'tls.client.x509.serial_number': 'ab01',
            }),
          );
        stored.push(ev(100, { 'source.identity': E, 'destination.identity': D }));
        await a.store.insertEvents(stored);
      });

      it('stores inserted events, read back by id on the other handle', async () => {
        for (const e of stored) expect(await b.store.event(e['event.id'] as string)).toEqual(e);
        expect(await b.store.event('no-such-id')).toBeUndefined();
        expect(await b.store.countEvents()).toBeGreaterThanOrEqual(stored.length);
      });

      it('answers an entity timeline newest first, with since (inclusive), until (exclusive) and limit', async () => {
        const all = await b.store.timeline({ entity: 'source.identity', value: D });
        expect(ids(all)).toEqual(ids(stored.slice(0, 5)).reverse());
        const q = { entity: 'source.identity', value: D } as const;
        expect(ids(await b.store.timeline({ ...q, since: T + 10, until: T + 30 }))).toEqual(
          ids([stored[2] as EdgeEvent, stored[1] as EdgeEvent]),
        );
        expect(ids(await b.store.timeline({ ...q, limit: 2 }))).toEqual(
          ids([stored[4] as EdgeEvent, stored[3] as EdgeEvent]),
        );
        // identity: the source or the destination identity.
        expect(ids(await b.store.timeline({ entity: 'identity', value: D, limit: 1 }))).toEqual(
          ids([stored[5] as EdgeEvent]),
        );
        expect(await b.store.timeline({ entity: 'destination.identity', value: D })).toHaveLength(1);
        expect(await b.store.timeline({ entity: 'source.ip', value: '10.9.0.1' })).toHaveLength(5);
        expect(await b.store.timeline({ entity: 'serial', value: 'ab01' })).toHaveLength(5);
        expect(await b.store.timeline({ entity: 'source.identity', value: 'x'.repeat(2049) })).toEqual([]);
      });

      it('refuses an event without event.id (TypeError) and stores nothing of its batch', async () => {
        const before = await a.store.countEvents();
        const bare = { ...ev(0, { 'source.identity': `${TD}/device/bare` }) };
        delete (bare as Record<string, unknown>)['event.id'];
        await expect(a.store.insertEvents([ev(0), bare])).rejects.toThrow(TypeError);
        expect(await b.store.countEvents()).toBe(before);
      });

      it('scans one reporter’s events with some actions in ingest order, waiting for an async callback', async () => {
        const lifecycle = [
          ev(1, { 'event.action': 'enroll.success', 'source.identity': `${TD}/device/s1` }, CA),
          ev(0, { 'event.action': 'revocation', 'source.identity': `${TD}/device/s1` }, CA),
          ev(2, { 'event.action': 'connection.accepted' }, CA),
        ];
        await a.store.insertEvents(lifecycle);
        const seen: string[] = [];
        await b.store.scanEvents({ actions: ['enroll.success', 'revocation'], observer: CA }, async (e) => {
          await new Promise((r) => setImmediate(r));
          seen.push(e['event.id'] as string);
        });
        expect(seen).toEqual(ids(lifecycle.slice(0, 2)));
      });

      it('lists every reporter with the time of its newest event', async () => {
        const r = await b.store.reporters();
        expect(r.find((x) => x.identity === NODE)?.lastSeen).toBe(T + 100);
        expect(r.find((x) => x.identity === CA)?.lastSeen).toBe(T + 2);
      });

      it('commits what the event writer was given, readable by the store of the other handle', async () => {
        const W = `${TD}/device/writer`;
        const batch = Array.from({ length: 50 }, (_, i) => ev(i, { 'source.identity': W }));
        const prepared = a.writer.prepare(batch);
        expect(prepared.events).toBe(batch);
        await a.writer.write([prepared, a.writer.prepare([ev(60, { 'source.identity': W })])]);
        expect(await b.store.timeline({ entity: 'source.identity', value: W, limit: 100 })).toHaveLength(51);
        const bare = { ...ev(0) };
        delete (bare as Record<string, unknown>)['event.id'];
        expect(() => a.writer.prepare([bare])).toThrow(TypeError);
      });
    });

    describe('alerts', () => {
      const X = `${TD}/device/alerted`;
      it('stores alerts once, lists them newest first by rule, entity, time and limit', async () => {
        await a.store.insertAlerts([
          alertOf('al-1', T + 1, { 'source.identity': X }, { ruleId: 'r-a' }),
          alertOf('al-2', T + 2, { 'source.ip': '10.8.0.1' }, { ruleId: 'r-b' }),
          alertOf('al-3', T + 3, { 'source.identity': X }, { ruleId: 'r-b' }),
        ]);
        // The same id again is left as it was.
        await b.store.insertAlerts([
          alertOf('al-1', T + 1, { 'source.identity': X }, { ruleId: 'r-changed' }),
        ]);
        const got = (q: Parameters<SiemStores['store']['alerts']>[0]) =>
          b.store.alerts(q).then((l) => l.map((x) => x.id));
        expect(await got({ since: T, before: T + 10 })).toEqual(['al-3', 'al-2', 'al-1']);
        expect(await got({ ruleId: 'r-b', since: T })).toEqual(['al-3', 'al-2']);
        expect(await got({ entity: X })).toEqual(['al-3', 'al-1']);
        expect(await got({ entity: '10.8.0.1' })).toEqual(['al-2']);
        expect(await got({ since: T, before: T + 3 })).toEqual(['al-2', 'al-1']);
        expect(await got({ since: T, limit: 1 })).toEqual(['al-3']);
        expect((await b.store.alerts({ entity: X })).find((x) => x.id === 'al-1')?.ruleId).toBe('r-a');
      });

      it('keeps the latest triage of an alert, seen by the other handle', async () => {
        expect((await b.store.alertStatuses(['al-1'])).size).toBe(0);
        await a.store.setAlertStatus('al-1', { status: 'acknowledged', by: 'ana', at: T + 5 });
        await b.store.setAlertStatus('al-1', { status: 'closed', by: 'bob', at: T + 6 });
        const st = await a.store.alertStatuses(['al-1', 'al-2']);
        expect([...st.entries()]).toEqual([['al-1', { status: 'closed', by: 'bob', at: T + 6 }]]);
      });
    });

    describe('counts per time bucket', () => {
      // Far from the other tests' times, so their events and alerts are not counted.
      const C = T + 5 * DAY;
      const MIN = 60_000;
      it('counts events per bucket of @timestamp, the non-empty buckets oldest first, seen by the other handle', async () => {
        await a.store.insertEvents([
          ev(5 * DAY + 1000),
          ev(5 * DAY + 59_999),
          ev(5 * DAY + MIN),
          ev(5 * DAY + 3 * MIN + 5),
          ev(5 * DAY + 3 * MIN + 6),
          ev(5 * DAY + 3 * MIN + 7),
          ev(5 * DAY + 10 * MIN),
        ]);
        expect(await b.store.eventCounts({ since: C, until: C + 10 * MIN, bucketMs: MIN })).toEqual([
          { bucket: C, count: 2 },
          { bucket: C + MIN, count: 1 },
          { bucket: C + 3 * MIN, count: 3 },
        ]);
        // until is exclusive; since cuts inside a bucket.
        expect(
          await b.store.eventCounts({ since: C + 2000, until: C + 10 * MIN + 1, bucketMs: 5 * MIN }),
        ).toEqual([
          { bucket: C, count: 5 },
          { bucket: C + 10 * MIN, count: 1 },
        ]);
      });

      it('counts alerts per rule and bucket of time', async () => {
        await a.store.insertAlerts([
          alertOf('cnt-1', C + 10, {}, { ruleId: 'r-x' }),
          alertOf('cnt-2', C + 20, {}, { ruleId: 'r-x' }),
          alertOf('cnt-3', C + 2 * MIN, {}, { ruleId: 'r-x' }),
          alertOf('cnt-4', C + 2 * MIN + 1, {}, { ruleId: 'r-y' }),
        ]);
        expect(await b.store.alertCounts({ since: C, until: C + 10 * MIN, bucketMs: MIN })).toEqual([
          { rule: 'r-x', bucket: C, count: 2 },
          { rule: 'r-x', bucket: C + 2 * MIN, count: 1 },
          { rule: 'r-y', bucket: C + 2 * MIN, count: 1 },
        ]);
      });

      it('refuses a query of more than 1,000 buckets, a bucket under 1 s or an empty range (TypeError)', async () => {
        await expect(b.store.eventCounts({ since: C, until: C + 1001 * MIN, bucketMs: MIN })).rejects.toThrow(
          TypeError,
        );
        await expect(b.store.alertCounts({ since: C, until: C + MIN, bucketMs: 999 })).rejects.toThrow(
          TypeError,
        );
        await expect(b.store.eventCounts({ since: C, until: C, bucketMs: MIN })).rejects.toThrow(TypeError);
      });
    });

    describe('decisions', () => {
      it('starts at revision 0 with nothing', async () => {
        expect(await b.store.loadResponseState()).toEqual({ revision: 0, decisions: [], pending: [] });
      });

      it('writes one revision sequence: upserts, removals and the pending list, seen by the other handle', async () => {
        await a.store.saveDecisionChanges({
          revision: 1,
          upserts: [decision('d1', 1, '10.0.0.1'), decision('d2', 1, '10.0.0.2')],
          removals: [],
          at: T + 1,
          pending: [pending('p1', '10.0.0.9'), pending('p2', '10.0.0.8')],
        });
        await a.store.saveDecisionChanges({
          revision: 2,
          upserts: [decision('d3', 2, '10.0.0.3')],
          removals: ['d1', 'unknown'],
          at: T + 2,
          pending: [pending('p2', '10.0.0.8')],
        });
        const s = await b.store.loadResponseState();
        expect(s.revision).toBe(2);
        expect(s.decisions.map((d) => d.id)).toEqual(['d2', 'd3']);
        expect(s.decisions[0]).toEqual(decision('d2', 1, '10.0.0.2'));
        expect(s.pending.map((p) => p.id)).toEqual(['p2']);
        // Newest revision first (decisions of one revision in any order), removed ones with the time.
        const h = await b.store.decisionHistory();
        expect(h[0]?.id).toBe('d3');
        expect(new Map(h.map((d) => [d.id, d.removedAt]))).toEqual(
          new Map([
            ['d3', null],
            ['d2', null],
            ['d1', T + 2],
          ]),
        );
        expect(await b.store.decisionHistory(1)).toHaveLength(1);
      });

      it('a pending-only change keeps the revision; an upsert of a removed decision makes it active again', async () => {
        await b.store.loadResponseState();
        await b.store.saveDecisionChanges({ revision: 2, upserts: [], removals: [], at: T + 3, pending: [] });
        expect((await a.store.loadResponseState()).pending).toEqual([]);
        await a.store.saveDecisionChanges({
          revision: 3,
          upserts: [decision('d1', 3, '10.0.0.1')],
          removals: [],
          at: T + 4,
          pending: [],
        });
        const s = await b.store.loadResponseState();
        expect(s.revision).toBe(3);
        expect(s.decisions.map((d) => d.id)).toEqual(['d2', 'd3', 'd1']);
        expect((await b.store.decisionHistory()).find((d) => d.id === 'd1')?.removedAt).toBeNull();
      });
    });

    describe('acknowledgement ledger', () => {
      const AG = `${TD}/node/acker`;
      it('keeps the last acknowledgement and the history of raised revisions, seen by the other handle', async () => {
        await a.acks.ack(AG, 1, T + 1);
        await b.acks.ack(AG, 3, T + 2);
        await a.acks.ack(AG, 2, T + 3); // went back: last, not history
        const r = (await b.acks.list()).find((x) => x.identity === AG);
        expect(r).toEqual({
          identity: AG,
          acked: 2,
          ackedAt: T + 3,
          history: [
            [1, T + 1],
            [3, T + 2],
          ],
        });
      });

      it('keeps the newest ACK_HISTORY entries only, and lists agents by identity', async () => {
        const AH = `${TD}/node/acker-long`;
        for (let i = 1; i <= ACK_HISTORY + 5; i++) await a.acks.ack(AH, i, T + i);
        const r = (await b.acks.list()).find((x) => x.identity === AH);
        expect(r?.history).toHaveLength(ACK_HISTORY);
        expect(r?.history[0]).toEqual([6, T + 6]);
        const listed = (await b.acks.list()).map((x) => x.identity);
        expect(listed).toEqual([...listed].sort());
        expect(await b.acks.list(1)).toHaveLength(1);
      });
    });

    describe('dashboard users', () => {
      it('adds users with a role, verified through the other handle; a name once only', async () => {
        await new DashboardUsers(a.users).add('carol', 'analyst', 'a long enough pass', T);
        await new DashboardUsers(a.users).add('alan', 'viewer', 'another long pass', T);
        const users = new DashboardUsers(b.users);
        expect(await users.verify('carol', 'a long enough pass')).toEqual({ name: 'carol', role: 'analyst' });
        expect(await users.verify('carol', 'a wrong long pass!')).toBeUndefined();
        expect(await users.verify('nobody', 'a long enough pass')).toBeUndefined();
        await expect(users.add('carol', 'admin', 'a long enough pass', T)).rejects.toMatchObject({
          code: 'ERR_DASH_USER_EXISTS',
        });
        expect(await users.list()).toEqual([
          { name: 'alan', role: 'viewer' },
          { name: 'carol', role: 'analyst' },
        ]);
        const rec = await b.users.get('carol');
        expect(rec).toMatchObject({ name: 'carol', role: 'analyst', createdAt: T });
        expect(rec?.hash).toMatch(/^scrypt\$/);
        expect(await b.users.insert({ name: 'carol', role: 'viewer', hash: 'x', createdAt: T })).toBe(false);
      });
    });

    describe('dashboard sessions', () => {
      it('a session made on one handle is valid on the other, with its CSRF token, until it is destroyed', async () => {
        const clock = fakeClock(T);
        const one = new DashboardSessions(a.sessions, () => clock.now());
        const two = new DashboardSessions(b.sessions, () => clock.now());
        const s = await one.create('carol', 'analyst');
        const seen = await two.get(s.id);
        expect(seen).toMatchObject({ id: s.id, user: 'carol', role: 'analyst', csrf: s.csrf });
        expect(DashboardSessions.csrfMatches(seen as NonNullable<typeof seen>, s.csrf)).toBe(true);
        expect(
          DashboardSessions.csrfMatches(seen as NonNullable<typeof seen>, 'x'.repeat(s.csrf.length)),
        ).toBe(false);
        await two.destroy(s.id);
        expect(await one.get(s.id)).toBeUndefined();
      });

      it('expires after the idle time (each use renews it) and after the absolute time', async () => {
        const clock = fakeClock(T);
        const one = new DashboardSessions(a.sessions, () => clock.now(), 1000, 5000);
        const two = new DashboardSessions(b.sessions, () => clock.now(), 1000, 5000);
        const s = await one.create('alan', 'viewer');
        for (let i = 0; i < 4; i++) {
          clock.advance(900);
          expect((await two.get(s.id))?.user).toBe('alan');
        }
        clock.advance(1001);
        expect(await one.get(s.id)).toBeUndefined();
        const t = await one.create('alan', 'viewer');
        for (let i = 0; i < 6; i++) {
          clock.advance(900);
          await two.get(t.id);
        }
        expect(await two.get(t.id)).toBeUndefined();
        expect(await two.get('not-a-session')).toBeUndefined();
      });

      it('stores keep, touch, sweep and cap records as the interface says', async () => {
        const rec = (key: string, createdAt: number): SessionRecord => ({
          key,
          user: 'u',
          role: 'viewer',
          csrf: 'c',
          createdAt,
          lastSeen: createdAt,
        });
        await b.sessions.sweep(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
        await a.sessions.insert(rec('k1', T), 2);
        await a.sessions.insert(rec('k2', T + 1), 2);
        await b.sessions.insert(rec('k3', T + 2), 2); // k1, created first, makes room
        expect(await a.sessions.get('k1')).toBeUndefined();
        expect(await a.sessions.get('k3')).toEqual(rec('k3', T + 2));
        await a.sessions.touch('k2', T + 50);
        await a.sessions.touch('k2', T + 10); // never earlier
        expect((await b.sessions.get('k2'))?.lastSeen).toBe(T + 50);
        expect(await b.sessions.sweep(T + 3, 0)).toBe(1); // k3 idle since T + 2
        expect(await a.sessions.get('k2')).toBeDefined();
        expect(await b.sessions.sweep(0, T + 2)).toBe(1); // k2 created before T + 2
      });
    });

    describe('inventory', () => {
      const I = (s: string): string => `${TD}/device/inv-${s}`;
      it('projects the CA’s evidence, read through the other handle', async () => {
        expect(await b.inventory.needsRebuild()).toBe(false);
        await a.inventory.apply([
          ev(
            1,
            {
              'event.action': 'enroll.success',
              'source.identity': I('1'),
              'attestation.method': 'puf',
              'tls.client.x509.serial_number': 'c1',
              'tls.client.x509.not_after': T + DAY,
            },
            CA,
          ),
          ev(
            2,
            {
              'event.action': 'enroll.success',
              'source.identity': I('2'),
              'tls.client.x509.serial_number': 'c2',
            },
            CA,
          ),
          ev(
            3,
            {
              'event.action': 'attestation.failure',
              'source.identity': I('3'),
              'attestation.method': 'tpm',
              'attestation.reason': 'pcr_mismatch',
            },
            CA,
          ),
          // Another reporter's word never makes a row.
          ev(4, { 'event.action': 'enroll.success', 'source.identity': I('ghost') }),
        ]);
        const none = quarantineSet([]);
        expect(await b.inventory.get(I('1'), none)).toMatchObject({
          method: 'puf',
          verdict: 'ok',
          serial: 'c1',
          notAfter: T + DAY,
          status: 'healthy',
          kind: 'device',
        });
        expect(await b.inventory.get(I('3'), none)).toMatchObject({ verdict: 'pcr_mismatch' });
        expect(await b.inventory.get(I('ghost'), none)).toBeUndefined();
        expect((await b.inventory.bySerial('c2', none))?.['identity']).toBe(I('2'));
        const qs = quarantineSet([{ type: 'identity', value: I('1') }]);
        const page = await b.inventory.query({ q: 'inv-', status: 'quarantined', limit: 10, offset: 0 }, qs);
        expect(page).toMatchObject({ total: 1, items: [{ identity: I('1'), status: 'quarantined' }] });
        expect(await b.inventory.markRevoked(['c2', 'zz'])).toBe(1);
        expect((await a.inventory.get(I('2'), none))?.['status']).toBe('revoked');
        const all = await a.inventory.query({ q: 'inv-', limit: 2, offset: 0 }, none);
        expect(all.total).toBe(3);
        expect(all.items.map((x) => x['identity'])).toEqual([I('1'), I('2')]);
      });

      it('rebuilds from the stored evidence', async () => {
        await b.inventory.rebuild(b.store, 'contract.example');
        const none = quarantineSet([]);
        // From the store's CA events (the events section): s1 enrolled then revoked.
        expect(await a.inventory.get(`${TD}/device/s1`, none)).toMatchObject({ status: 'revoked' });
        // What was only applied, never stored, is gone; every reporter is a row of its own.
        expect(await a.inventory.get(I('1'), none)).toBeUndefined();
        expect(await a.inventory.get(NODE, none)).toMatchObject({ kind: 'node' });
      });

      it('applies a batch in order: one identity enrolled, revoked and enrolled again, a serial revoked in it', async () => {
        const cert = (dt: number, id: string, serial: string, action = 'enroll.success') =>
          ev(
            dt,
            { 'event.action': action, 'source.identity': id, 'tls.client.x509.serial_number': serial },
            CA,
          );
        await a.inventory.apply([
          // A sighting before the enrollment makes no row; the one after refreshes it.
          ev(10, {
            'event.action': 'connection.accepted',
            'source.identity': I('b1'),
            'source.ip': '192.0.2.9',
          }),
          cert(11, I('b1'), 'b1-1'),
          cert(12, I('b1'), 'b1-1', 'revocation'),
          cert(13, I('b1'), 'b1-2', 'renewal.success'),
          ev(14, {
            'event.action': 'connection.accepted',
            'source.identity': I('b1'),
            'source.ip': '192.0.2.10',
          }),
          cert(15, I('b2'), 'b2-1'),
          ev(16, { 'event.action': 'revocation', 'tls.client.x509.serial_number': 'b2-1' }, CA),
          cert(17, I('b3'), 'b3-1'),
          cert(18, I('b3'), 'b3-1', 'renewal.success'),
        ]);
        const none = quarantineSet([]);
        expect(await b.inventory.get(I('b1'), none)).toMatchObject({
          serial: 'b1-2',
          status: 'healthy',
          ip: '192.0.2.10',
          lastSeen: T + 14,
        });
        expect(await b.inventory.get(I('b2'), none)).toMatchObject({ serial: 'b2-1', status: 'revoked' });
        expect(await b.inventory.get(I('b3'), none)).toMatchObject({ serial: 'b3-1', status: 'healthy' });
        // Revoking a serial a row no longer holds leaves the row alone.
        await a.inventory.apply([
          ev(19, { 'event.action': 'revocation', 'tls.client.x509.serial_number': 'b1-1' }, CA),
        ]);
        expect((await b.inventory.get(I('b1'), none))?.['status']).toBe('healthy');
      });
    });

    describe('retention', () => {
      it('deletes old events and then old alerts, in batches, oldest first', async () => {
        const R = `${TD}/device/retained`;
        const old = Array.from({ length: 5 }, (_, i) => ev(-400 * DAY + i, { 'source.identity': R }));
        await a.store.insertEvents([...old, ev(0, { 'source.identity': R })]);
        await a.store.insertAlerts([alertOf('old-alert', T - 400 * DAY, { 'source.identity': R })]);
        await a.store.setAlertStatus('old-alert', { status: 'closed', by: 'ana', at: T });
        const cutoff = T - 300 * DAY;
        expect(await b.store.pruneOlderThan(cutoff, 3)).toBe(3);
        expect(await b.store.event(old[0]?.['event.id'] as string)).toBeUndefined();
        expect(await b.store.event(old[3]?.['event.id'] as string)).toBeDefined();
        expect(await b.store.pruneOlderThan(cutoff, 3)).toBe(3); // two events, then the alert
        expect(await b.store.pruneOlderThan(cutoff, 3)).toBe(0);
        expect(await a.store.timeline({ entity: 'source.identity', value: R })).toHaveLength(1);
        expect(await a.store.alerts({ entity: R })).toEqual([]);
        expect((await a.store.alertStatuses(['old-alert'])).size).toBe(0);
      });
    });
  });
}
