// Two `siem serve --bus` replicas on this test's own nats-server (a temp dir, a free port, so it can
// be restarted): kill -9 of a replica mid-load (the reporter retries on the other; nothing
// acknowledged is lost, nothing stored twice), kill -9 of the replica that held a correlation
// shard during a burst (the other takes the shard over and the detection fires once), and the
// nats-server restarted under load (503 with Retry-After while it is down, then full recovery).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'nats';
import { serviceId } from '../../common/identity.js';
import { ROUTE_SEP, shardOf } from '../../siem/bus/index.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { EDGEWARD } from '../helpers/cli.js';
import { freePort, requireNatsServer, runNatsServer } from '../helpers/private-nats.js';
import { tempDir } from '../helpers/tmp.js';
import { call, enrollAs, waitFor, type Creds } from '../siem/service/setup.js';

const TD = 'factory.example';
let ca: TestCa;
const procs: ChildProcess[] = [];
let natsPort = 0;
let natsDir = '';
let nats: ChildProcess | undefined;

async function startNats(): Promise<void> {
  nats = await runNatsServer(['-js', '-a', '127.0.0.1', '-p', String(natsPort), '-sd', natsDir]);
  procs.push(nats);
}

function serve(args: string[]): Promise<{ proc: ChildProcess; url: string; err: () => string }> {
  const proc = spawn(process.execPath, [EDGEWARD, 'siem', 'serve', ...args], {
    env: { ...process.env, EDGEWARD_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.push(proc);
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`SIEM not ready:\n${out}\n${err}`)), 30_000);
    proc.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (https:\/\/\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve({ proc, url: m[1], err: () => err });
      }
    });
    proc.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`SIEM exited with ${code}:\n${out}\n${err}`));
    });
  });
}

const kill9 = async (p: ChildProcess): Promise<void> => {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGKILL');
  await new Promise((r) => p.once('exit', r));
};

beforeAll(async () => {
  requireNatsServer();
  natsPort = await freePort();
  natsDir = tempDir('edgeward-nats-');
  await startNats();
  ca = await startTestCa();
});
afterAll(async () => {
  for (const p of procs) await kill9(p);
  await ca?.stop();
});

interface Replica {
  readonly data: string;
  readonly base: string[];
  proc: ChildProcess;
  url: string;
}

async function replica(dir: string, name: string): Promise<Replica> {
  const data = join(dir, name);
  const base = [
    '--data',
    data,
    '--ca',
    ca.url,
    '--fingerprint',
    ca.fingerprint,
    '--bus',
    `nats://127.0.0.1:${natsPort}`,
    '--bus-shards',
    '2',
    // Each replica keeps its own SQLite store: each stores every event and handles every alert.
    '--bus-group',
    name,
  ];
  const s = await serve([
    ...base,
    '--listen',
    '127.0.0.1:0',
    '--token-file',
    await ca.tokenFile(serviceId(TD, 'siem')),
  ]);
  return { data, base, proc: s.proc, url: s.url };
}

// Read-only, beside the running SIEM (WAL readers do not block its writers).
const query = <T>(data: string, fn: (db: Database.Database) => T, file = 'siem.db'): T => {
  const db = new Database(join(data, file), { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  try {
    return fn(db);
  } finally {
    db.close();
  }
};

const countFor = (data: string, value: string): number =>
  query(
    data,
    (db) =>
      (db.prepare('SELECT count(*) AS n FROM events WHERE source_identity = ?').get(value) as { n: number })
        .n,
  );

const bursts = (data: string, ip: string): number =>
  query(
    data,
    (db) =>
      (
        db.prepare('SELECT doc FROM alerts WHERE rule_id = ?').all('ew-handshake-failures-burst') as {
          doc: string;
        }[]
      )
        .map((r) => JSON.parse(r.doc) as { groupBy: Record<string, string> })
        .filter((x) => x.groupBy['source.ip'] === ip).length,
    'siem.state.db',
  );

describe('SIEM replicas on the bus, with faults', () => {
  let a: Replica;
  let b: Replica;
  let node: Creds;
  let dir: string;

  beforeAll(async () => {
    dir = tempDir('edgeward-bus-faults-');
    a = await replica(dir, 'a');
    b = await replica(dir, 'b');
    node = await enrollAs(ca, `spiffe://${TD}/node/n1`, join(dir, 'n1'));
  });

  it('kill -9 of a replica mid-load: the reporter retries on the other, nothing acknowledged is lost or stored twice', async () => {
    const acked: number[] = [];
    let next = 0;
    let stop = false;
    let retried = 0;
    const post = async (url: string, body: unknown): Promise<number> => {
      try {
        return (await call(`${url}/v1/events`, node, { body })).status;
      } catch {
        return 0;
      }
    };
    const loop = async (): Promise<void> => {
      while (!stop) {
        const k = next++;
        const t0 = Date.now() - 10_000;
        const batch = Array.from({ length: 50 }, (_, i) => ({
          '@timestamp': t0 + i,
          'event.action': 'connection.accepted',
          'source.identity': `spiffe://${TD}/device/k${k}`,
          'source.port': 1024 + i,
        }));
        // The same batch, byte for byte, on the other replica when the first does not answer 200.
        if ((await post(a.url, batch)) === 200 || (retried++, (await post(b.url, batch)) === 200))
          acked.push(k);
      }
    };
    const loops = Array.from({ length: 3 }, loop);
    await waitFor('batches acknowledged by replica a', () => acked.length >= 15, 20_000);
    await kill9(a.proc);
    await waitFor('batches acknowledged by replica b', () => acked.length >= 40, 20_000);
    stop = true;
    await Promise.all(loops);
    expect(retried).toBeGreaterThan(0);
    // Every acknowledged batch is stored once by b (it consumes the whole stream).
    await waitFor(
      'b stored every acknowledged batch',
      () => acked.every((k) => countFor(b.data, `spiffe://${TD}/device/k${k}`) >= 50) || undefined,
      20_000,
    );
    for (const k of acked)
      expect({ k, n: countFor(b.data, `spiffe://${TD}/device/k${k}`) }).toEqual({ k, n: 50 });

    // Back: a catches up with what it missed from its own durable consumer.
    const again = await serve([...a.base, '--listen', '127.0.0.1:0']);
    a.proc = again.proc;
    a.url = again.url;
    // What a held unacknowledged when it died comes back after the ack wait (10 s).
    await waitFor(
      'a caught up',
      () => acked.every((k) => countFor(a.data, `spiffe://${TD}/device/k${k}`) >= 50) || undefined,
      40_000,
    );
    for (const k of acked)
      expect({ k, n: countFor(a.data, `spiffe://${TD}/device/k${k}`) }).toEqual({ k, n: 50 });
  });

  it('kill -9 of the replica holding a correlation shard during a burst: the detection fires once', async () => {
    const ip = '198.51.100.77';
    const t0 = Date.now();
    const burst = (from: number, n: number): unknown[] =>
      Array.from({ length: n }, (_, i) => ({
        '@timestamp': t0 + (from + i) * 100,
        'event.action': 'handshake.failure',
        'source.ip': ip,
        'event.reason': 'unknown_ca',
      }));
    // The replica holding this group's shard takes the first part, and is killed; the other takes
    // the shard over, rebuilds the group from the stream and gets the rest.
    const shard = shardOf(`ew-handshake-failures-burst${ROUTE_SEP}${ip}`, 2);
    const nc = await connect({ servers: `nats://127.0.0.1:${natsPort}` });
    const kv = await nc.jetstream().views.kv('EDGEWARD_LEASES');
    const holder = await waitFor('the shard held', async () => (await kv.get(`shard.${shard}`))?.string());
    await nc.close();
    const [victim, other] = holder.startsWith('a/') ? [a, b] : [b, a];
    expect(holder).toBe(`${victim === a ? 'a' : 'b'}/${victim.proc.pid}`);
    expect((await call(`${victim.url}/v1/events`, node, { body: burst(0, 12) })).status).toBe(200);
    await kill9(victim.proc);
    expect((await call(`${other.url}/v1/events`, node, { body: burst(12, 10) })).status).toBe(200);
    await waitFor('the detection', () => bursts(other.data, ip) > 0 || undefined, 30_000);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(bursts(other.data, ip)).toBe(1);
    if (victim === b) {
      const again = await serve([...b.base, '--listen', '127.0.0.1:0']);
      b.proc = again.proc;
      b.url = again.url;
    }
  });

  it('nats-server restarted under load: 503 with Retry-After while down, then every acknowledged batch is stored', async () => {
    const acked: number[] = [];
    const refused: { status: number; retryAfter: unknown }[] = [];
    let next = 1000;
    let stop = false;
    const loop = async (): Promise<void> => {
      while (!stop) {
        const k = next++;
        const batch = Array.from({ length: 20 }, (_, i) => ({
          '@timestamp': Date.now() - 5_000 + i,
          'event.action': 'connection.accepted',
          'source.identity': `spiffe://${TD}/device/r${k}`,
          'source.port': 2000 + i,
        }));
        for (;;) {
          const r = await call(`${b.url}/v1/events`, node, { body: batch }).catch(() => undefined);
          if (r?.status === 200) {
            acked.push(k);
            break;
          }
          // As an agent does: keep it (spool) and send it again later.
          if (r !== undefined) refused.push({ status: r.status, retryAfter: r.headers['retry-after'] });
          await new Promise((res) => setTimeout(res, 200));
          if (stop) break;
        }
      }
    };
    const loops = Array.from({ length: 2 }, loop);
    await waitFor('load before the restart', () => acked.length >= 10, 20_000);
    nats?.kill('SIGTERM');
    await new Promise((r) => nats?.once('exit', r));
    await waitFor(
      '503 while the bus is down',
      () => refused.some((x) => x.status === 503) || undefined,
      15_000,
    );
    await startNats();
    const before = acked.length;
    await waitFor('load after the restart', () => acked.length >= before + 10, 30_000);
    stop = true;
    await Promise.all(loops);
    const r503 = refused.filter((x) => x.status === 503);
    expect(r503.length).toBeGreaterThan(0);
    expect(r503.every((x) => x.retryAfter === '2')).toBe(true);
    await waitFor(
      'every acknowledged batch stored',
      () => acked.every((k) => countFor(b.data, `spiffe://${TD}/device/r${k}`) >= 20) || undefined,
      30_000,
    );
    for (const k of acked)
      expect({ k, n: countFor(b.data, `spiffe://${TD}/device/r${k}`) }).toEqual({ k, n: 20 });
  });
});
