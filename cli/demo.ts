// `edgeward demo` (npm start): the whole mesh on this machine with embedded defaults, as real
// processes — the CA, the SIEM with the analysts' dashboard, three edge agents — plus simulated
// PUF devices and, where swtpm is installed, a TPM device, then an attack:
// a cloned device credential used from a second address, and a rogue host scanning the agents.
// It prints the timeline (events, alerts, decisions, agents acknowledging, the live connection
// cut) and keeps running until Ctrl-C.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { request } from 'node:https';
import { join, resolve } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { systemClock } from '../common/clock.js';
import { listenError } from '../common/ports.js';
import { createPrivateFile, privateDir } from '../common/private-files.js';
import { loadIdentity, type LoadedIdentity } from '../common/identity-dir.js';
import { uriSans } from '../common/x509.js';
import { FILES, initCa, parseServiceNames, openCaStore } from '../ca/index.js';
import { newJoinToken } from '../attestation/index.js';
import { enroll } from '../client/index.js';
import { createPufProver, importPufRecord, openPuf, provisionPuf } from '../attestation/puf/index.js';
import {
  createTpmProver,
  createTestManufacturer,
  policyTrustingMaker,
  startSwtpm,
  type Swtpm,
  readReferencePcrs,
} from '../attestation/tpm/index.js';
import { openDashboardDb, UserStore } from '../siem/index.js';
import { optional, parse, UsageError } from '../common/args.js';
import { makeLocalWebCertificate } from './demo-web-cert.js';

const TD = 'factory.example';
const EDGEWARD = join(import.meta.dirname, 'edgeward.js');
const USAGE = 'edgeward demo [--data DIR] [--port-base N] [--once]';
const DEMO_MARKER = '.edgeward-demo';
/** The service names the demo's CA declares: loopback, where everything listens. */
const DEMO_SERVICE_IPS = '127.0.0.0/8,::1';

interface Ports {
  ca: number;
  siem: number;
  dashboard: number;
  inbound: [number, number, number];
  outbound: number;
  admin: [number, number, number];
  apps: [number, number, number];
}

function portsFrom(base: number): Ports {
  return {
    ca: base,
    siem: base + 1,
    dashboard: base + 2,
    inbound: [base + 10, base + 11, base + 12],
    outbound: base + 20,
    admin: [base + 30, base + 31, base + 32],
    apps: [base + 40, base + 41, base + 42],
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Refuses, before anything starts, a port base whose ports another program listens on. */
async function checkPortsFree(base: number, ports: Ports): Promise<void> {
  const all = Object.values(ports).flat() as number[];
  for (const port of all) {
    const err = await listenError(port);
    if (err !== undefined)
      throw new UsageError(
        `port ${port} on 127.0.0.1 is not free (${err.code ?? err.message}); the demo listens on ports ${base} to ${Math.max(...all)}: give another --port-base`,
      );
  }
}

class Mesh {
  private readonly children: ChildProcess[] = [];
  private readonly servers: Server[] = [];
  private readonly sockets: TLSSocket[] = [];
  readonly t0 = Date.now();

  constructor(
    readonly dir: string,
    readonly out: (s: string) => void,
  ) {}

  step(s: string): void {
    this.out(`[+${((Date.now() - this.t0) / 1000).toFixed(3).padStart(7)} s] ${s}`);
  }

  /** Starts `edgeward ARGS` and resolves with its output once it matches `ready`. */
  start(name: string, args: string[], readyOn: RegExp): Promise<string> {
    const log = join(this.dir, `${name}.log`);
    const p = spawn(process.execPath, [EDGEWARD, ...args], {
      env: { ...process.env, EDGEWARD_LOG_LEVEL: process.env['EDGEWARD_LOG_LEVEL'] ?? 'warn' },
      // The IPC channel ends when the demo does, however it ends; the child then stops itself.
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.children.push(p);
    // Appended to the log file as it comes; only the start-up output and then a bounded tail are
    // kept in memory (readiness match, exit message).
    const file = createWriteStream(log, { flags: 'w' });
    let output = '';
    let ready = false;
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start in 60 s; see ${log}`)), 60_000);
      const onData = (c: Buffer): void => {
        file.write(c);
        output += c.toString();
        if (ready) output = output.slice(-2000);
        else if (readyOn.test(output)) {
          ready = true;
          clearTimeout(timer);
          resolvePromise(output);
        }
      };
      p.stdout?.on('data', onData);
      p.stderr?.on('data', onData);
      p.on('exit', (code) => {
        clearTimeout(timer);
        file.end();
        reject(new Error(`${name} exited with ${code}:\n${output.slice(-2000)}`));
      });
    });
  }

  /** A local app behind an agent: echoes what it receives. */
  echoApp(port: number): Promise<void> {
    const srv = createServer((s) => s.on('data', (d) => s.write(d)).on('error', () => undefined));
    this.servers.push(srv);
    return new Promise((r, j) => srv.once('error', j).listen(port, '127.0.0.1', () => r()));
  }

  /** An mTLS client connection with a device's credential, from a chosen local address. */
  tlsConnect(id: LoadedIdentity, port: number, localAddress: string): Promise<TLSSocket> {
    return new Promise((r, j) => {
      const s = connect({
        socket: tcpFrom(port, localAddress),
        key: id.keyPem,
        cert: id.certPem,
        ca: id.bundlePem,
        minVersion: 'TLSv1.3',
        checkServerIdentity: () => undefined,
      });
      this.sockets.push(s);
      // A refusal may come as an error, a plain close, or silence: all of them are refusals.
      const timer = setTimeout(() => {
        s.destroy();
        j(new Error('no answer'));
      }, 10_000);
      const refuse = (err?: Error): void => {
        clearTimeout(timer);
        j(err ?? new Error('connection closed'));
      };
      s.once('error', refuse);
      s.once('close', () => refuse());
      // TLS 1.3: the server checks our certificate after our secureConnect; its first byte (the
      // echo) is the proof that it accepted us.
      s.once('secureConnect', () => s.write('hello\n'));
      s.once('data', () => {
        clearTimeout(timer);
        r(s);
      });
    });
  }

  private readonly cleanups: Array<() => Promise<void>> = [];

  /** Runs at stop, after the edgeward processes have ended (e.g. the swtpm behind them). */
  onStop(fn: () => Promise<void>): void {
    this.cleanups.push(fn);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    for (const srv of this.servers) srv.close();
    await Promise.all(
      this.children.map(
        (c) =>
          new Promise<void>((r) => {
            if (c.exitCode !== null || c.signalCode !== null) return r();
            c.once('exit', () => r());
            c.kill('SIGTERM');
            setTimeout(() => c.kill('SIGKILL'), 5000).unref();
          }),
      ),
    );
    for (const fn of this.cleanups.splice(0)) await fn().catch(() => undefined);
  }
}

/** A TCP connection from a chosen loopback address (the demo's attackers use 127.0.0.2 and .3). */
function tcpFrom(port: number, localAddress: string): Socket {
  return netConnect({ host: '127.0.0.1', port, localAddress });
}

/** GET on the SIEM's analyst API with the CA's admin identity. */
function siemGet<T>(url: string, admin: LoadedIdentity): Promise<T> {
  return new Promise((r, j) => {
    const req = request(
      url,
      {
        key: admin.keyPem,
        cert: admin.certPem,
        ca: admin.bundlePem,
        checkServerIdentity: (_h, c) =>
          uriSans(c.subjectaltname).includes(`spiffe://${TD}/svc/siem`)
            ? undefined
            : new Error('not the SIEM'),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            r(JSON.parse(Buffer.concat(chunks).toString()) as T);
          } catch (err) {
            j(err instanceof Error ? err : new Error(String(err)));
          }
        });
      },
    );
    req.on('error', j);
    req.end();
  });
}

function agentConfig(o: {
  dir: string;
  id: string;
  tokenFile: string;
  caUrl: string;
  fp: string;
  siemUrl: string;
  inbound: number;
  app: number;
  admin: number;
  outbound?: { listen: number; connect: number; expect: string };
}): string {
  return [
    `identity: { dir: ${JSON.stringify(o.dir)}, id: ${o.id} }`,
    `ca: { url: ${o.caUrl}, fingerprint: "${o.fp}", crlInterval: 5s }`,
    `enroll: { attest: token, tokenFile: ${JSON.stringify(o.tokenFile)} }`,
    `siem: { url: ${o.siemUrl}, flushInterval: 100ms }`,
    `admin: { listen: 127.0.0.1:${o.admin} }`,
    'inbound:',
    `  - { listen: 127.0.0.1:${o.inbound}, forward: 127.0.0.1:${o.app}, allow: ["spiffe://${TD}/device/*", "spiffe://${TD}/node/*"] }`,
    ...(o.outbound
      ? [
          'outbound:',
          `  - { listen: 127.0.0.1:${o.outbound.listen}, connect: 127.0.0.1:${o.outbound.connect}, expect: ${o.outbound.expect} }`,
        ]
      : []),
    '',
  ].join('\n');
}

interface AlertView {
  id: string;
  ruleId: string;
  title: string;
  level: string;
  type: string;
  groupBy: Record<string, string>;
}
interface DecisionView {
  id: string;
  scope: { type: string; value: string };
  action: string;
  reason: string;
}

export async function runDemo(argv: string[], out: (s: string) => void): Promise<number> {
  const a = parse(
    argv,
    { data: { type: 'string' }, 'port-base': { type: 'string' }, once: { type: 'boolean' } },
    USAGE,
  );
  const base = Number(optional(a['port-base']) ?? '8443');
  if (!Number.isInteger(base) || base < 1024 || base > 65_000)
    throw new UsageError('--port-base is 1024 to 65000');
  const ports = portsFrom(base);
  await checkPortsFree(base, ports);
  const dir = resolve(optional(a.data) ?? '.edgeward/demo');
  // The demo's own folder starts afresh each run, so the story is the same every time. Only a
  // folder the demo made (it holds the marker) is ever removed: `--data ~` must not wipe a home.
  const marker = join(dir, DEMO_MARKER);
  if (existsSync(dir) && readdirSync(dir).length > 0 && !existsSync(marker)) {
    throw new UsageError(
      `${dir} is not empty and was not made by edgeward demo; give an empty or new folder`,
    );
  }
  rmSync(dir, { recursive: true, force: true });
  privateDir(dir);
  writeFileSync(marker, 'made by edgeward demo; removed and remade at every run\n');
  const mesh = new Mesh(dir, out);
  const stopAll = (): Promise<void> => mesh.stop();
  try {
    // ---- the control plane ----
    const caDir = join(dir, 'ca');
    // The mesh CA may vouch for loopback addresses (where the demo's services listen) and no DNS
    // name: a browser that trusts its root still trusts it for nothing on the web.
    const init = await initCa({
      dataDir: caDir,
      trustDomain: TD,
      clock: systemClock,
      passphrase: undefined,
      serviceNames: parseServiceNames(undefined, DEMO_SERVICE_IPS),
    });
    mesh.step(`CA for ${TD} created; root fingerprint ${init.fingerprint}`);
    const store = openCaStore(join(caDir, FILES.db));
    // Join tokens go to 0600 files, never on a command line (any local user reads those).
    const tokenFile = async (id: string, file: string): Promise<string> => {
      const t = newJoinToken();
      const now = Date.now();
      createPrivateFile(file, `${t.token}\n`);
      await store.createToken(
        { hash: t.hash, identity: id, createdAt: now, expiresAt: now + 15 * 60_000 },
        now,
      );
      return file;
    };
    // The dashboard's browser certificate is a local web certificate, not the mesh CA's.
    const dash = makeLocalWebCertificate(join(dir, 'dashboard'), Date.now(), 7 * 24 * 3600_000);
    // A TPM device through swtpm when it is installed; the policy then trusts its TEST maker.
    const tpm = await demoTpm(dir, mesh);
    const policyArgs = tpm ? ['--attestation-policy', tpm.policyFile] : [];
    const caUrl = `https://127.0.0.1:${ports.ca}`;
    // The CA reports its own events to the SIEM; they wait in its spool until the SIEM is up.
    await mesh.start(
      'ca',
      [
        'ca',
        'serve',
        '--data',
        caDir,
        '--listen',
        `127.0.0.1:${ports.ca}`,
        '--siem',
        `https://127.0.0.1:${ports.siem}`,
        ...policyArgs,
      ],
      /root fingerprint/,
    );
    mesh.step(`CA serving on ${caUrl} (log: ${join(dir, 'ca.log')})`);
    const siemUrl = `https://127.0.0.1:${ports.siem}`;
    const siemDir = join(dir, 'siem');
    await mesh.start(
      'siem',
      [
        'siem',
        'serve',
        '--data',
        siemDir,
        '--listen',
        `127.0.0.1:${ports.siem}`,
        '--ca',
        caUrl,
        '--fingerprint',
        init.fingerprint,
        '--token-file',
        await tokenFile(`spiffe://${TD}/svc/siem`, join(dir, 'siem.token')),
        '--dashboard',
        `127.0.0.1:${ports.dashboard}`,
        '--dashboard-cert',
        dash.certFile,
        '--dashboard-key',
        dash.keyFile,
      ],
      /dashboard on/,
    );
    mesh.step(`SIEM enrolled as spiffe://${TD}/svc/siem with a join token, serving on ${siemUrl}`);
    const dashUrl = `https://127.0.0.1:${ports.dashboard}`;
    const password = randomBytes(12).toString('base64url');
    const users = openDashboardDb(siemDir);
    try {
      await new UserStore(users).add('analyst', 'analyst', password, Date.now());
    } finally {
      users.close();
    }
    const role = await dashboardLogin(ports.dashboard, dash.rootPem, 'analyst', password);
    mesh.step(
      `analysts' dashboard on ${dashUrl}: its certificate (localhost, 127.0.0.1) verified against the demo's local web root; login as analyst (${role}) OK`,
    );

    // ---- the edge: three agents in front of three local apps ----
    const nodes = [1, 2, 3].map((i) => `spiffe://${TD}/node/n${i}`);
    for (let i = 0; i < 3; i++) {
      await mesh.echoApp(ports.apps[i] as number);
      const name = `n${i + 1}`;
      const cfg = join(dir, `${name}.yaml`);
      writeFileSync(
        cfg,
        agentConfig({
          dir: join(dir, name),
          id: nodes[i] as string,
          tokenFile: await tokenFile(nodes[i] as string, join(dir, `${name}.token`)),
          caUrl,
          fp: init.fingerprint,
          siemUrl,
          inbound: ports.inbound[i] as number,
          app: ports.apps[i] as number,
          admin: ports.admin[i] as number,
          ...(i === 2
            ? { outbound: { listen: ports.outbound, connect: ports.inbound[0], expect: nodes[0] as string } }
            : {}),
        }),
      );
    }
    // Agents log to stderr; readiness is their admin /healthz.
    for (let i = 0; i < 3; i++)
      void mesh
        .start(`n${i + 1}`, ['agent', '--config', join(dir, `n${i + 1}.yaml`)], /$^/)
        .catch(() => undefined);
    await waitFor(
      async () => (await Promise.all(ports.admin.map((p) => healthy(p)))).every(Boolean),
      60_000,
      'agents healthy',
    );
    mesh.step(
      `3 agents enrolled and listening: mTLS on 127.0.0.1:${ports.inbound.join(', :')} (admin /metrics on :${ports.admin.join(', :')})`,
    );

    // ---- devices with a simulated PUF, provisioned at "manufacture", enrolled in the field ----
    const devices: LoadedIdentity[] = [];
    for (let i = 1; i <= 4; i++) {
      const id = `spiffe://${TD}/device/d${i}`;
      const { json } = provisionPuf({ id, puf: openPuf(`sim:demo-device-${i}`) });
      await store.transaction((tx) => importPufRecord(tx, json, { trustDomain: TD }));
      await enroll({
        ca: caUrl,
        fingerprint: init.fingerprint,
        id,
        prover: createPufProver({ puf: `sim:demo-device-${i},ber=0.12`, id }),
        out: join(dir, `d${i}`),
      });
      devices.push(loadIdentity(join(dir, `d${i}`)));
    }
    await store.close();
    mesh.step('4 devices enrolled with PUF evidence (fuzzy extractor at 12 % bit errors)');
    if (tpm) {
      const id = `spiffe://${TD}/device/t1`;
      const prover = createTpmProver({ tcti: tpm.swtpm.tcti, ek: 'ecc', ak: 'ecc' });
      try {
        await enroll({ ca: caUrl, fingerprint: init.fingerprint, id, prover, out: join(dir, 't1') });
      } finally {
        await prover.close?.();
      }
      mesh.step(
        `device t1 enrolled with TPM evidence (swtpm: EK certificate from its TEST maker, credential activation, quote over golden PCRs)`,
      );
    }
    const admin = loadIdentity(join(caDir, 'admin'));
    const d1 = devices[0] as LoadedIdentity;

    // ---- normal traffic ----
    const live = await mesh.tlsConnect(d1, ports.inbound[0], '127.0.0.1');
    let cutAt = 0;
    live.on('close', () => (cutAt = Date.now()));
    const keepAlive = setInterval(() => live.writable && live.write('ping\n'), 250);
    mesh.step(`device d1 (serial ${d1.serial}) holds a live mTLS connection to n1 from 127.0.0.1`);
    await outboundRoundTrip(ports.outbound);
    mesh.step('n3 → n1 over the outbound sidecar: plain TCP on loopback, mTLS between agents: OK');

    // ---- the attack ----
    const seen = { alerts: new Set<string>(), decisions: new Set<string>(), acks: new Map<string, number>() };
    const watch = setInterval(() => void poll(mesh, siemUrl, admin, seen), 50);
    const attackAt = Date.now();
    mesh.step(
      'ATTACK 1: a clone of d1’s key and certificate connects to n2 from a second address, 127.0.0.2',
    );
    const clone = await mesh.tlsConnect(d1, ports.inbound[1], '127.0.0.2').catch(() => undefined);
    await waitFor(async () => cutAt > 0, 20_000, 'the live connection of the cloned credential to be cut');
    mesh.step(`d1’s live connection to n1 was cut, ${cutAt - attackAt} ms after the clone connected`);
    clone?.destroy();
    clearInterval(keepAlive);

    mesh.step('ATTACK 2: a rogue host at 127.0.0.3 scans both nodes with TLS handshakes and no certificate');
    for (let i = 0; i < 30; i++) await probe(ports.inbound[i % 2] as number, '127.0.0.3');
    await waitFor(
      async () => seen.decisions.size >= 2 && nodes.every((n) => (seen.acks.get(n) ?? 0) >= 2),
      20_000,
      'every agent to apply the decision against the scanner',
    );
    const d2 = devices[1] as LoadedIdentity;
    const fromScanner = await mesh.tlsConnect(d2, ports.inbound[0], '127.0.0.3').then(
      (s) => (s.destroy(), 'accepted'),
      () => 'refused',
    );
    const fromHome = await mesh.tlsConnect(d2, ports.inbound[0], '127.0.0.1').then(
      (s) => (s.destroy(), 'accepted'),
      () => 'refused',
    );
    mesh.step(
      `a valid device credential (d2) is now ${fromScanner} from 127.0.0.3 and ${fromHome} from 127.0.0.1`,
    );
    clearInterval(watch);
    await poll(mesh, siemUrl, admin, seen);

    out('');
    out('The mesh is running. Look further:');
    out(`  logs and state:   ${dir}`);
    out(`  dashboard:        ${dashUrl}  user analyst, password ${password}`);
    out(
      `                    (the browser must trust the demo's local web root ${dash.rootFile}, which vouches for localhost and the loopback addresses only; or accept the warning)`,
    );
    out(
      `  SIEM analyst API: curl --cacert ${join(caDir, 'admin', 'bundle.pem')} --cert ${join(caDir, 'admin', 'cert.pem')} --key ${join(caDir, 'admin', 'key.pem')} ${siemUrl}/v1/decisions`,
    );
    out(`  agent metrics:    curl http://127.0.0.1:${ports.admin[0]}/metrics`);
    out(
      `  CRL:              curl -s --cacert ${join(caDir, FILES.rootCert)} ${caUrl}/v1/crl | openssl crl -inform DER -noout -text`,
    );
    out(`  audit chain:      node ${EDGEWARD} ca audit verify --data ${caDir}`);
    if (a.once === true) return 0;
    out('Ctrl-C stops it.');
    await new Promise<void>((r) => {
      process.once('SIGINT', r);
      process.once('SIGTERM', r);
    });
    return 0;
  } finally {
    await stopAll();
  }
}

/**
 * swtpm with a TEST manufacturer when swtpm, tpm2-tools and openssl are installed (the demo needs
 * no system package: without them it says so and goes on with PUF devices only), and the
 * attestation policy: t1 by TPM with the golden PCRs read from it, other devices by PUF, nodes
 * and services by join token.
 */
async function demoTpm(dir: string, mesh: Mesh): Promise<{ swtpm: Swtpm; policyFile: string } | undefined> {
  const missing = ['swtpm', 'swtpm_setup', 'tpm2_createek', 'openssl'].filter(
    (t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0,
  );
  if (missing.length > 0) {
    mesh.step(
      `no TPM device: ${missing.join(', ')} not installed (apt-get install swtpm swtpm-tools tpm2-tools openssl)`,
    );
    return undefined;
  }
  const maker = await createTestManufacturer('Edgeward DEMO TPM Manufacturer', join(dir, 'tpm-maker'));
  const swtpm = await startSwtpm(maker, dir);
  mesh.onStop(() => swtpm.stop());
  const golden = await readReferencePcrs({ tcti: swtpm.tcti });
  const policyFile = join(dir, 'attestation-policy.yaml');
  writeFileSync(
    policyFile,
    policyTrustingMaker(maker, [
      { pattern: `spiffe://${TD}/device/t1`, methods: ['tpm'], pcrs: golden },
      { pattern: `spiffe://${TD}/device/*`, methods: ['puf'] },
      { pattern: `spiffe://${TD}/node/*`, methods: ['token'] },
      { pattern: `spiffe://${TD}/svc/*`, methods: ['token'] },
    ]),
  );
  mesh.step(
    `swtpm TPM on 127.0.0.1:${swtpm.port}, EK certificates from a TEST maker; attestation policy ${policyFile}`,
  );
  return { swtpm, policyFile };
}

/** Logs in to the dashboard as a browser would: TLS checked for the host name against the root. */
function dashboardLogin(port: number, rootPem: string, name: string, password: string): Promise<string> {
  return new Promise((r, j) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        path: '/api/login',
        method: 'POST',
        ca: rootPem,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString();
          if (res.statusCode !== 200)
            return j(new Error(`dashboard login answered ${res.statusCode}: ${body}`));
          r(String((JSON.parse(body) as { role?: unknown }).role));
        });
      },
    );
    req.on('error', j);
    req.end(JSON.stringify({ name, password }));
  });
}

async function poll(
  mesh: Mesh,
  siemUrl: string,
  admin: LoadedIdentity,
  seen: { alerts: Set<string>; decisions: Set<string>; acks: Map<string, number> },
): Promise<void> {
  try {
    const { alerts } = await siemGet<{ alerts: AlertView[] }>(`${siemUrl}/v1/alerts?limit=50`, admin);
    for (const al of [...alerts].reverse()) {
      if (seen.alerts.has(al.id) || al.type === 'detection') continue;
      seen.alerts.add(al.id);
      mesh.step(
        `ALERT [${al.level}] ${al.title} (${Object.entries(al.groupBy)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ')})`,
      );
    }
    const d = await siemGet<{ revision: number; active: DecisionView[] }>(`${siemUrl}/v1/decisions`, admin);
    for (const x of d.active) {
      if (seen.decisions.has(x.id)) continue;
      seen.decisions.add(x.id);
      mesh.step(
        `DECISION ${x.action} ${x.scope.type} ${x.scope.value} (revision ${d.revision}): ${x.reason}`,
      );
    }
    const ag = await siemGet<{ agents: Array<{ identity: string; acked: number | null; lagMs: number }> }>(
      `${siemUrl}/v1/agents`,
      admin,
    );
    for (const x of ag.agents) {
      if (x.acked === null || (seen.acks.get(x.identity) ?? 0) >= x.acked) continue;
      seen.acks.set(x.identity, x.acked);
      mesh.step(`ACK ${x.identity} applied revision ${x.acked}`);
    }
  } catch {
    // The next poll tries again.
  }
}

async function healthy(port: number): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/healthz`);
    return r.ok;
  } catch {
    return false;
  }
}

async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** One plain TCP round trip through n3's outbound listener to n1's app. */
function outboundRoundTrip(port: number): Promise<void> {
  return new Promise((r, j) => {
    const s = netConnect({ host: '127.0.0.1', port }, () => s.write('via outbound\n'));
    s.once('data', () => {
      s.destroy();
      r();
    });
    s.once('error', j);
    setTimeout(() => j(new Error('outbound round trip timed out')), 10_000).unref();
  });
}

/** A TLS handshake without a client certificate from `localAddress`: how far did it get? */
function probe(port: number, localAddress: string): Promise<'refused-handshake' | 'closed-before-handshake'> {
  return new Promise((r) => {
    let handshook = false;
    const s = connect({
      socket: tcpFrom(port, localAddress),
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    });
    s.once('secureConnect', () => {
      handshook = true;
      s.write('x');
    });
    const done = (): void => {
      s.destroy();
      r(handshook ? 'refused-handshake' : 'closed-before-handshake');
    };
    s.once('error', done);
    s.once('close', done);
    setTimeout(done, 3000).unref();
  });
}
