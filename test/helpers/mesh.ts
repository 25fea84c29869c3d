// A whole mesh as real processes for end-to-end tests: `ca init` and `ca serve --siem`, `siem
// serve`, and agents from YAML configs, each spawned from dist/ as `edgeward` runs in production;
// identities for the test itself (devices, nodes, the admin) enrolled over HTTPS with join tokens.
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:https';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { FILES } from '../../ca/authority.js';
import { serviceId } from '../../common/identity.js';
import { loadIdentity, type LoadedIdentity } from '../../common/identity-dir.js';
import { EDGEWARD, edgeward } from './cli.js';
import { rawRequest, type RawResult } from './https.js';
import { freePortRange } from './ports.js';
import { tempDir } from './tmp.js';

export const MESH_TD = 'factory.example';

/** One spawned `edgeward` process with its output so far. */
export interface MeshProcess {
  readonly name: string;
  readonly proc: ChildProcess;
  output(): string;
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

export interface Mesh {
  readonly dir: string;
  readonly trustDomain: string;
  readonly caDir: string;
  readonly caUrl: string;
  readonly siemUrl: string;
  /** The analysts' dashboard (with `dashboard: true`). */
  readonly dashboardUrl: string | undefined;
  readonly fingerprint: string;
  readonly rootPem: string;
  readonly admin: LoadedIdentity;
  readonly ca: MeshProcess;
  readonly siem: MeshProcess;
  readonly agents: readonly MeshAgent[];
  /** A one-time join token for the identity (`edgeward ca token`, printed to stdout). */
  token(id: string): string;
  /** Enrolls spiffe://TD/KIND/NAME with a join token into its own folder (`dir`) and loads it. */
  enroll(path: string): Promise<LoadedIdentity & { readonly dir: string }>;
  /** Adds a dashboard user (`edgeward siem user add`, the password from the environment). */
  addUser(name: string, role: 'viewer' | 'analyst' | 'admin', password: string): void;
  /** An HTTPS request to the SIEM or the CA as `who` (an mTLS identity), trusting the mesh root. */
  call(
    url: string,
    who: LoadedIdentity | undefined,
    o?: { method?: string; body?: unknown },
  ): Promise<RawResult>;
  /** Posts events to the SIEM as `who`. */
  report(who: LoadedIdentity, events: readonly Record<string, unknown>[]): Promise<RawResult>;
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
  /** Restarts an agent's process with the same configuration. */
  restartAgent(a: MeshAgent): Promise<void>;
  stop(): Promise<void>;
}

export interface MeshStream {
  readonly status: number;
  /** The refusal's JSON body (status other than 200). */
  readonly json: Record<string, unknown> | undefined;
  close(): void;
}

export interface MeshOptions {
  readonly agents?: readonly MeshAgentSpec[];
  /** Serve the analysts' dashboard too (`siem serve --dashboard`). */
  readonly dashboard?: boolean;
  /** Extra arguments for `ca serve` and `siem serve`. */
  readonly caArgs?: readonly string[];
  readonly siemArgs?: readonly string[];
  readonly env?: Record<string, string>;
}

const READY = {
  ca: /root fingerprint/,
  siem: /listening on https:/,
};

function spawnEdgeward(
  name: string,
  args: readonly string[],
  env: Record<string, string>,
  readyOn?: RegExp,
): Promise<MeshProcess> {
  const proc = spawn(process.execPath, [EDGEWARD, ...args], {
    env: { ...process.env, EDGEWARD_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const onData = (c: Buffer): void => {
    out += c.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  const mp: MeshProcess = {
    name,
    proc,
    output: () => out,
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

async function waitUntil(what: string, fn: () => Promise<boolean>, ms = 60_000): Promise<void> {
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
  const caDir = join(dir, 'ca');
  const specs = o.agents ?? [];
  // CA, SIEM, the dashboard, then per agent: inbound, admin and its echo app.
  const base = await freePortRange(3 + specs.length * 3);
  const dashboardPort = base + 2;
  const caUrl = `https://127.0.0.1:${base}`;
  const siemUrl = `https://127.0.0.1:${base + 1}`;
  const init = edgeward(['ca', 'init', '--data', caDir, '--trust-domain', td], env);
  if (init.status !== 0) throw new Error(`ca init failed: ${init.stdout}${init.stderr}`);
  const fingerprint = /([0-9a-f]{64})/i.exec(init.stdout)?.[1];
  if (fingerprint === undefined) throw new Error(`ca init printed no fingerprint: ${init.stdout}`);
  const token = (id: string): string => {
    const r = edgeward(['ca', 'token', '--data', caDir, '--id', id], env);
    const t = /(ewt_[A-Za-z0-9_-]+)/.exec(r.stdout)?.[1];
    if (r.status !== 0 || t === undefined) throw new Error(`ca token failed: ${r.stdout}${r.stderr}`);
    return t;
  };

  const procs: MeshProcess[] = [];
  const track = (p: MeshProcess): MeshProcess => (procs.push(p), p);
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map((p) => p.kill()));
  };
  afterAll(stop);

  const ca = track(
    await spawnEdgeward(
      'ca',
      [
        'ca',
        'serve',
        '--data',
        caDir,
        '--listen',
        `127.0.0.1:${base}`,
        '--siem',
        siemUrl,
        ...(o.caArgs ?? []),
      ],
      env,
      READY.ca,
    ),
  );
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
        '--token',
        token(serviceId(td, 'siem')),
        ...(o.dashboard === true ? ['--dashboard', `127.0.0.1:${dashboardPort}`] : []),
        ...(o.siemArgs ?? []),
      ],
      env,
      READY.siem,
    ),
  );
  const admin = loadIdentity(join(caDir, 'admin'));
  const rootPem = readFileSync(join(caDir, FILES.rootCert), 'utf8');

  const { createServer } = await import('node:net');
  const agents: MeshAgent[] = [];
  for (const [i, spec] of specs.entries()) {
    const inboundPort = base + 3 + i * 3;
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
        `enroll: { attest: token, token: ${token(identity)} }`,
        `siem: { url: ${siemUrl}, flushInterval: 50ms }`,
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
      process: track(await spawnEdgeward(`agent ${spec.name}`, ['agent', '--config', config], env)),
      async admin(path) {
        const r = await fetch(`http://127.0.0.1:${adminPort}${path}`);
        return { status: r.status, text: await r.text() };
      },
    };
    agents.push(agent);
  }
  const healthy = async (a: MeshAgent): Promise<boolean> =>
    a.admin('/healthz').then(
      (r) => r.status === 200,
      () => false,
    );
  await waitUntil('agents healthy', async () => (await Promise.all(agents.map(healthy))).every(Boolean));

  const call: Mesh['call'] = (url, who, r = {}) =>
    rawRequest(url, {
      ca: rootPem,
      ...(r.method !== undefined ? { method: r.method } : r.body !== undefined ? { method: 'POST' } : {}),
      ...(r.body !== undefined ? { body: JSON.stringify(r.body) } : {}),
      ...(who ? { key: who.keyPem, cert: who.certPem } : {}),
    });

  return {
    dir,
    trustDomain: td,
    caDir,
    caUrl,
    siemUrl,
    dashboardUrl: o.dashboard === true ? `https://127.0.0.1:${dashboardPort}` : undefined,
    fingerprint,
    rootPem,
    admin,
    ca,
    siem,
    agents,
    token,
    async enroll(path) {
      const id = `spiffe://${td}/${path}`;
      const out = join(dir, 'ids', path.replace(/\//g, '_'));
      const r = edgeward(
        [
          'enroll',
          '--ca',
          caUrl,
          '--fingerprint',
          fingerprint,
          '--id',
          id,
          '--attest',
          'token',
          '--token',
          token(id),
          '--out',
          out,
        ],
        env,
      );
      if (r.status !== 0) throw new Error(`enroll ${id} failed: ${r.stdout}${r.stderr}`);
      return { ...loadIdentity(out), dir: out };
    },
    addUser(name, role, password) {
      const r = edgeward(
        ['siem', 'user', 'add', '--data', join(dir, 'siem'), '--name', name, '--role', role],
        {
          ...env,
          EDGEWARD_PASSWORD: password,
        },
      );
      if (r.status !== 0) throw new Error(`siem user add failed: ${r.stdout}${r.stderr}`);
    },
    call,
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
            res.resume();
            return resolve({ status, json: undefined, close });
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
            resolve({ status, json, close });
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
    async restartAgent(a) {
      await a.process.kill();
      a.process = track(await spawnEdgeward(`agent ${a.name}`, ['agent', '--config', a.config], env));
      await waitUntil(`agent ${a.name} healthy`, () => healthy(a));
    },
    stop,
  };
}
