// With real processes (CA, SIEM with its dashboard, an agent): an address's
// spelling cannot get past the allowlist or widen a decision, because every scope has one
// canonical form made where the decision is created (common/ip.ts, common/decision-scope.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedIdentity } from '../../common/identity-dir.js';
import { startMesh, type Mesh, type MeshAgent } from '../helpers/mesh.js';

let mesh: Mesh;
let agent: MeshAgent;
let device: LoadedIdentity;
let reporter: LoadedIdentity;

beforeAll(async () => {
  mesh = await startMesh({ agents: [{ name: 'n1' }], dashboard: true });
  agent = mesh.agents[0] as MeshAgent;
  device = await mesh.enroll('device/d1');
  reporter = await mesh.enroll('node/n2');
}, 120_000);
afterAll(async () => mesh?.stop());

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const manual = (type: string, value: string) => ({
  scope: { type, value },
  action: 'quarantine',
  reason: 'canonical-scopes test',
});

/** No active decision covers loopback, and a device still connects through the agent. */
async function meshStillWorks(): Promise<void> {
  const d = await mesh.decisions();
  expect(d.active.map((x) => x.scope)).toEqual([]);
  expect(await mesh.echo(agent, device, 'still here')).toBe('still here');
}

describe('one canonical form for every scope (real processes)', () => {
  it('allowlist bypass by ::ffff: spelling', async () => {
    expect(await mesh.echo(agent, device)).toBe('ping');
    const now = Date.now();
    const forged = Array.from({ length: 20 }, (_, i) => ({
      '@timestamp': now - 20_000 + i * 500,
      'event.action': 'handshake.failure',
      'observer.type': 'agent',
      'source.ip': '::ffff:127.0.0.1',
      'source.port': 40_000 + i,
      'event.reason': 'unknown_ca',
    }));
    const r = await mesh.report(reporter, forged);
    expect(r.status, r.body.toString()).toBeLessThan(300);

    // The burst rule fires, keyed by the canonical address, and the playbook declines it as
    // allowlisted: the SIEM saw 127.0.0.1, as every agent would have.
    const alert = await until('the handshake-burst alert', async () => {
      const a = await mesh.call(`${mesh.siemUrl}/v1/alerts?rule=ew-handshake-failures-burst`, mesh.admin);
      const list = (a.json?.['alerts'] ?? []) as Array<Record<string, unknown>>;
      return list[0];
    });
    expect(alert['groupBy']).toEqual({ 'source.ip': '127.0.0.1' });
    await until('the allowlisted skip', async () => {
      const m = await mesh.call(`${mesh.siemUrl}/metrics`, mesh.admin);
      return /edgeward_siem_decisions_total\{outcome="skipped_allowlisted"\} [1-9]/.test(m.body.toString())
        ? true
        : undefined;
    });
    await meshStillWorks();
  });

  it('allowlist bypass by other spellings of 127.0.0.1 (hex-mapped, uncompressed, zero-padded)', async () => {
    // Each accepted spelling is the one address; the SIEM keys the evidence by 127.0.0.1.
    for (const spelling of ['::ffff:7f00:1', '0:0:0:0:0:ffff:127.0.0.1', '::FFFF:7F00:0001']) {
      const r = await mesh.report(reporter, [
        { '@timestamp': Date.now(), 'event.action': 'handshake.failure', 'source.ip': spelling },
      ]);
      expect(r.status, spelling).toBeLessThan(300);
    }
    const timeline = await mesh.call(
      `${mesh.siemUrl}/v1/entities/source.ip/127.0.0.1/timeline?limit=500`,
      mesh.admin,
    );
    const spellings = new Set(
      ((timeline.json?.['events'] ?? []) as Array<Record<string, unknown>>).map((e) => e['source.ip']),
    );
    expect([...spellings]).toEqual(['127.0.0.1']);
    // Spellings another parser could read as a different address are refused whole.
    for (const spelling of ['127.000.000.001', '0177.0.0.1', '127.1', '2130706433', '[::1]']) {
      const r = await mesh.report(reporter, [
        { '@timestamp': Date.now(), 'event.action': 'handshake.failure', 'source.ip': spelling },
      ]);
      expect(r.status, spelling).toBe(400);
      expect(r.json?.['code'], spelling).toBe('ERR_SIEM_EVENT_INVALID');
    }
    // A decision in those spellings is refused as allowlisted or as not an address.
    for (const [type, value, code] of [
      ['ip', '::ffff:7f00:1', 'ERR_SIEM_DECISION_ALLOWLISTED'],
      ['ip', '0:0:0:0:0:ffff:127.0.0.1', 'ERR_SIEM_DECISION_ALLOWLISTED'],
      ['cidr', '::ffff:7f00:1/128', 'ERR_SIEM_DECISION_ALLOWLISTED'],
      ['ip', '127.000.000.001', 'ERR_SIEM_DECISION_SCOPE'],
      ['cidr', '127.0.0.1/8', 'ERR_SIEM_DECISION_SCOPE'],
      ['cidr', '10.1.2.3/8', 'ERR_SIEM_DECISION_SCOPE'],
    ] as const) {
      const api = await mesh.call(`${mesh.siemUrl}/v1/decisions`, mesh.admin, {
        body: { ...manual(type, value), ttl: '1h' },
      });
      expect(api.json?.['code'], value).toBe(code);
    }
    await meshStillWorks();
  });

  it('a serial decision written upper-case with colons is the canonical serial', async () => {
    const spelled = (device.serial.match(/.{1,2}/g) ?? []).join(':').toUpperCase();
    const r = await mesh.call(`${mesh.siemUrl}/v1/decisions`, mesh.admin, {
      body: { ...manual('serial', `00:${spelled}`), ttl: '1h' },
    });
    expect(r.status, r.body.toString()).toBe(201);
    const decision = r.json?.['decision'] as { id: string; scope: unknown; revision: number };
    expect(decision.scope).toEqual({ type: 'serial', value: device.serial });
    await until('the agent to refuse the quarantined serial', async () => {
      try {
        await mesh.echo(agent, device, 'x');
        return undefined;
      } catch {
        return true;
      }
    });
    const del = await mesh.call(`${mesh.siemUrl}/v1/decisions/${decision.id}/lift`, mesh.admin, { body: {} });
    expect(del.status, del.body.toString()).toBeLessThan(300);
    await until('the agent to admit the device again', async () => {
      try {
        return (await mesh.echo(agent, device, 'back')) === 'back' ? true : undefined;
      } catch {
        return undefined;
      }
    });
  });

  it('cidr ::ffff:0.0.0.0/96 quarantines all of IPv4', async () => {
    // The mapped range is all of IPv4 (0.0.0.0/0), which holds the allowlisted 127.0.0.1.
    const api = await mesh.call(`${mesh.siemUrl}/v1/decisions`, mesh.admin, {
      body: { ...manual('cidr', '::ffff:0.0.0.0/96'), ttl: '1h' },
    });
    expect(api.status).toBe(403);
    expect(api.json?.['code']).toBe('ERR_SIEM_DECISION_ALLOWLISTED');
    const mapped127 = await mesh.call(`${mesh.siemUrl}/v1/decisions`, mesh.admin, {
      body: { ...manual('cidr', '::FFFF:7F00:0/104'), ttl: '1h' },
    });
    expect(mapped127.json?.['code']).toBe('ERR_SIEM_DECISION_ALLOWLISTED');

    const analyst = await (mesh.dashboard ?? fail('no dashboard')).login('analyst');
    const dash = await analyst.call('/api/decisions', {
      body: { ...manual('cidr', '::ffff:0.0.0.0/96'), ttlSeconds: 3600 },
    });
    expect(dash.status).toBe(403);
    expect(dash.json?.['code']).toBe('ERR_SIEM_DECISION_ALLOWLISTED');
    await meshStillWorks();
  });

  it('zone identifiers', async () => {
    for (const [type, value] of [
      ['ip', 'fe80::1%eth0'],
      ['cidr', 'fe80::%eth0/64'],
      ['ip', '::ffff:127.0.0.1%lo'],
    ] as const) {
      const api = await mesh.call(`${mesh.siemUrl}/v1/decisions`, mesh.admin, {
        body: { ...manual(type, value), ttl: '1h' },
      });
      expect(api.status, value).toBe(400);
      expect(api.json?.['code'], value).toBe('ERR_SIEM_DECISION_SCOPE');
    }
    const analyst = await (mesh.dashboard ?? fail('no dashboard')).login('analyst');
    const dash = await analyst.call('/api/decisions', {
      body: { ...manual('ip', 'fe80::1%eth0'), ttlSeconds: 3600 },
    });
    expect(dash.status).toBe(400);
    expect(dash.json?.['code']).toBe('ERR_SIEM_DECISION_SCOPE');
    // An event naming a zone is refused whole; nothing of it is stored or correlated.
    const ev = await mesh.report(reporter, [
      { '@timestamp': Date.now(), 'event.action': 'handshake.failure', 'source.ip': 'fe80::1%eth0' },
    ]);
    expect(ev.status).toBe(400);
    expect(ev.json?.['code']).toBe('ERR_SIEM_EVENT_INVALID');
    await meshStillWorks();
  });

  it('a decision given in another spelling is created, signed and enforced in the canonical one', async () => {
    const r = await mesh.call(`${mesh.siemUrl}/v1/decisions`, mesh.admin, {
      body: { ...manual('ip', '::FFFF:192.0.2.77'), ttl: '1h' },
    });
    expect(r.status, r.body.toString()).toBe(201);
    expect((r.json?.['decision'] as { scope: unknown }).scope).toEqual({ type: 'ip', value: '192.0.2.77' });
    const revision = (r.json?.['decision'] as { revision: number }).revision;
    // The agent verified the signed document (it refuses non-canonical scopes) and applied it.
    await until('the agent to apply the decision', async () => {
      const h = await agent.admin('/healthz');
      const m = /"decisionRevision":(\d+)/.exec(h.text);
      return m !== null && Number(m[1]) >= revision ? true : undefined;
    });
    expect(await mesh.echo(agent, device, 'unaffected')).toBe('unaffected');
  });
});

function fail(msg: string): never {
  throw new Error(msg);
}
