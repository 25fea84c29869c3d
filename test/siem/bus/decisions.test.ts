// Signed decision deltas on the real nats-server: the hub's NATS publisher appends each delta in
// revision order (stored once if published again), and a reader on NATS, as an agent would,
// verifies the chain from its own revision with the SIEM's key.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { AckPolicy, DeliverPolicy } from 'nats';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyDecisions } from '../../../common/decision-jws.js';
import { silentLogger } from '../../../common/log.js';
import { DEFAULT_SETTINGS } from '../../../policies/index.js';
import {
  busLayout,
  connectBus,
  decisionMsgId,
  deleteBusLayout,
  NatsDecisionPublisher,
  parseBusDecision,
  type Bus,
  type BusDecision,
} from '../../../siem/bus/index.js';
import { ResponseEngine } from '../../../siem/playbooks/index.js';
import { DecisionHub } from '../../../siem/service/hub.js';
import { openSqliteStore } from '../../../siem/store/index.js';
import { tempDir } from '../../helpers/tmp.js';

const NATS = process.env['EDGEWARD_TEST_NATS'] ?? 'nats://127.0.0.1:4222';
const TD = 'factory.example';
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const prefix = `d${randomBytes(5).toString('hex')}`;
let bus: Bus | undefined;

afterAll(async () => {
  if (bus !== undefined) {
    await deleteBusLayout(bus.jsm, bus.layout);
    await bus.close();
  }
});

/** Every decision message on the stream, read as an agent on NATS would. */
async function readAll(b: Bus): Promise<BusDecision[]> {
  const info = await b.jsm.consumers.add(b.layout.decisionsStream, {
    ack_policy: AckPolicy.None,
    deliver_policy: DeliverPolicy.All,
    filter_subject: b.layout.decisionsSubject,
    mem_storage: true,
  });
  const c = await b.js.consumers.get(b.layout.decisionsStream, info.name);
  const out: BusDecision[] = [];
  const pending = (await c.info()).num_pending;
  const it = await c.fetch({ max_messages: pending, expires: 2_000 });
  for await (const m of it) out.push(parseBusDecision(m.data));
  await c.delete();
  return out;
}

describe('decisions on the bus', () => {
  it('publishes every signed delta once, in order; a reader verifies the chain from its revision', async () => {
    bus = await connectBus({
      servers: [NATS],
      layout: busLayout(prefix, 1),
      name: 'decisions',
      log: silentLogger,
    });
    const store = openSqliteStore(join(tempDir('edgeward-bus-dec-'), 'state.db'), { synchronous: 'NORMAL' });
    const engine = new ResponseEngine({
      trustDomain: TD,
      config: { settings: DEFAULT_SETTINGS, playbooks: [] },
    });
    const t = Date.now();
    const hub = new DecisionHub({
      engine,
      store,
      signer: { key: privateKey, kid: 'k1' },
      now: () => t,
      log: silentLogger,
    });
    const pub = await NatsDecisionPublisher.create(bus, silentLogger, () => hub.kid);
    hub.addPublisher(pub);
    for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3'])
      await hub.change((e, now) =>
        e.createManual(
          { scope: { type: 'ip', value: ip }, action: 'quarantine', ttlMs: 60_000, reason: 'test' },
          now,
        ),
      );
    await hub.settled();
    await pub.settled();
    expect(pub.published).toBe(3);
    // Published again (a replica restarted and re-sent, with any key): stored once.
    const again = await bus.js.publish(bus.layout.decisionsSubject, '{}', { msgID: decisionMsgId(3) });
    expect(again.duplicate).toBe(true);
    expect((await pub.last())?.revision).toBe(3);

    const got = await readAll(bus);
    expect(got.map((d) => [d.kind, d.from, d.revision])).toEqual([
      ['delta', 0, 1],
      ['delta', 1, 2],
      ['delta', 2, 3],
    ]);
    // An agent holding revision 1 applies 2 and 3, each verified against the SIEM's key.
    let held: number | null = 1;
    for (const d of got.filter((x) => x.from >= 1)) {
      expect(d.from).toBe(held);
      const v = await verifyDecisions(d.jws, {
        publicKey,
        trustDomain: TD,
        lastApplied: held,
        now: t,
        kid: 'k1',
      });
      if (v.kind !== 'delta') throw new Error('expected a delta');
      held = v.delta.revision;
    }
    expect(held).toBe(3);
    // A delta changed on the bus does not verify: the bus need not be trusted.
    const d3 = got[2]!;
    const [h, p, s] = d3.jws.split('.') as [string, string, string];
    const forged = `${h}.${Buffer.from(Buffer.from(p, 'base64url').toString().replace('192.0.2.3', '192.0.2.9')).toString('base64url')}.${s}`;
    const refused = await verifyDecisions(forged, {
      publicKey,
      trustDomain: TD,
      lastApplied: 2,
      now: t,
      kid: 'k1',
    }).then(
      () => 'verified',
      (err: unknown) => (err as { code?: string }).code,
    );
    expect(refused).toBe('ERR_DECISION_SIGNATURE');

    // The stream behind the hub (its publisher missed revision 4): a catch-up from the stream's
    // last revision, stored once however many replicas send it.
    await hub.change((e) => e.lift(e.active()[0]!.id));
    const lost = await hub.inOrder(() => hub.signedSince(3));
    await pub.settled();
    expect((await pub.last())?.revision).toBe(4);
    await pub.catchUp(3, lost);
    expect((await readAll(bus)).map((d) => d.revision)).toEqual([1, 2, 3, 4]);
    const snap = await hub.signedSince(null);
    await pub.catchUp(4, snap);
    expect((await readAll(bus)).map((d) => [d.kind, d.revision])).toHaveLength(4);
    hub.close();
    await store.close();
  });

  it('refuses messages that are not decision documents, with ERR_SIEM_BUS_MESSAGE', () => {
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    const ok = { from: 1, revision: 2, kid: 'k1', jws: 'a.b.c' };
    expect(parseBusDecision(enc(ok)).kind).toBe('delta');
    expect(parseBusDecision(enc({ ...ok, kind: 'snapshot' })).kind).toBe('snapshot');
    for (const bad of [
      null,
      [],
      { ...ok, kind: 'other' },
      { ...ok, revision: 1 },
      { ...ok, from: -1 },
      { ...ok, kid: 'a b' },
      { ...ok, jws: 1 },
      { ...ok, from: 1.5 },
    ]) {
      let code: unknown;
      try {
        parseBusDecision(enc(bad));
      } catch (err) {
        code = (err as { code?: unknown }).code;
      }
      expect(code, JSON.stringify(bad)).toBe('ERR_SIEM_BUS_MESSAGE');
    }
    expect(() => parseBusDecision(new Uint8Array([0xff]))).toThrow(/not JSON/);
  });
});
