// Benchmark: the edgeward agent's inbound mTLS listener beside stunnel (same certificates, same
// echo backend, interleaved runs, loopback only). Run: `npm run build && node dist/bench/agent-proxy.js`.
// Measures added latency p50/p99 on persistent connections (64 B, 16 KB), requests/s,
// handshakes/s (also per CPU-second of the proxy process), RSS per 1,000 idle connections, and
// (agent only) decision-to-kill time.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { nodeArgsFromEnv } from './lib.js';

const SELF = fileURLToPath(import.meta.url);
const TD = 'factory.example';
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 2);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 2);

// ---- child modes ----
if (process.argv[2] === '--child-echo') {
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => undefined);
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1', () =>
    process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`),
  );
} else if (process.argv[2] === '--child-agent') {
  const { runAgentCommand } = await import('../agent/index.js');
  const { silentLogger } = await import('../common/log.js');
  // The RSS measurement asks for a full GC first so heap garbage does not pass for connection cost.
  process.on('SIGUSR2', () => (globalThis as { gc?: () => void }).gc?.());
  void runAgentCommand(['--config', process.argv[3]!], {
    log: silentLogger,
    onStarted: (a) => process.stdout.write(`${a.inbound.get('in')!.port}\n`),
  }).then((code) => process.exit(code));
} else if (process.argv[2] === '--child-floor') {
  // BENCH_FLOOR=1: the least a Node mTLS proxy does (TLS server, backend socket, two pipes), the
  // floor under the agent's figures on this machine and Node version.
  const [dir, echoPort] = [process.argv[3]!, Number(process.argv[4])];
  const server = tls.createServer(
    {
      key: readFileSync(join(dir, 'server.key')),
      cert: readFileSync(join(dir, 'server.pem')),
      ca: readFileSync(join(dir, 'root.pem')),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    },
    (s) => {
      const b = net.connect(echoPort, '127.0.0.1');
      s.setNoDelay(true);
      b.setNoDelay(true);
      s.on('error', () => b.destroy());
      b.on('error', () => s.destroy());
      s.pipe(b).pipe(s);
    },
  );
  server.listen(0, '127.0.0.1', () =>
    process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`),
  );
} else {
  await main();
}

// ---- PKI with openssl (both proxies use the very same files) ----
function pki(dir: string): void {
  const sh = (cmd: string): void => {
    execFileSync('sh', ['-c', cmd], { cwd: dir, stdio: 'ignore' });
  };
  writeFileSync(
    join(dir, 'ext.cnf'),
    `[root]\nbasicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n` +
      `[int]\nbasicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nnameConstraints=critical,permitted;URI:${TD}\n` +
      `[server]\nbasicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=critical,URI:spiffe://${TD}/node/server\n` +
      `[client]\nbasicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=critical,URI:spiffe://${TD}/node/client\n` +
      `[siem]\nbasicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=critical,URI:spiffe://${TD}/svc/siem\n`,
  );
  const key = (n: string): void =>
    sh(`openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out ${n}.key`);
  key('root');
  sh(
    `openssl req -new -x509 -key root.key -subj "/CN=Bench Root" -days 30 -extensions root -config ext.cnf -out root.pem 2>/dev/null || openssl req -new -x509 -key root.key -subj "/CN=Bench Root" -days 30 -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign -out root.pem`,
  );
  key('int');
  sh(
    `openssl req -new -key int.key -subj "/CN=Bench Int" -out int.csr && openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -days 30 -extfile ext.cnf -extensions int -out int.pem`,
  );
  for (const n of ['server', 'client', 'siem']) {
    key(n);
    sh(
      `openssl req -new -key ${n}.key -subj "/" -out ${n}.csr 2>/dev/null || openssl req -new -key ${n}.key -subj "/O=edgeward" -out ${n}.csr`,
    );
    sh(
      `openssl x509 -req -in ${n}.csr -CA int.pem -CAkey int.key -CAcreateserial -days 2 -extfile ext.cnf -extensions ${n} -out ${n}.leaf.pem`,
    );
    sh(`cat ${n}.leaf.pem int.pem > ${n}.pem`);
  }
  sh(
    'mkdir -p node && cp server.key node/key.pem && cp server.pem node/cert.pem && cp root.pem node/bundle.pem',
  );
}

// ---- helpers ----
function spawnChild(args: string[], flags: string[] = []): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, [...process.execArgv, ...flags, SELF, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const t = setTimeout(() => reject(new Error(`child ${args.join(' ')} did not start: ${err}`)), 90_000);
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(t);
        resolve({ child, line: out.slice(0, nl) });
      }
    });
    child.once('exit', (c) => reject(new Error(`child exited ${c}: ${err}`)));
  });
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

/** CPU seconds (user + system, all threads) a process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / 100; // USER_HZ is 100 on Linux
}

/** Runs `f` and returns its result with the CPU seconds `pid` spent meanwhile. */
async function withCpu<T>(pid: number, f: () => Promise<T>): Promise<{ r: T; cpu: number }> {
  const c0 = cpuSeconds(pid);
  const r = await f();
  return { r, cpu: cpuSeconds(pid) - c0 };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

interface Creds {
  key: string;
  cert: string;
  ca: string;
  /** Made once: building a context per connection (PEM and key parsing) would make the load generator the bottleneck. */
  context: tls.SecureContext;
}

/** mTLS connect; resolves once the echo of one byte came back (TLS 1.3: the server accepted us). */
function connectConfirmed(port: number, c: Creds, localAddress?: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      secureContext: c.context,
      minVersion: 'TLSv1.3',
      checkServerIdentity: () => undefined,
      ...(localAddress ? { localAddress } : {}),
    });
    s.setNoDelay(true);
    s.once('error', reject);
    s.once('close', () => reject(new Error('closed before the first byte')));
    s.once('secureConnect', () => s.write('!'));
    s.once('data', () => {
      s.removeAllListeners('error');
      s.removeAllListeners('close');
      s.on('error', () => undefined);
      resolve(s);
    });
  });
}

/** One request/response of `size` bytes on a persistent connection. */
function roundTrip(s: net.Socket, payload: Buffer): Promise<void> {
  return new Promise((resolve) => {
    let got = 0;
    const onData = (d: Buffer): void => {
      got += d.length;
      if (got >= payload.length) {
        s.off('data', onData);
        resolve();
      }
    };
    s.on('data', onData);
    s.write(payload);
  });
}

async function latency(
  port: number,
  c: Creds | null,
  size: number,
  seconds: number,
): Promise<{ p50: number; p99: number; n: number }> {
  const s = c
    ? await connectConfirmed(port, c)
    : await new Promise<net.Socket>((r) => {
        const x = net.connect(port, '127.0.0.1', () => r(x));
        x.setNoDelay(true);
      });
  const payload = Buffer.alloc(size, 0x61);
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t0 = performance.now();
    await roundTrip(s, payload);
    lat.push(performance.now() - t0);
  }
  s.destroy();
  lat.sort((a, b) => a - b);
  return { p50: pct(lat, 50), p99: pct(lat, 99), n: lat.length };
}

async function throughput(
  port: number,
  c: Creds,
  conns: number,
  seconds: number,
): Promise<{ rate: number; n: number }> {
  const socks = await Promise.all(Array.from({ length: conns }, () => connectConfirmed(port, c)));
  const payload = Buffer.alloc(64, 0x62);
  let n = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    socks.map(async (s) => {
      while (performance.now() < end) {
        await roundTrip(s, payload);
        n++;
      }
    }),
  );
  const took = (performance.now() - t0) / 1000;
  for (const s of socks) s.destroy();
  return { rate: n / took, n };
}

async function handshakes(
  port: number,
  c: Creds,
  concurrency: number,
  seconds: number,
): Promise<{ rate: number; errors: number; n: number }> {
  let n = 0;
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        try {
          const s = await connectConfirmed(port, c);
          s.destroy();
          n++;
        } catch {
          errors++;
        }
      }
    }),
  );
  return { rate: n / ((performance.now() - t0) / 1000), errors, n };
}

async function settledRss(pid: number, isAgent: boolean): Promise<number> {
  if (isAgent) process.kill(pid, 'SIGUSR2');
  await new Promise((r) => setTimeout(r, 500));
  return rssKb(pid);
}

async function idleRss(
  port: number,
  c: Creds,
  pid: number,
  count: number,
  isAgent: boolean,
): Promise<number> {
  // Warm-up round so allocator pools exist before the baseline.
  const warm = await Promise.all(Array.from({ length: 50 }, () => connectConfirmed(port, c)));
  for (const s of warm) s.destroy();
  const before = await settledRss(pid, isAgent);
  const socks: tls.TLSSocket[] = [];
  for (let i = 0; i < count; i += 50)
    socks.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(50, count - i) }, () => connectConfirmed(port, c)),
      )),
    );
  const after = await settledRss(pid, isAgent);
  for (const s of socks) s.destroy();
  await new Promise((r) => setTimeout(r, 300));
  return ((after - before) * 1024) / count;
}

// ---- main ----
async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeward-bench-agent-'));
  const children: ChildProcess[] = [];
  const cleanup = (): void => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  try {
    pki(dir);
    const key = readFileSync(join(dir, 'client.key'), 'utf8');
    const cert = readFileSync(join(dir, 'client.pem'), 'utf8');
    const ca = readFileSync(join(dir, 'root.pem'), 'utf8');
    const creds: Creds = {
      key,
      cert,
      ca,
      context: tls.createSecureContext({ key, cert, ca, minVersion: 'TLSv1.3' }),
    };
    const echo = await spawnChild(['--child-echo']);
    children.push(echo.child);
    const echoPort = Number(echo.line);

    // A minimal SIEM: accepts event batches and serves the decision stream the agent subscribes to.
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(join(dir, 'siem-pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    const { signDecisionDelta, signDecisionSet } = await import('../common/decision-jws.js');
    let push: ((s: string) => void) | null = null;
    let revision = 0;
    const siem = https.createServer(
      {
        key: readFileSync(join(dir, 'siem.key')),
        cert: readFileSync(join(dir, 'siem.pem')),
        ca: creds.ca,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.3',
      },
      (req, res) => {
        if (req.url?.startsWith('/v1/decisions/stream')) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          push = (s) => res.write(s);
          void signDecisionSet(
            { trustDomain: TD, revision, issuedAt: Date.now(), decisions: [] },
            privateKey,
            'bench',
          ).then((t) => res.write(`event: snapshot\ndata: ${t}\n\n`));
          return;
        }
        req.resume();
        req.on('end', () => res.writeHead(req.url === '/v1/events' ? 202 : 204).end());
      },
    );
    await new Promise<void>((r) => siem.listen(0, '127.0.0.1', r));
    const siemPort = (siem.address() as net.AddressInfo).port;

    writeFileSync(
      join(dir, 'agent.yaml'),
      `identity: { dir: ${join(dir, 'node')}, id: spiffe://${TD}/node/server }\n` +
        `ca: { url: https://127.0.0.1:1, fingerprint: "${'0'.repeat(64)}", crlInterval: 1h }\n` +
        `siem: { url: https://127.0.0.1:${siemPort} }\n` +
        `decisions: { key: ${join(dir, 'siem-pub.pem')} }\n` +
        `state: { dir: ${join(dir, 'state')} }\n` +
        `limits: { handshakeRate: 1000000, handshakeBurst: 1000000, maxConnections: 100000 }\n` +
        `inbound:\n  - { name: in, listen: 127.0.0.1:0, forward: 127.0.0.1:${echoPort}, allow: ["spiffe://${TD}/node/*"] }\n`,
    );
    // BENCH_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") go to the agent's process.
    const agentFlags = ['--expose-gc', ...nodeArgsFromEnv('BENCH_NODE_ARGS')];
    const agent = await spawnChild(['--child-agent', join(dir, 'agent.yaml')], agentFlags);
    children.push(agent.child);
    const agentPort = Number(agent.line);

    const stunnelPort = await new Promise<number>((r) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => r(p));
      });
    });
    writeFileSync(
      join(dir, 'stunnel.conf'),
      `foreground = yes\npid =\ndebug = 3\n[in]\naccept = 127.0.0.1:${stunnelPort}\nconnect = 127.0.0.1:${echoPort}\n` +
        `cert = ${join(dir, 'server.pem')}\nkey = ${join(dir, 'server.key')}\nCAfile = ${join(dir, 'root.pem')}\n` +
        `verifyChain = yes\nrequireCert = yes\nsslVersionMin = TLSv1.3\nsslVersionMax = TLSv1.3\nTIMEOUTidle = 300\n`,
    );
    const stunnel = spawn('stunnel', [join(dir, 'stunnel.conf')], { stdio: ['ignore', 'ignore', 'ignore'] });
    children.push(stunnel);
    for (let i = 0; i < 100; i++) {
      try {
        (await connectConfirmed(stunnelPort, creds)).destroy();
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    const proxies = [
      { name: 'agent', port: agentPort, pid: agent.child.pid! },
      { name: 'stunnel', port: stunnelPort, pid: stunnel.pid! },
    ];
    if (process.env['BENCH_FLOOR'] === '1') {
      const floor = await spawnChild(['--child-floor', dir, String(echoPort)]);
      children.push(floor.child);
      proxies.push({ name: 'floor', port: Number(floor.line), pid: floor.child.pid! });
    }
    type Row = Record<string, number[]>;
    const results: Record<string, Row> = { agent: {}, stunnel: {}, direct: {}, floor: {} };
    const add = (who: string, k: string, v: number): void => {
      (results[who]![k] ??= []).push(v);
    };
    // Warm-up, not recorded: the agent's JIT (and both proxies' allocator pools) settle first, so
    // the first round does not measure compilation.
    for (const p of proxies) {
      await latency(p.port, creds, 64, 0.5);
      await throughput(p.port, creds, 32, 0.5);
      await handshakes(p.port, creds, 16, 0.5);
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const size of [64, 16384]) {
        const d = await latency(echoPort, null, size, SECONDS / 2);
        add('direct', `p50_${size}`, d.p50);
        add('direct', `p99_${size}`, d.p99);
        for (const p of round % 2 === 0 ? proxies : [...proxies].reverse()) {
          const l = await latency(p.port, creds, size, SECONDS);
          add(p.name, `p50_${size}`, l.p50);
          add(p.name, `p99_${size}`, l.p99);
        }
      }
      for (const p of round % 2 === 0 ? proxies : [...proxies].reverse()) {
        const t = await withCpu(p.pid, () => throughput(p.port, creds, 32, SECONDS));
        add(p.name, 'rps', t.r.rate);
        add(p.name, 'rps_cpu', t.r.n / t.cpu);
      }
      for (const p of round % 2 === 0 ? proxies : [...proxies].reverse()) {
        const h = await withCpu(p.pid, () => handshakes(p.port, creds, 16, SECONDS));
        add(p.name, 'hs', h.r.rate);
        add(p.name, 'hs_cpu', h.r.n / h.cpu);
        add(p.name, 'hs_errors', h.r.errors);
      }
    }
    // RSS in a fresh agent process: a warmed-up heap would hide the connections' cost.
    agent.child.kill('SIGTERM');
    await new Promise((r) => agent.child.once('exit', r));
    push = null;
    const fresh = await spawnChild(['--child-agent', join(dir, 'agent.yaml')], agentFlags);
    children.push(fresh.child);
    add('agent', 'rss_per_conn', await idleRss(Number(fresh.line), creds, fresh.child.pid!, 1000, true));
    add('stunnel', 'rss_per_conn', await idleRss(stunnelPort, creds, stunnel.pid!, 1000, false));
    const agentPortForKills = Number(fresh.line);

    // Decision-to-kill: a live connection from 127.0.0.k is cut after an IP decision is streamed.
    const kills: number[] = [];
    for (let k = 0; k < 40; k++) {
      const ip = `127.0.0.${k + 2}`;
      const s = await connectConfirmed(agentPortForKills, creds, ip);
      const closed = new Promise<number>((r) => s.once('close', () => r(performance.now())));
      const now = Date.now();
      const delta = await signDecisionDelta(
        {
          trustDomain: TD,
          from: revision,
          revision: revision + 1,
          issuedAt: now,
          upserts: [
            {
              id: `b${k}`,
              revision: revision + 1,
              scope: { type: 'ip', value: ip },
              action: 'quarantine',
              reason: 'bench',
              createdAt: now,
              expiresAt: now + 3_600_000,
              alerts: [],
            },
          ],
          removals: [],
        },
        privateKey,
        'bench',
      );
      revision += 1;
      for (let i = 0; i < 100 && !push; i++) await new Promise((r) => setTimeout(r, 50));
      if (!push) throw new Error('agent not subscribed to the decision stream');
      const t0 = performance.now();
      (push as (s: string) => void)(`event: delta\ndata: ${delta}\n\n`);
      kills.push((await closed) - t0);
    }
    kills.sort((a, b) => a - b);

    const med = (xs: number[] | undefined): number => {
      const s = [...(xs ?? [])].sort((a, b) => a - b);
      if (s.length === 0) return NaN;
      const mid = Math.floor(s.length / 2);
      // An even count has two middle values: their mean (not the upper one).
      return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
    };
    const r = (who: string, k: string): number => med(results[who]![k]);
    const f = (n: number, d = 3): string => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
    const lines: string[] = [];
    lines.push(
      `machine: ${(await import('node:os')).cpus().length} cores, Node ${process.version}, ${SECONDS}s x ${ROUNDS} interleaved rounds`,
    );
    lines.push('| metric | agent | stunnel | agent/stunnel |', '| --- | --- | --- | --- |');
    for (const size of [64, 16384]) {
      for (const q of ['p50', 'p99']) {
        const base = r('direct', `${q}_${size}`);
        const a = r('agent', `${q}_${size}`) - base;
        const s = r('stunnel', `${q}_${size}`) - base;
        lines.push(`| added latency ${q} ${size} B (ms) | ${f(a)} | ${f(s)} | ${f(a / s, 2)} |`);
      }
    }
    lines.push(
      `| requests/s (32 conns, 64 B) | ${f(r('agent', 'rps'), 0)} | ${f(r('stunnel', 'rps'), 0)} | ${f(r('agent', 'rps') / r('stunnel', 'rps'), 2)} |`,
    );
    lines.push(
      `| new-connection handshakes/s (16 concurrent) | ${f(r('agent', 'hs'), 0)} | ${f(r('stunnel', 'hs'), 0)} | ${f(r('agent', 'hs') / r('stunnel', 'hs'), 2)} |`,
    );
    lines.push(
      `| requests per proxy CPU-second | ${f(r('agent', 'rps_cpu'), 0)} | ${f(r('stunnel', 'rps_cpu'), 0)} | ${f(r('agent', 'rps_cpu') / r('stunnel', 'rps_cpu'), 2)} |`,
    );
    lines.push(
      `| handshakes per proxy CPU-second | ${f(r('agent', 'hs_cpu'), 0)} | ${f(r('stunnel', 'hs_cpu'), 0)} | ${f(r('agent', 'hs_cpu') / r('stunnel', 'hs_cpu'), 2)} |`,
    );
    lines.push(`| handshake errors | ${r('agent', 'hs_errors')} | ${r('stunnel', 'hs_errors')} | |`);
    lines.push(
      `| RSS per idle connection (KB, 1,000 conns) | ${f(r('agent', 'rss_per_conn') / 1024, 1)} | ${f(r('stunnel', 'rss_per_conn') / 1024, 1)} | ${f(r('agent', 'rss_per_conn') / r('stunnel', 'rss_per_conn'), 2)} |`,
    );
    lines.push(
      `| decision-to-kill p50 / p99 (ms, n=${kills.length}) | ${f(pct(kills, 50), 2)} / ${f(pct(kills, 99), 2)} | n/a | |`,
    );
    if (proxies.some((p) => p.name === 'floor')) {
      const added = (q: string, size: number): string =>
        f(r('floor', `${q}_${size}`) - r('direct', `${q}_${size}`));
      lines.push(
        `node floor (tls.createServer + two pipes): added latency p50/p99 64 B ${added('p50', 64)} / ${added('p99', 64)} ms, ` +
          `16 KB ${added('p50', 16384)} / ${added('p99', 16384)} ms; ${f(r('floor', 'rps'), 0)} requests/s, ` +
          `${f(r('floor', 'rps_cpu'), 0)} per CPU-second; ${f(r('floor', 'hs'), 0)} handshakes/s`,
      );
    }
    lines.push(
      `direct (no proxy) round trip p50: 64 B ${f(r('direct', 'p50_64'))} ms, 16 KB ${f(r('direct', 'p50_16384'))} ms`,
    );
    process.stdout.write(lines.join('\n') + '\n');
    siem.closeAllConnections();
    siem.close();
  } catch (err) {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    cleanup();
    process.exit(1);
  }
  cleanup();
  process.exit(0);
}
