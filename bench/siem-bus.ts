// Ingest through the bus: I ingest processes (BusIngest, the default rule pack's routes) publish
// EVENTS handshake failures from many addresses in batches of 100 to the real nats-server, and W
// correlation worker processes (one shard each) correlate them; prints events/s from the first
// publish to the last event correlated, and CPU-seconds per 100,000 events, for 1+1 and 2+2.
// `node dist/bench/siem-bus.js [EVENTS]` (default 100,000); NATS from EDGEWARD_BENCH_NATS
// (default nats://127.0.0.1:4222). Streams are made under a fresh prefix and deleted after.
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { validateEvent, type EdgeEvent } from '../common/events.js';
import { createLogger } from '../common/log.js';
import { defaultPolicyPath } from '../policies/index.js';
import { loadRules } from '../policies/rules/index.js';
import { BusIngest, busLayout, connectBus, CorrelationWorker, deleteBusLayout } from '../siem/bus/index.js';
import { Correlator } from '../siem/correlate/index.js';

const NATS = process.env['EDGEWARD_BENCH_NATS'] ?? 'nats://127.0.0.1:4222';
const log = createLogger('bench', 'error');

async function ingestRole(prefix: string, shards: number, from: number, n: number): Promise<void> {
  const bus = await connectBus({
    servers: [NATS],
    layout: busLayout(prefix, shards),
    name: 'bench-ingest',
    log,
  });
  const router = new Correlator(await loadRules(defaultPolicyPath('rules')));
  const ingest = new BusIngest({ bus, routes: (e) => router.routes(e), log, maxQueuedEvents: 1_000_000 });
  const t0 = Date.now();
  const inFlight: Promise<unknown>[] = [];
  for (let i = from; i < from + n; i += 100) {
    const batch: EdgeEvent[] = [];
    for (let j = i; j < Math.min(from + n, i + 100); j++)
      batch.push(
        validateEvent(
          {
            '@timestamp': t0 + j,
            'event.action': 'handshake.failure',
            'observer.type': 'node',
            'observer.identity': 'spiffe://bench.example/node/n1',
            'source.ip': `10.${(j >> 16) & 255}.${(j >> 8) & 255}.${j & 255}`,
            'event.id': `e${j}`,
            'event.ingested': t0 + j,
          },
          { mode: 'stored' },
        ),
      );
    inFlight.push(ingest.submit(batch, `${prefix}-${i}`));
    if (inFlight.length >= 16) await inFlight.shift();
  }
  await Promise.all(inFlight);
  await bus.close();
  const cpu = process.cpuUsage();
  process.send?.({ cpu: (cpu.user + cpu.system) / 1e6 });
}

async function workerRole(prefix: string, shards: number, shard: number): Promise<void> {
  const bus = await connectBus({
    servers: [NATS],
    layout: busLayout(prefix, shards),
    name: 'bench-worker',
    log,
  });
  const w = new CorrelationWorker({
    bus,
    shard,
    rules: await loadRules(defaultPolicyPath('rules')),
    holder: `b${shard}`,
    log,
  });
  w.start();
  const tick = setInterval(() => process.send?.({ events: w.events, at: Date.now() }), 100);
  process.once('message', () => {
    clearInterval(tick);
    void w.stop().then(async () => {
      await bus.close();
      const cpu = process.cpuUsage();
      process.send?.({ events: w.events, at: Date.now(), cpu: (cpu.user + cpu.system) / 1e6, done: true });
    });
  });
}

interface Msg {
  events?: number;
  at?: number;
  cpu?: number;
  done?: boolean;
}

async function run(events: number, replicas: number, workers: number): Promise<void> {
  const prefix = `bench${randomBytes(4).toString('hex')}`;
  const setup = await connectBus({ servers: [NATS], layout: busLayout(prefix, workers), name: 'bench', log });
  const me = process.argv[1] as string;
  let cpu = 0;
  const seen = new Map<number, { events: number; at: number }>();
  const ws = Array.from({ length: workers }, (_, k) => {
    const c = fork(me, ['worker', prefix, String(workers), String(k)]);
    c.on('message', (m: Msg) => {
      if (m.events !== undefined && m.at !== undefined) {
        const prev = seen.get(k);
        if (prev === undefined || m.events > prev.events) seen.set(k, { events: m.events, at: m.at });
      }
      if (m.done === true) cpu += m.cpu ?? 0;
    });
    return c;
  });
  await new Promise((r) => setTimeout(r, 1500));
  const t0 = Date.now();
  const per = Math.ceil(events / replicas);
  await Promise.all(
    Array.from({ length: replicas }, (_, i) => {
      const c = fork(me, [
        'ingest',
        prefix,
        String(workers),
        String(i * per),
        String(Math.min(per, events - i * per)),
      ]);
      return new Promise<void>((resolve) => {
        c.on('message', (m: Msg) => (cpu += m.cpu ?? 0));
        c.once('exit', () => resolve());
      });
    }),
  );
  const published = Date.now();
  // Every event touches one group (its address): the workers together see each event once.
  for (;;) {
    const total = [...seen.values()].reduce((n, s) => n + s.events, 0);
    if (total >= events || Date.now() - published > 120_000) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const last = Math.max(...[...seen.values()].map((s) => s.at));
  const total = [...seen.values()].reduce((n, s) => n + s.events, 0);
  await Promise.all(
    ws.map(
      (c) =>
        new Promise<void>((resolve) => {
          c.once('exit', () => resolve());
          c.send('stop');
        }),
    ),
  );
  await deleteBusLayout(setup.jsm, setup.layout);
  await setup.close();
  const s = (last - t0) / 1000;
  console.log(
    `${replicas} ingest + ${workers} workers: ${total} of ${events} events correlated in ${s.toFixed(2)} s = ` +
      `${Math.round(total / s)} events/s; published in ${((published - t0) / 1000).toFixed(2)} s; ` +
      `${((cpu / total) * 100_000).toFixed(2)} CPU-s per 100,000 events (ingest + workers)`,
  );
}

const [role, ...args] = process.argv.slice(2);
if (role === 'ingest') await ingestRole(args[0] as string, Number(args[1]), Number(args[2]), Number(args[3]));
else if (role === 'worker') await workerRole(args[0] as string, Number(args[1]), Number(args[2]));
else {
  const events = Number(role ?? 100_000);
  console.log(`siem-bus: ${events} events, default rule pack, NATS ${NATS}, ${new Date().toISOString()}`);
  await run(events, 1, 1);
  await run(events, 2, 2);
}
