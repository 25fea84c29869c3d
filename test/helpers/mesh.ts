// A whole mesh as real processes for end-to-end tests: `ca init` and `ca serve --siem`, `siem
// serve`, and agents from YAML configs, each spawned from dist/ as `edgeward` runs in production;
// identities for the test itself (devices, nodes, the admin) enrolled over HTTPS with join tokens.
// Join tokens travel as production should carry them: in 0600 files, never on a command line.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { dirname, join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { afterAll } from 'vitest';
import { FILES } from '../../ca/index.js';
import { serviceId } from '../../common/identity.js';
import { loadIdentity, type LoadedIdentity } from '../../common/identity-dir.js';
import { commandLine, edgeward, type CliResult, type SpawnOptions } from './cli.js';
import { rawRequest, type RawResult } from './https.js';
import { freePortRange } from './ports.js';
import { tempDir } from './tmp.js';

export const MESH_TD = 'factory.example';

/** One spawned `edgeward` process with its output so far. */
export interface MeshProcess {
  readonly name: string;
  readonly proc: ChildProcess;
  output(): string;
  /** Its stderr alone so far (the log: JSON lines). */
  stderr(): string;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
}

export interface MeshAgentSpec {
  /** Node name: the identity is spiffe://TD/node/NAME. */
  readonly name: string;
  /** Allow patterns of its one inbound listener (default: every device and node). */
  readonly allow?: readonly string[];
  /** YAML lines appended to the generated configuration. */
  readonly extraYaml?: readonly string[];
  /** More keys of the `siem` section, as YAML flow entries (`nats: { urls: [...] }`). */
  readonly siemYaml?: string;
  /** SIEM URLs listed before the mesh's SIEM in `siem.urls` (replicas that are down). */
  readonly siemUrlsBefore?: readonly string[];
}

export interface MeshAgent {
  readonly name: string;
  readonly identity: string;
  readonly config: string;
  readonly dir: string;
  /** The inbound mTLS listener, forwarding to an echo app inside the test process. */
  readonly inboundPort: number;
  readonly adminPort: number;
  process: MeshProcess;
  /** GET on the admin listener (healthz, metrics). */
  admin(path: string): Promise<{ status: number; text: string }>;
}

/** An identity the test enrolled, with the folder it lives in (for `edgeward renew --dir`). */
export type MeshIdentity = LoadedIdentity & { readonly dir: string };

/** An analyst's logged-in dashboard session (cookie and CSRF token), for the dashboard's API. */
export interface DashboardSession {
  readonly user: string;
  /** A request to the dashboard's API with the session cookie, and the CSRF token on changes. */
  call(path: string, o?: { method?: string; body?: unknown }): Promise<RawResult>;
}

export interface MeshDashboard {
  readonly url: string;
  /** Adds a user (`edgeward siem user add`, password from the environment) and logs it in. */
  login(role: 'viewer' | 'analyst' | 'admin'): Promise<DashboardSession>;
}

export interface Mesh {
  readonly dir: string;
  readonly trustDomain: string;
  readonly caDir: string;
  readonly caUrl: string;
  readonly siemUrl: string;
  readonly fingerprint: string;
  readonly rootPem: string;
  readonly admin: LoadedIdentity;
  /** The running `ca serve` (replaced by restartCa). */
  ca: MeshProcess;
  readonly siem: MeshProcess;
  readonly agents: readonly MeshAgent[];
  /** The dashboard, when started with `dashboard: true`. */
  readonly dashboard: MeshDashboard | undefined;
  /** A one-time join token for the identity (`edgeward ca token`, printed to stdout). */
  token(id: string): string;
  /** The same in a new 0600 file (`edgeward ca token --out FILE`); returns the file. */
  tokenFile(id: string): string;
  /** Enrolls spiffe://TD/KIND/NAME with a join token into DIR/NAME and loads it. */
  enroll(path: string): Promise<MeshIdentity>;
  /**
   * A device with a simulated PUF (`sim:SEED`): `puf provision`, `ca puf import`, then `enroll
   * --attest puf`, each a real process. Refused enrollments throw with the command's output.
   */
  enrollPuf(path: string, seed: string): Promise<MeshIdentity>;
  /**
   * An mTLS connection as `who` to an agent's inbound listener (from `localAddress`, another
   * loopback address playing another host), resolved once the echo app answered through it;
   * rejected if the agent refuses or cuts it first.
   */
  connect(
    agent: MeshAgent,
    who: Pick<LoadedIdentity, 'keyPem' | 'certPem' | 'bundlePem'>,
    localAddress?: string,
  ): Promise<TLSSocket>;
  /** Runs `edgeward ARGS` with the mesh's environment (for commands the test checks itself). */
  cli(args: string[]): CliResult;
  /** Adds a dashboard user (`edgeward siem user add`, the password from the environment). */
  addUser(name: string, role: 'viewer' | 'analyst' | 'admin', password: string): void;
  /** An HTTPS request to the SIEM or the CA as `who` (an mTLS identity), trusting the mesh root. */
  call(
    url: string,
    who: Pick<LoadedIdentity, 'keyPem' | 'certPem'> | undefined,
    o?: { method?: string; body?: unknown; localAddress?: string },
  ): Promise<RawResult>;
  /** The decision revision the CA follows (its /healthz), or -1 while it holds none. */
  caRevision(): Promise<number>;
  /** Posts events to the SIEM as `who`. */
  report(who: LoadedIdentity, events: readonly Record<string, unknown>[]): Promise<RawResult>;
  /**
   * Opens an mTLS connection as `who` to the agent's inbound listener, sends a line and resolves
   * with the echo from the app behind it; rejects when the agent refuses or cuts the connection.
   */
  echo(a: MeshAgent, who: LoadedIdentity, text?: string): Promise<string>;
  /**
   * Opens the SIEM's decision stream as `who`: resolves with the status once the answer starts
   * (and the error body when refused); an open stream stays open until `close()`.
   */
  openStream(who: LoadedIdentity): Promise<MeshStream>;
  /** The SIEM's active decisions, read with the admin identity. */
  decisions(): Promise<{
    revision: number;
    active: Array<{ id: string; scope: { type: string; value: string } }>;
  }>;
  /** Kills `ca serve` (if it runs) and starts it again with the same arguments; resolves once it serves. */
  restartCa(): Promise<void>;
  /**
   * Restarts an agent's process with the same configuration and waits until /healthz says 200,
   * or, with `healthy: false`, until it answers at all (an agent that fails closed says 503).
   */
  restartAgent(a: MeshAgent, o?: { healthy?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

export interface MeshStream {
  readonly status: number;
  /** The refusal's JSON body (status other than 200). */
  readonly json: Record<string, unknown> | undefined;
  /** What the stream carried so far (status 200). */
  text(): string;
  /** Resolves with everything the stream carried once the SIEM ends it (status 200). */
  readonly ended: Promise<string>;
  close(): void;
}

export interface MeshOptions {
  readonly agents?: readonly MeshAgentSpec[];
  /** Extra arguments for `ca init`; default `--ip 127.0.0.0/8,::1`, the demo's service names. */
  readonly initArgs?: readonly string[];
  /** Extra arguments for `ca serve` and `siem serve`. */
  readonly caArgs?: readonly string[];
  readonly siemArgs?: readonly string[];
  readonly env?: Record<string, string>;
  /** Every process of the mesh (ca init, ca token, servers, agents, enroll) runs under this umask. */
  readonly umask?: number;
  /** Also serve the dashboard (`siem serve --dashboard`, with the SIEM's own certificate). */
  readonly dashboard?: boolean;
}

const READY = {
  ca: /root fingerprint/,
  siem: /listening on https:/,
};

function spawnEdgeward(
  name: string,
  args: readonly string[],
  env: Record<string, string>,
  so: SpawnOptions,
  readyOn?: RegExp,
): Promise<MeshProcess> {
  const [cmd, argv] = commandLine(args, so);
  const proc = spawn(cmd, argv, {
    env: { ...process.env, EDGEWARD_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const onData = (c: Buffer): void => {
    out += c.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  let err = '';
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  proc.stderr.on('data', (c: Buffer) => {
    err += c.toString();
    if (err.length > 200_000) err = err.slice(-100_000);
  });
  const mp: MeshProcess = {
    name,
    proc,
    output: () => out,
    stderr: () => err,
    kill: () =>
      new Promise<void>((r) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return r();
        proc.once('exit', () => r());
        proc.kill('SIGKILL');
      }),
  };
  if (readyOn === undefined) return Promise.resolve(mp);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in 60 s:\n${out}`)), 60_000);
    const check = (): void => {
      if (!readyOn.test(out)) return;
      clearTimeout(timer);
      proc.stdout.off('data', check);
      proc.stderr.off('data', check);
      resolve(mp);
    };
    proc.stdout.on('data', check);
    proc.stderr.on('data', check);
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}):\n${out}`));
    });
  });
}

/** Polls `fn` every 50 ms until it is true; throws after `ms`. */
export async function waitUntil(what: string, fn: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts the mesh; it is stopped after the test file (or by `stop()`). */
export async function startMesh(o: MeshOptions = {}): Promise<Mesh> {
  const td = MESH_TD;
  const dir = tempDir('edgeward-mesh-');
  const env = o.env ?? {};
  const so: SpawnOptions = o.umask === undefined ? {} : { umask: o.umask };
  const caDir = join(dir, 'ca');
  const tokensDir = join(dir, 'tokens');
  mkdirSync(tokensDir, { mode: 0o700 });
  const specs = o.agents ?? [];
  // CA, SIEM, then per agent: inbound, admin and its echo app; then the dashboard.
  const base = await freePortRange(2 + specs.length * 3 + (o.dashboard === true ? 1 : 0));
  const dashboardPort = base + 2 + specs.length * 3;
  const caUrl = `https://127.0.0.1:${base}`;
  const siemUrl = `https://127.0.0.1:${base + 1}`;
  const init = edgeward(
    ['ca', 'init', '--data', caDir, '--trust-domain', td, ...(o.initArgs ?? ['--ip', '127.0.0.0/8,::1'])],
    env,
    so,
  );
  if (init.status !== 0) throw new Error(`ca init failed: ${init.stdout}${init.stderr}`);
  const fingerprint = /([0-9a-f]{64})/i.exec(init.stdout)?.[1];
  if (fingerprint === undefined) throw new Error(`ca init printed no fingerprint: ${init.stdout}`);
  const token = (id: string): string => {
    const r = edgeward(['ca', 'token', '--data', caDir, '--id', id], env, so);
    const t = /(ewt_[A-Za-z0-9_-]+)/.exec(r.stdout)?.[1];
    if (r.status !== 0 || t === undefined) throw new Error(`ca token failed: ${r.stdout}${r.stderr}`);
    return t;
  };
  const tokenFile = (id: string): string => {
    const file = join(tokensDir, `${randomUUID()}.token`);
    const r = edgeward(['ca', 'token', '--data', caDir, '--id', id, '--out', file], env, so);
    if (r.status !== 0) throw new Error(`ca token --out failed: ${r.stdout}${r.stderr}`);
    return file;
  };

  const procs: MeshProcess[] = [];
  const track = (p: MeshProcess): MeshProcess => (procs.push(p), p);
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map((p) => p.kill()));
  };
  afterAll(stop);

  const caServeArgs = [
    'ca',
    'serve',
    '--data',
    caDir,
    '--listen',
    `127.0.0.1:${base}`,
    '--siem',
    siemUrl,
    ...(o.caArgs ?? []),
  ];
  const ca = track(await spawnEdgeward('ca', caServeArgs, env, so, READY.ca));
  const siem = track(
    await spawnEdgeward(
      'siem',
      [
        'siem',
        'serve',
        '--data',
        join(dir, 'siem'),
        '--listen',
        `127.0.0.1:${base + 1}`,
        '--ca',
        caUrl,
        '--fingerprint',
        fingerprint,
        '--token-file',
        tokenFile(serviceId(td, 'siem')),
        ...(o.dashboard === true ? ['--dashboard', `127.0.0.1:${dashboardPort}`] : []),
        ...(o.siemArgs ?? []),
      ],
      env,
      so,
      READY.siem,
    ),
  );
  const admin = loadIdentity(join(caDir, 'admin'));
  const rootPem = readFileSync(join(caDir, FILES.rootCert), 'utf8');

  const { createServer } = await import('node:net');
  const agents: MeshAgent[] = [];
  for (const [i, spec] of specs.entries()) {
    const inboundPort = base + 2 + i * 3;
    const adminPort = inboundPort + 1;
    const appPort = inboundPort + 2;
    const app = createServer((s) => s.on('data', (d) => s.write(d)).on('error', () => undefined));
    await new Promise<void>((r, j) => app.once('error', j).listen(appPort, '127.0.0.1', () => r()));
    afterAll(() => void app.close());
    const identity = `spiffe://${td}/node/${spec.name}`;
    const agentDir = join(dir, spec.name);
    const config = join(dir, `${spec.name}.yaml`);
    const allow = spec.allow ?? [`spiffe://${td}/device/*`, `spiffe://${td}/node/*`];
    writeFileSync(
      config,
      [
        `identity: { dir: ${JSON.stringify(agentDir)}, id: ${identity} }`,
        `ca: { url: ${caUrl}, fingerprint: "${fingerprint}", crlInterval: 1s }`,
        `enroll: { attest: token, tokenFile: ${JSON.stringify(tokenFile(identity))} }`,
        spec.siemUrlsBefore === undefined
          ? `siem: { url: ${siemUrl}, flushInterval: 50ms${spec.siemYaml !== undefined ? `, ${spec.siemYaml}` : ''} }`
          : `siem: { urls: ${JSON.stringify([...spec.siemUrlsBefore, siemUrl])}, flushInterval: 50ms${spec.siemYaml !== undefined ? `, ${spec.siemYaml}` : ''} }`,
        `admin: { listen: 127.0.0.1:${adminPort} }`,
        'inbound:',
        `  - { listen: 127.0.0.1:${inboundPort}, forward: 127.0.0.1:${appPort}, allow: ${JSON.stringify(allow)} }`,
        ...(spec.extraYaml ?? []),
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const agent: MeshAgent = {
      name: spec.name,
      identity,
      config,
      dir: agentDir,
      inboundPort,
      adminPort,
      process: track(await spawnEdgeward(`agent ${spec.name}`, ['agent', '--config', config], env, so)),
      async admin(path) {
        const r = await fetch(`http://127.0.0.1:${adminPort}${path}`);
        return { status: r.status, text: await r.text() };
      },
    };
    agents.push(agent);
  }
  const healthy = async (a: MeshAgent, anyStatus = false): Promise<boolean> =>
    a.admin('/healthz').then(
      (r) => anyStatus || r.status === 200,
      () => false,
    );
  await waitUntil('agents healthy', async () =>
    (await Promise.all(agents.map((a) => healthy(a)))).every(Boolean),
  );

  const call: Mesh['call'] = (url, who, r = {}) =>
    rawRequest(url, {
      ca: rootPem,
      ...(r.method !== undefined ? { method: r.method } : r.body !== undefined ? { method: 'POST' } : {}),
      ...(r.body !== undefined ? { body: JSON.stringify(r.body) } : {}),
      ...(who ? { key: who.keyPem, cert: who.certPem } : {}),
      ...(r.localAddress !== undefined ? { localAddress: r.localAddress } : {}),
    });
  const idDir = (path: string): string => join(dir, 'ids', path.replace(/\//g, '_'));
  const enrollWith = (path: string, attest: string[]): MeshIdentity => {
    const id = `spiffe://${td}/${path}`;
    const out = idDir(path);
    const r = edgeward(
      ['enroll', '--ca', caUrl, '--fingerprint', fingerprint, '--id', id, ...attest, '--out', out],
      env,
      so,
    );
    if (r.status !== 0) throw new Error(`enroll ${id} failed: ${r.stdout}${r.stderr}`);
    return Object.assign(loadIdentity(out), { dir: out });
  };

  const addUser: Mesh['addUser'] = (name, role, password) => {
    const r = edgeward(
      ['siem', 'user', 'add', '--data', join(dir, 'siem'), '--name', name, '--role', role],
      { ...env, EDGEWARD_PASSWORD: password },
      so,
    );
    if (r.status !== 0) throw new Error(`siem user add failed: ${r.stdout}${r.stderr}`);
  };
  let users = 0;
  const dashboard: MeshDashboard | undefined =
    o.dashboard !== true
      ? undefined
      : {
          url: `https://127.0.0.1:${dashboardPort}`,
          async login(role) {
            const name = `${role}${++users}`;
            const password = randomBytes(12).toString('hex');
            addUser(name, role, password);
            const url = `https://127.0.0.1:${dashboardPort}`;
            // The dashboard presents the SIEM's mesh certificate: trust the mesh root, skip the name.
            const r = await rawRequest(`${url}/api/login`, {
              method: 'POST',
              body: JSON.stringify({ name, password }),
            });
            const cookie = /^[^;]+/.exec(String(r.headers['set-cookie'] ?? ''))?.[0];
            const csrf = r.json?.['csrf'];
            if (r.status !== 200 || cookie === undefined || typeof csrf !== 'string')
              throw new Error(`dashboard login failed: ${r.status} ${r.body.toString()}`);
            return {
              user: name,
              call: (path, c = {}) => {
                const method = c.method ?? (c.body !== undefined ? 'POST' : 'GET');
                return rawRequest(`${url}${path}`, {
                  method,
                  headers: { cookie, ...(method === 'GET' ? {} : { 'x-csrf-token': csrf }) },
                  ...(c.body !== undefined ? { body: JSON.stringify(c.body) } : {}),
                });
              },
            };
          },
        };

  /** An mTLS connection through an agent's inbound sidecar, open once the app's echo came back. */
  const open = (
    agent: MeshAgent,
    who: Pick<LoadedIdentity, 'keyPem' | 'certPem' | 'bundlePem'>,
    localAddress?: string,
    text = 'ping',
  ) =>
    new Promise<{ socket: TLSSocket; echoed: string }>((resolve, reject) => {
      const s = tlsConnect({
        host: '127.0.0.1',
        port: agent.inboundPort,
        ...(localAddress !== undefined ? { localAddress } : {}),
        key: who.keyPem,
        cert: who.certPem,
        ca: who.bundlePem,
        minVersion: 'TLSv1.3',
        // Agents are known by their SPIFFE ID; the test trusts the port it started.
        checkServerIdentity: () => undefined,
      });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`no echo from ${agent.name} in 10 s`));
      }, 10_000);
      // TLS 1.3: the agent checks our certificate after our secureConnect; the echo proves it let us in.
      s.once('secureConnect', () => s.write(text));
      s.once('data', (d: Buffer) => {
        clearTimeout(timer);
        resolve({ socket: s, echoed: d.toString() });
      });
      // After the echo, errors (a cut) show as 'close' to the test; never as an unhandled error.
      s.on('error', (err: Error) => {
        clearTimeout(timer);
        reject(err);
      });
      s.once('close', () => {
        clearTimeout(timer);
        reject(new Error(`connection to ${agent.name} closed before the echo`));
      });
    });

  const mesh: Mesh = {
    dir,
    trustDomain: td,
    caDir,
    caUrl,
    siemUrl,
    fingerprint,
    rootPem,
    admin,
    ca,
    siem,
    agents,
    dashboard,
    token,
    tokenFile,
    enroll: async (path) =>
      enrollWith(path, ['--attest', 'token', '--token-file', tokenFile(`spiffe://${td}/${path}`)]),
    async enrollPuf(path, seed) {
      const id = `spiffe://${td}/${path}`;
      const record = `${idDir(path)}.puf.json`;
      mkdirSync(dirname(record), { recursive: true });
      for (const args of [
        ['puf', 'provision', '--id', id, '--puf', `sim:${seed}`, '--out', record],
        ['ca', 'puf', 'import', '--data', caDir, record],
      ]) {
        const r = edgeward(args, env, so);
        if (r.status !== 0) throw new Error(`${args.slice(0, 2).join(' ')} failed: ${r.stdout}${r.stderr}`);
      }
      return enrollWith(path, ['--attest', 'puf', '--puf', `sim:${seed}`]);
    },
    addUser,
    connect: async (agent, who, localAddress) => (await open(agent, who, localAddress)).socket,
    cli: (args) => edgeward(args, env, so),
    call,
    async caRevision() {
      const r = await call(`${caUrl}/healthz`, undefined);
      const siem = r.json?.['siem'] as { connected?: boolean; revision?: number } | undefined;
      return siem?.connected === true ? (siem.revision ?? -1) : -1;
    },
    async echo(a, who, text) {
      const { socket, echoed } = await open(a, who, undefined, text);
      socket.destroy();
      return echoed;
    },
    report: (who, events) => call(`${siemUrl}/v1/events`, who, { body: events }),
    openStream: (who) =>
      new Promise<MeshStream>((resolve, reject) => {
        const req = request(`${siemUrl}/v1/decisions/stream`, {
          ca: rootPem,
          key: who.keyPem,
          cert: who.certPem,
          checkServerIdentity: () => undefined,
        });
        req.on('response', (res) => {
          const status = res.statusCode ?? 0;
          const close = (): void => void req.destroy();
          if (status === 200) {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            const ended = new Promise<string>((done) => res.once('close', () => done(text)));
            return resolve({ status, json: undefined, text: () => text, ended, close });
          }
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            let json: Record<string, unknown> | undefined;
            try {
              json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
            } catch {
              json = undefined;
            }
            const body = Buffer.concat(chunks).toString('utf8');
            resolve({ status, json, text: () => body, ended: Promise.resolve(body), close });
          });
        });
        req.on('error', reject);
        req.end();
      }),
    async decisions() {
      const r = await call(`${siemUrl}/v1/decisions`, admin);
      if (r.status !== 200) throw new Error(`GET /v1/decisions: ${r.status} ${r.body.toString()}`);
      return r.json as unknown as Awaited<ReturnType<Mesh['decisions']>>;
    },
    async restartCa() {
      await mesh.ca.kill();
      mesh.ca = track(await spawnEdgeward('ca', caServeArgs, env, so, READY.ca));
    },
    async restartAgent(a, r = {}) {
      await a.process.kill();
      a.process = track(await spawnEdgeward(`agent ${a.name}`, ['agent', '--config', a.config], env, so));
      const any = r.healthy === false;
      await waitUntil(`agent ${a.name} ${any ? 'answering' : 'healthy'}`, () => healthy(a, any));
    },
    stop,
  };
  return mesh;
}
