// The SIEM on the real nats-server (127.0.0.1:4222, JetStream): the --bus URL list, the stream
// layout, ingest published once per batch key, and a burst split over two ingest replicas that
// two correlation shards turn into one detection, raised once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EdgeEvent } from '../../../common/events.js';
import { createLogger } from '../../../common/log.js';
import { edgeward } from '../../helpers/cli.js';
import { defaultPolicyPath } from '../../../policies/index.js';
import { loadRules, type RuleSet } from '../../../policies/rules/index.js';
import type { Alert } from '../../../siem/correlate/index.js';
import { Correlator } from '../../../siem/correlate/index.js';
import {
  busLayout,
  BusIngest,
  connectBus,
  CorrelationWorker,
  deleteBusLayout,
  DurableLoop,
  parseAlertMessage,
  parseBusUrls,
  parseEventMessage,
  type Bus,
} from '../../../siem/bus/index.js';
import { failures, NATS, testPrefix, until } from './fixtures.js';

const log = createLogger('bus-test', 'silent');
const prefix = testPrefix();
const failure = failures(prefix);

describe('--bus URLs', () => {
  it('takes a comma-separated list of nats:// and tls:// servers', () => {
    expect(parseBusUrls('nats://127.0.0.1:4222, tls://nats.example:4443')).toEqual([
      'nats://127.0.0.1:4222',
      'tls://nats.example:4443',
    ]);
  });
  it.each([
    ['', 'empty'],
    ['http://127.0.0.1:4222', 'scheme'],
    ['nats://user:secret@127.0.0.1:4222', 'credentials'],
    ['nats://127.0.0.1', 'port'],
    ['nats://127.0.0.1:4222/x', 'path'],
    ['127.0.0.1:4222', 'scheme'],
    ['nats://127.0.0.1:4222,', 'URL'],
  ])('refuses %j with ERR_SIEM_BUS_URL', (text, why) => {
    let err: unknown;
    try {
      parseBusUrls(text);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'ERR_SIEM_BUS_URL' });
    expect(String((err as Error).message)).toContain(why === 'URL' ? 'not a URL' : '');
  });
});

describe('messages read from the bus', () => {
  it.each([
    ['not JSON', '{'],
    ['not an array', '{"a":1}'],
    ['no timestamp', '[{"event.action":"x","event.id":"e"}]'],
    ['no id', `[{"@timestamp":1,"event.action":"x"}]`],
    ['prototype poisoning', '[{"@timestamp":1,"event.action":"x","event.id":"e","__proto__":{"a":1}}]'],
  ])('refuses %s with ERR_SIEM_BUS_MESSAGE', (_, text) => {
    expect(() => parseEventMessage(new TextEncoder().encode(text))).toThrow(
      expect.objectContaining({ code: 'ERR_SIEM_BUS_MESSAGE' }),
    );
  });
  it('refuses an alert that is not one', () => {
    expect(() => parseAlertMessage(new TextEncoder().encode('{"id":"a"}'))).toThrow(
      expect.objectContaining({ code: 'ERR_SIEM_BUS_MESSAGE' }),
    );
  });
});

describe('edgeward siem serve --bus', () => {
  const base = ['siem', 'serve', '--data', '/nonexistent/siem', '--listen', '127.0.0.1:0'];
  const ca = ['--ca', 'https://127.0.0.1:1', '--fingerprint', 'aa'];
  it('refuses credentials in the URL before anything starts (exit 1, the code on stderr)', () => {
    const r = edgeward([...base, ...ca, '--bus', 'nats://user:secret@127.0.0.1:4222']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      'edgeward siem serve: ERR_SIEM_BUS_URL: --bus must not carry credentials (use --bus-token-file)\n',
    );
  });
  it('refuses bus flags without --bus, and a shard number out of range (usage, exit 2)', () => {
    const r = edgeward([...base, ...ca, '--bus-shards', '3']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('edgeward siem serve: --bus-shards needs --bus\n');
    const k = edgeward([
      ...base,
      ...ca,
      '--bus',
      'nats://127.0.0.1:4222',
      '--bus-shards',
      '2',
      '--correlate',
      '2',
    ]);
    expect(k.status).toBe(2);
    expect(k.stderr).toContain('--correlate is all, none or shard numbers from 0 to 1');
  });
});

describe('the bus on the real nats-server', () => {
  let rules: RuleSet;
  const buses: Bus[] = [];
  const open = async (shards: number, name: string, p = prefix): Promise<Bus> => {
    const b = await connectBus({ servers: [NATS], layout: busLayout(p, shards), name, log });
    buses.push(b);
    return b;
  };

  beforeAll(async () => {
    rules = await loadRules(defaultPolicyPath('rules'));
  });
  afterAll(async () => {
    const b = buses[0];
    if (b !== undefined) {
      await deleteBusLayout(b.jsm, b.layout);
      await deleteBusLayout(b.jsm, busLayout(`${prefix}x`, 1));
    }
    for (const x of buses) await x.close();
  });

  it('creates the streams with explicit limits, and refuses another shard count', async () => {
    const b = await open(2, 'layout');
    const info = await b.jsm.streams.info(b.layout.eventsStream);
    expect(info.config.discard).toBe('old');
    expect(info.config.max_age).toBe(b.limits.eventsMaxAgeMs * 1e6);
    expect(info.config.max_bytes).toBe(b.limits.eventsMaxBytes);
    expect(info.config.duplicate_window).toBe(b.limits.eventsDedupeMs * 1e6);
    expect(info.config.subjects.sort()).toEqual([`${prefix}.batch`, `${prefix}.corr.*`]);
    await expect(open(3, 'other')).rejects.toMatchObject({ code: 'ERR_SIEM_BUS_STREAM' });
  });

  it('refuses to start with ERR_SIEM_BUS_UNAVAILABLE when no server answers', async () => {
    await expect(
      connectBus({
        servers: ['nats://127.0.0.1:1'],
        layout: busLayout(`${prefix}x`, 1),
        name: 'dead',
        log,
        connectTimeoutMs: 500,
      }),
    ).rejects.toMatchObject({ code: 'ERR_SIEM_BUS_UNAVAILABLE' });
  });

  it('a burst split over two replicas is one detection on two shards, raised once, and a retried batch is stored once', async () => {
    const replicas = [await open(2, 'ingest-a'), await open(2, 'ingest-b')];
    const router = new Correlator(rules);
    const ingest = replicas.map((bus) => new BusIngest({ bus, routes: (e) => router.routes(e), log }));
    const w = await open(2, 'workers');
    const workers = [0, 1].map(
      (shard) => new CorrelationWorker({ bus: w, shard, rules, holder: `w${shard}`, log }),
    );
    for (const x of workers) x.start();
    const raised: Alert[] = [];
    const responder = await DurableLoop.alerts(
      { bus: w, durable: 'respond', log },
      (a) => void raised.push(...a),
    );
    const stored: EdgeEvent[] = [];
    const store = await DurableLoop.batches(
      { bus: w, durable: 'store', log },
      async (events) => void stored.push(...events),
      async () => false,
    );
    await until('both shards held', () => workers.every((x) => x.holding));

    const t0 = Date.now();
    const burst = Array.from({ length: 20 }, (_, i) => failure('198.51.100.9', t0 + i * 100));
    const noise = Array.from({ length: 10 }, (_, i) => failure(`203.0.113.${i}`, t0 + i * 100));
    // Half of the burst through each replica; the second half out of order.
    await ingest[0]!.submit([...burst.slice(0, 10), ...noise], 'batch-a');
    await ingest[1]!.submit(burst.slice(10).reverse(), 'batch-b');
    // The reporter retries batch-a on the other replica (it never saw the acknowledgement).
    await ingest[1]!.submit([...burst.slice(0, 10), ...noise], 'batch-a');
    expect(ingest[1]!.duplicates).toBe(1);

    await until('the detection', () => raised.some((a) => a.ruleId === 'ew-handshake-failures-burst'));
    await until('every batch stored', () => stored.length >= 30);
    await new Promise((r) => setTimeout(r, 500));
    const bursts = raised.filter((a) => a.ruleId === 'ew-handshake-failures-burst');
    expect(bursts).toHaveLength(1);
    expect(bursts[0]!.groupBy).toEqual({ 'source.ip': '198.51.100.9' });
    expect(bursts[0]!.count).toBe(20);
    expect(stored).toHaveLength(30);
    expect(new Set(stored.map((e) => e['event.id'])).size).toBe(30);

    await responder.close();
    await store.close();
    for (const x of workers) await x.stop();
  });
});
