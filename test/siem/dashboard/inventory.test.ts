// The inventory's pages and filters on a real SQLite file: status filters computed in SQL agree
// with each row's own status, with exact and wildcard quarantines, totals and deep pages.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EdgeEvent } from '../../../common/events.js';
import { openDashboardDb } from '../../../siem/dashboard/cli.js';
import { Inventory, quarantineSet } from '../../../siem/dashboard/inventory.js';
import type { InventoryQuery } from '../../../siem/dashboard/api.js';
import { openSqliteStore, sqliteInventoryStore } from '../../../siem/store/index.js';
import { tempDir } from '../../helpers/tmp.js';

const TD = 'spiffe://factory.example';
const dev = (i: number): string => `${TD}/device/d${String(i).padStart(3, '0')}`;
const node = (i: number): string => `${TD}/node/n${i}`;
/** Lifecycle evidence counts only from the CA (the SIEM stamps the reporter from its certificate). */
const CA = { 'observer.identity': `${TD}/svc/ca`, 'observer.type': 'ca' } as const;

function seeded(): Inventory {
  const inv = new Inventory(openDashboardDb(join(tempDir(), 'siem')));
  const events: EdgeEvent[] = [];
  for (let i = 0; i < 300; i++)
    events.push({
      '@timestamp': 1000 + i,
      'event.action': 'enroll.success',
      'source.identity': dev(i),
      'tls.client.x509.serial_number': (0x1000 + i).toString(16),
      ...CA,
    });
  for (let i = 0; i < 5; i++)
    events.push({
      '@timestamp': 2000 + i,
      'event.action': 'enroll.success',
      'source.identity': node(i),
      ...CA,
    });
  // d000..d009 revoked; d005 is also quarantined below (revoked wins).
  for (let i = 0; i < 10; i++)
    events.push({ '@timestamp': 3000, 'event.action': 'revocation', 'source.identity': dev(i), ...CA });
  inv.apply(events);
  return inv;
}

const identityScope = (value: string) => ({ type: 'identity', value });
const ids = (r: { items: { [k: string]: unknown }[] }): unknown[] => r.items.map((x) => x['identity']);

describe('inventory filters', () => {
  const inv = seeded();
  // Exact identities, a node pattern, and identities that are not in the inventory at all.
  const qs = quarantineSet(
    [dev(5), dev(20), dev(21), dev(250), `${TD}/node/*`, `${TD}/device/unknown`].map(identityScope),
  );
  const page = (q: Partial<InventoryQuery>) => inv.query({ limit: 50, offset: 0, ...q }, qs);

  it('counts and pages each status in SQL, agreeing with every row’s status', () => {
    const all = inv.query({ limit: 500, offset: 0 }, qs);
    expect(all.total).toBe(306); // and the CA itself, the reporter of that evidence
    const byStatus = (s: string) => all.items.filter((x) => x['status'] === s).map((x) => x['identity']);
    const quarantined = page({ status: 'quarantined', limit: 500 });
    expect(ids(quarantined)).toEqual(byStatus('quarantined'));
    expect(quarantined.total).toBe(3 + 5); // d020, d021, d250 and the five nodes; d005 is revoked
    expect(quarantined.items.every((x) => x['status'] === 'quarantined')).toBe(true);
    const healthy = page({ status: 'healthy', limit: 500 });
    expect(ids(healthy)).toEqual(byStatus('healthy'));
    expect(healthy.total).toBe(306 - 10 - 8);
    const revoked = page({ status: 'revoked', limit: 500 });
    expect(revoked.total).toBe(10);
    expect(ids(revoked)).toContain(dev(5));
  });

  it('serves deep pages of a filtered list in identity order', () => {
    const first = page({ status: 'healthy', limit: 10, offset: 0 });
    expect(ids(first)[0]).toBe(dev(10));
    const deep = page({ status: 'healthy', limit: 10, offset: 280 });
    expect(deep.total).toBe(288);
    expect(ids(deep)).toHaveLength(8);
    // The nodes are all quarantined by the pattern; the CA's own row sorts last.
    expect(ids(deep).slice(-2)).toEqual([dev(299), `${TD}/svc/ca`]);
    // Past the end: an empty page, the same total.
    expect(page({ status: 'healthy', offset: 5000 })).toEqual({ total: 288, items: [] });
    expect(ids(page({ status: 'healthy', offset: 9, limit: 3 }))).toEqual([dev(19), dev(22), dev(23)]);
  });

  it('combines status with kind and search', () => {
    expect(page({ status: 'quarantined', kind: 'node' }).total).toBe(5);
    expect(page({ status: 'healthy', kind: 'node' }).total).toBe(0);
    expect(ids(page({ status: 'quarantined', kind: 'device', q: 'd02' }))).toEqual([dev(20), dev(21)]);
    expect(ids(page({ status: 'healthy', q: (0x1000 + 22).toString(16) }))).toEqual([dev(22)]);
    expect(page({ status: 'quarantined', q: '%' }).total).toBe(0);
  });

  it('with nothing quarantined, every live row is healthy', () => {
    const none = quarantineSet([]);
    expect(inv.query({ status: 'quarantined', limit: 50, offset: 0 }, none)).toEqual({ total: 0, items: [] });
    expect(inv.query({ status: 'healthy', limit: 50, offset: 0 }, none).total).toBe(296);
  });
});

describe('status from every decision scope', () => {
  // d100 by its serial, d101 by its key, d102 by its address, d103 and d104 by a range holding
  // theirs; d105 connected once from the range but was refused (a claim, not its address).
  const inv = seeded();
  const spki = 'ab'.repeat(32);
  inv.apply([
    {
      '@timestamp': 4000,
      'event.action': 'renewal.success',
      'source.identity': dev(101),
      'tls.client.x509.serial_number': 'fff101',
      'tls.client.x509.spki_sha256': spki,
      ...CA,
    },
    ...[
      [102, '192.0.2.7', 'connection.accepted'],
      [103, '198.51.100.3', 'connection.accepted'],
      [104, '198.51.100.200', 'connection.accepted'],
      [105, '198.51.100.9', 'handshake.failure'],
    ].map(([i, ip, action]) => ({
      '@timestamp': 4001,
      'event.action': action as string,
      'source.identity': dev(i as number),
      'source.ip': ip as string,
      'observer.identity': node(1),
      'observer.type': 'node',
    })),
  ]);
  const qs = quarantineSet([
    { type: 'serial', value: (0x1000 + 100).toString(16) },
    { type: 'spki', value: spki },
    { type: 'ip', value: '192.0.2.7' },
    { type: 'cidr', value: '198.51.100.0/24' },
  ]);
  const expected = [dev(100), dev(101), dev(102), dev(103), dev(104)];

  it('marks each covered row quarantined, by whichever scope covers it', () => {
    for (const id of expected) expect(inv.get(id, qs)?.['status'], id).toBe('quarantined');
    expect(inv.get(dev(105), qs)?.['status']).toBe('healthy');
    expect(inv.get(dev(102), qs)?.['ip']).toBe('192.0.2.7');
    expect(inv.get(dev(105), qs)?.['ip']).toBeNull();
  });

  it('filters and counts the same rows in SQL', () => {
    const q = inv.query({ status: 'quarantined', limit: 50, offset: 0 }, qs);
    expect(ids(q)).toEqual(expected);
    const healthy = inv.query({ status: 'healthy', limit: 500, offset: 0 }, qs);
    expect(healthy.total).toBe(296 - expected.length);
    expect(ids(healthy)).not.toContain(dev(103));
    expect(ids(healthy)).toContain(dev(105));
  });

  it('finds the row of a serial', () => {
    expect(inv.bySerial('fff101', qs)?.['identity']).toBe(dev(101));
    expect(inv.bySerial('0', qs)).toBeUndefined();
  });
});

describe('quarantine sets', () => {
  it('match exact identities and whole-segment wildcards only', () => {
    const qs = quarantineSet([dev(1), `${TD}/node/*`, `${TD}/site/**`, `${TD}/node/*`].map(identityScope));
    expect(qs.patterns).toEqual([`${TD}/node/*`, `${TD}/site/**`]);
    expect(qs.has({ identity: dev(1) })).toBe(true);
    expect(qs.has({ identity: dev(2) })).toBe(false);
    expect(qs.has({ identity: node(7) })).toBe(true);
    expect(qs.has({ identity: `${TD}/node/n7/extra` })).toBe(false);
    expect(qs.has({ identity: `${TD}/nodes/n7` })).toBe(false);
    expect(qs.has({ identity: `${TD}/site/a/b/c` })).toBe(true);
    // A '*' inside a segment is not a wildcard (identities cannot hold one, but it must not widen).
    expect(quarantineSet([identityScope(`${TD}/device/d*`)]).has({ identity: dev(1) })).toBe(false);
  });

  it('a wildcard over the trust domain finds rows of the inventory by prefix', () => {
    const inv = seeded();
    const qs = quarantineSet([identityScope('spiffe://*/node/*')]);
    expect(inv.query({ status: 'quarantined', limit: 50, offset: 0 }, qs).total).toBe(5);
  });
});

describe('an inventory from before provenance', () => {
  it('is rebuilt from the CA’s stored evidence: rows and revocations others made up are gone', async () => {
    const dir = join(tempDir(), 'siem');
    const db = openDashboardDb(dir);
    // A version-1 table: a real node, a ghost a device made up, and the node marked revoked.
    db.exec(`CREATE TABLE inventory (identity TEXT PRIMARY KEY, kind TEXT NOT NULL, method TEXT, verdict TEXT,
      serial TEXT, not_after INTEGER, last_seen INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0)`);
    db.prepare(
      'INSERT INTO inventory (identity, kind, serial, last_seen, revoked) VALUES (?, ?, ?, ?, ?)',
    ).run(node(1), 'node', 'aa', 1, 1);
    db.prepare('INSERT INTO inventory (identity, kind, last_seen) VALUES (?, ?, ?)').run(
      `${TD}/node/ghost`,
      'node',
      1,
    );
    const store = openSqliteStore(join(dir, 'siem.db'), { synchronous: 'NORMAL' });
    const stored = (e: Record<string, unknown>, i: number): EdgeEvent =>
      ({ 'event.id': `e${i}`, 'event.ingested': 10 + i, '@timestamp': 10 + i, ...e }) as EdgeEvent;
    await store.insertEvents(
      [
        {
          'event.action': 'enroll.success',
          'source.identity': node(1),
          'tls.client.x509.serial_number': 'aa',
          ...CA,
        },
        // What a device posted before the reporter policy existed, stored with its verified observer.
        {
          'event.action': 'enroll.success',
          'source.identity': `${TD}/node/ghost`,
          'observer.identity': dev(9),
          'observer.type': 'ca',
        },
        {
          'event.action': 'revocation',
          'source.identity': node(1),
          'observer.identity': dev(9),
          'observer.type': 'ca',
        },
        { 'event.action': 'connection.closed', 'observer.identity': node(1), 'observer.type': 'agent' },
      ].map(stored),
    );
    const inv = sqliteInventoryStore(db);
    expect(await inv.needsRebuild()).toBe(true);
    await inv.rebuild(store, 'factory.example');
    expect(await inv.needsRebuild()).toBe(false);
    const none = quarantineSet([]);
    expect(await inv.get(node(1), none)).toMatchObject({ serial: 'aa', status: 'healthy', lastSeen: 13 });
    expect(await inv.get(`${TD}/node/ghost`, none)).toBeUndefined();
    // The device is a row of its own (it did report), the CA too.
    expect(await inv.get(dev(9), none)).toMatchObject({ kind: 'device' });
    expect(await sqliteInventoryStore(db).needsRebuild()).toBe(false);
    // The CRL marks rows by their current serial.
    expect(await inv.markRevoked(['aa', 'zz'])).toBe(1);
    expect((await inv.get(node(1), none))?.['status']).toBe('revoked');
    await store.close();
    db.close();
  });
});
