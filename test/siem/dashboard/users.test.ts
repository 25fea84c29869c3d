// Dashboard users, sessions and the inventory projection on a real SQLite file.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDashboardDb } from '../../../siem/dashboard/cli.js';
import { Inventory, quarantineSet } from '../../../siem/dashboard/inventory.js';
import { DashboardSessions } from '../../../siem/dashboard/sessions.js';
import { DashboardUsers, roleAtLeast } from '../../../siem/dashboard/users.js';
import { sqliteSessionStore, sqliteUserStore } from '../../../siem/store/index.js';
import { fakeClock } from '../../../common/clock.js';
import { tempDir } from '../../helpers/tmp.js';

const db = openDashboardDb(join(tempDir(), 'siem'));

describe('dashboard users', () => {
  const users = new DashboardUsers(sqliteUserStore(db));
  it('stores scrypt hashes and verifies passwords', async () => {
    await users.add('alice', 'analyst', 'correct horse battery', 1);
    expect(await users.verify('alice', 'correct horse battery')).toEqual({ name: 'alice', role: 'analyst' });
    expect(await users.verify('alice', 'wrong horse battery!')).toBeUndefined();
    expect(await users.verify('nobody', 'correct horse battery')).toBeUndefined();
    const row = db.prepare('SELECT hash FROM dashboard_users WHERE name = ?').get('alice') as {
      hash: string;
    };
    expect(row.hash).toMatch(/^scrypt\$32768\$8\$1\$/);
    expect(row.hash).not.toContain('correct');
  });
  it('refuses bad names, roles, short passwords and duplicates with codes', async () => {
    await expect(users.add('Bad Name', 'viewer', 'long enough pass', 1)).rejects.toMatchObject({
      code: 'ERR_DASH_USER_INVALID',
    });
    await expect(users.add('bob', 'root', 'long enough pass', 1)).rejects.toMatchObject({
      code: 'ERR_DASH_USER_INVALID',
    });
    await expect(users.add('bob', 'viewer', 'short', 1)).rejects.toMatchObject({
      code: 'ERR_DASH_USER_INVALID',
    });
    await expect(users.add('alice', 'viewer', 'long enough pass', 1)).rejects.toMatchObject({
      code: 'ERR_DASH_USER_EXISTS',
    });
  });
  it('orders roles', () => {
    expect(roleAtLeast('admin', 'analyst')).toBe(true);
    expect(roleAtLeast('viewer', 'analyst')).toBe(false);
  });
});

describe('dashboard sessions', () => {
  it('expire when idle and check CSRF tokens in constant time', async () => {
    const clock = fakeClock(0);
    const sessions = new DashboardSessions(sqliteSessionStore(db), () => clock.now(), 1000, 10_000);
    const s = await sessions.create('alice', 'analyst');
    expect((await sessions.get(s.id))?.user).toBe('alice');
    expect(DashboardSessions.csrfMatches(s, s.csrf)).toBe(true);
    expect(DashboardSessions.csrfMatches(s, 'x'.repeat(s.csrf.length))).toBe(false);
    expect(DashboardSessions.csrfMatches(s, undefined)).toBe(false);
    clock.advance(1001);
    expect(await sessions.get(s.id)).toBeUndefined();
    expect(await sessions.get('not-a-session')).toBeUndefined();
  });
  it('keep the hash of the session id, never the id', async () => {
    const sessions = new DashboardSessions(sqliteSessionStore(db), () => 0);
    const s = await sessions.create('bob', 'viewer');
    const keys = db.prepare('SELECT key FROM dashboard_sessions').pluck().all() as string[];
    expect(keys).not.toContain(s.id);
    expect(keys.every((k) => /^[0-9a-f]{64}$/.test(k))).toBe(true);
  });
});

describe('inventory projection', () => {
  const inv = new Inventory(db);
  const TD = 'spiffe://f.example';
  const CA = { 'observer.identity': `${TD}/svc/ca`, 'observer.type': 'ca' } as const;
  it('follows enrollments, failures, revocations and quarantine', () => {
    inv.apply([
      {
        '@timestamp': 10,
        'event.action': 'enroll.success',
        'source.identity': `${TD}/node/n1`,
        'attestation.method': 'tpm',
        'tls.client.x509.serial_number': 'aa',
        'tls.client.x509.not_after': 99,
        ...CA,
      },
      {
        '@timestamp': 11,
        'event.action': 'attestation.failure',
        'source.identity': `${TD}/device/d1`,
        'attestation.method': 'puf',
        'attestation.reason': 'helper_tampered',
        ...CA,
      },
      {
        '@timestamp': 12,
        'event.action': 'enroll.success',
        'source.identity': `${TD}/device/d2`,
        'attestation.method': 'puf',
        'tls.client.x509.serial_number': 'bb',
        ...CA,
      },
      { '@timestamp': 13, 'event.action': 'revocation', 'tls.client.x509.serial_number': 'bb', ...CA },
      {
        '@timestamp': 20,
        'event.action': 'connection.accepted',
        'source.identity': `${TD}/node/n1`,
        'observer.identity': `${TD}/node/n2`,
        'observer.type': 'node',
      },
    ]);
    const quarantined = quarantineSet([{ type: 'identity', value: `${TD}/node/n1` }]);
    const n1 = inv.get(`${TD}/node/n1`, quarantined);
    expect(n1).toMatchObject({
      method: 'tpm',
      verdict: 'ok',
      serial: 'aa',
      notAfter: 99,
      lastSeen: 20,
      status: 'quarantined',
      kind: 'node',
    });
    expect(inv.get(`${TD}/device/d1`, quarantined)).toMatchObject({
      verdict: 'helper_tampered',
      status: 'healthy',
    });
    expect(inv.get(`${TD}/device/d2`, quarantined)).toMatchObject({ status: 'revoked' });
    expect(inv.query({ kind: 'device', limit: 10, offset: 0 }, quarantined).total).toBe(2);
    expect(
      inv.query({ status: 'quarantined', limit: 10, offset: 0 }, quarantined).items.map((i) => i['identity']),
    ).toEqual([`${TD}/node/n1`]);
    expect(inv.query({ q: 'bb', limit: 10, offset: 0 }, quarantined).items.map((i) => i['identity'])).toEqual(
      [`${TD}/device/d2`],
    );
    // LIKE wildcards in the search are literal.
    expect(inv.query({ q: '%', limit: 10, offset: 0 }, quarantined).total).toBe(0);
  });
});
