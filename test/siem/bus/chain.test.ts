// A chained correlation (a correlation over another correlation's alerts) on the sharded bus, on
// the real nats-server: inner alerts raised on two shards reach the one shard that keeps the outer
// group, so the outer correlation counts them all and fires once.
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../common/log.js';
import { checkRuleFile } from '../../../policies/rules/index.js';
import { Correlator, type Alert } from '../../../siem/correlate/index.js';
import {
  busLayout,
  BusIngest,
  connectBus,
  CorrelationWorker,
  deleteBusLayout,
  DurableLoop,
  parseChainMessage,
  shardOf,
  ROUTE_SEP,
  type Bus,
} from '../../../siem/bus/index.js';
import { failures, NATS, testPrefix, until } from './fixtures.js';

const log = createLogger('bus-chain-test', 'silent');
const prefix = testPrefix();
const failure = failures(prefix);

const RULES = `
title: handshake failure
id: t-failure
name: failure
status: test
level: informational
logsource:
  product: edgeward
detection:
  selection:
    event.action: handshake.failure
  condition: selection
---
title: three failures from one address
id: t-burst
name: burst
status: test
level: low
correlation:
  type: event_count
  rules:
    - failure
  group-by:
    - source.ip
  timespan: 1m
  condition:
    gte: 3
---
title: bursts from three addresses
id: t-spread
status: test
level: high
correlation:
  type: value_count
  rules:
    - burst
  group-by:
    - observer.identity
  timespan: 5m
  condition:
    gte: 3
    field: source.ip
`;

describe('chain events on a correlation shard', () => {
  const inner = 't-burst';
  const event = { '@timestamp': 1, 'event.id': 'a', 'event.action': 'siem.correlation', 'rule.id': inner };
  const bytes = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

  it('reads inner alerts of the named correlation', () => {
    expect(parseChainMessage(bytes([event]), inner)).toEqual([event]);
  });
  it.each([
    ['not JSON', new TextEncoder().encode('[{')],
    ['an empty array', bytes([])],
    ['another rule', bytes([{ ...event, 'rule.id': 't-other' }])],
    ['another action', bytes([{ ...event, 'event.action': 'handshake.failure' }])],
    ['a nested value', bytes([{ ...event, 'source.ip': { x: 1 } }])],
    ['no time', bytes([{ ...event, '@timestamp': 'now' }])],
    ['too many', bytes(Array.from({ length: 257 }, () => event))],
  ])('refuses %s with ERR_SIEM_BUS_MESSAGE', (_what, data) => {
    expect(() => parseChainMessage(data, inner)).toThrow(
      expect.objectContaining({ code: 'ERR_SIEM_BUS_MESSAGE' }),
    );
  });
});

describe('a chained correlation on two shards (real nats-server)', () => {
  const buses: Bus[] = [];
  afterAll(async () => {
    const b = buses[0];
    if (b !== undefined) await deleteBusLayout(b.jsm, b.layout);
    for (const x of buses) await x.close();
  });

  it('inner alerts raised on both shards are counted by the outer group on its one shard, which fires once', async () => {
    const inner = 't-burst';
    const rules = checkRuleFile(RULES, 'chain.yaml');
    const open = async (name: string): Promise<Bus> => {
      const b = await connectBus({ servers: [NATS], layout: busLayout(prefix, 2), name, log });
      buses.push(b);
      return b;
    };
    // Four addresses, two of whose bursts land on each shard: no shard alone sees three.
    const byShard: string[][] = [[], []];
    for (let i = 1; byShard.some((l) => l.length < 2); i++) {
      const ip = `198.51.100.${i}`;
      const list = byShard[shardOf(`${inner}${ROUTE_SEP}${ip}`, 2)]!;
      if (list.length < 2) list.push(ip);
    }
    const ips = byShard.flat();

    const bus = await open('chain');
    const router = new Correlator(rules);
    const ingest = new BusIngest({ bus, routes: (e) => router.routes(e), log });
    const workers = [0, 1].map(
      (shard) => new CorrelationWorker({ bus, shard, rules, holder: `w${shard}`, log }),
    );
    for (const w of workers) w.start();
    const raised: Alert[] = [];
    const responder = await DurableLoop.alerts(
      { bus, durable: 'respond', log },
      (a) => void raised.push(...a),
    );
    await until('both shards held', () => workers.every((w) => w.holding));

    const t0 = Date.now();
    const events = ips.flatMap((ip, k) => [0, 1, 2].map((j) => failure(ip, t0 + k * 1_000 + j * 100)));
    await ingest.submit(events, 'chain-batch');

    await until('the outer detection', () => raised.some((a) => a.ruleId === 't-spread'));
    await new Promise((r) => setTimeout(r, 500));
    const spread = raised.filter((a) => a.ruleId === 't-spread');
    expect(spread).toHaveLength(1);
    expect(spread[0]!.groupBy).toEqual({ 'observer.identity': 'spiffe://t.example/node/n1' });
    // The inner bursts feed the outer correlation only (Sigma: a referenced rule does not generate).
    expect(raised.filter((a) => a.ruleId === inner)).toEqual([]);
    expect(spread[0]!.count).toBeGreaterThanOrEqual(3);

    await responder.close();
    for (const w of workers) await w.stop();
  });
});
