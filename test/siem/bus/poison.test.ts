// A message the store cannot take, on the real nats-server: retried a bounded number of times,
// then set aside on the stream (still readable at its sequence) while the messages after it are
// stored; an outage that passes (ERR_STORE_UNAVAILABLE) is retried for as long as it lasts.
import { afterAll, describe, expect, it } from 'vitest';
import type { EdgeEvent } from '../../../common/events.js';
import { EdgewardError } from '../../../common/errors.js';
import { createLogger } from '../../../common/log.js';
import {
  busLayout,
  BusIngest,
  connectBus,
  deleteBusLayout,
  DurableLoop,
  type Bus,
} from '../../../siem/bus/index.js';
import { failures, NATS, testPrefix, until } from './fixtures.js';

const log = createLogger('bus-poison-test', 'silent');
const prefix = testPrefix();
const event = failures(prefix);

describe('poison batches on the bus (real nats-server)', () => {
  let bus: Bus;
  afterAll(async () => {
    await deleteBusLayout(bus.jsm, bus.layout);
    await bus.close();
  });

  it('a batch the store keeps refusing is set aside after maxDeliver tries, the next ones are stored, an outage is waited out', async () => {
    bus = await connectBus({ servers: [NATS], layout: busLayout(prefix, 1), name: 'poison', log });
    const ingest = new BusIngest({ bus, routes: () => [], log });
    const tries = new Map<string, number>();
    const stored: string[] = [];
    const setAside: number[] = [];
    let outage = true;
    const loop = await DurableLoop.batches(
      {
        bus,
        durable: 'store',
        log,
        maxDeliver: 3,
        retryMs: 50,
        onSetAside: (s) => setAside.push(s),
      },
      async (events) => {
        const ip = events[0]!['source.ip'] as string;
        tries.set(ip, (tries.get(ip) ?? 0) + 1);
        if (ip === '192.0.2.66') throw new TypeError('a row the store cannot take');
        if (ip === '192.0.2.77' && outage)
          throw new EdgewardError('ERR_STORE_UNAVAILABLE', 'the store is away');
        stored.push(ip);
      },
      async () => false,
    );
    await ingest.submit([event('192.0.2.66')], 'poison');
    await ingest.submit([event('192.0.2.77')], 'outage');
    await ingest.submit([event('192.0.2.1')], 'good');

    await until('the good batch stored', () => stored.includes('192.0.2.1'));
    await until('the poison set aside', () => setAside.length === 1);
    expect(tries.get('192.0.2.66')).toBe(3);
    // The outage is retried past maxDeliver and the batch is stored once the store is back.
    await until(
      'the outage batch tried more than maxDeliver times',
      () => (tries.get('192.0.2.77') ?? 0) > 5,
    );
    expect(stored).not.toContain('192.0.2.77');
    outage = false;
    await until('the outage batch stored', () => stored.includes('192.0.2.77'));
    await new Promise((r) => setTimeout(r, 300));
    expect(tries.get('192.0.2.66')).toBe(3);
    expect(stored.sort()).toEqual(['192.0.2.1', '192.0.2.77']);

    // Set aside, not lost: the batch is on the stream at the sequence the log names.
    const m = await bus.jsm.streams.getMessage(bus.layout.eventsStream, { seq: setAside[0]! });
    expect((JSON.parse(new TextDecoder().decode(m.data)) as EdgeEvent[])[0]!['source.ip']).toBe('192.0.2.66');
    await loop.close();
  });
});
