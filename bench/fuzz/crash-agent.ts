// Crash suite for `edgeward agent`: the agent holds mTLS connections from a device to an echo app
// and follows a SIEM that keeps making decisions (so the agent keeps writing its decision store),
// and is killed with SIGKILL at a random point. After each kill it is started again cut off from
// the CA and the SIEM (their URLs at a closed port): it must come back on its stored decisions and
// CRL, verified ("stored", the CRL in force), at a revision no older than after the kill before,
// and enforce them on the first connections it takes (fail static): the quarantined device and
// the revoked certificate refused, the good device let through. Then it goes back online.
// Run: npm run build && node dist/bench/fuzz/crash-agent.js [kills=50]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { FILES } from '../../ca/index.js';
import { serviceId } from '../../common/identity.js';
import type { LoadedIdentity } from '../../common/identity-dir.js';
import { EDGEWARD, post, startBenchCa, tokenFileIn } from '../lib.js';
import { agentOf, serveSiem } from './crash-siem.js';
import { killCountArg } from './crash.js';

const TD = 'factory.example';
const HOLDERS = 4;

export interface AgentCrashResult {
  readonly kills: number;
  readonly echoes: number;
  readonly decisions: number;
  readonly revision: number;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Sends `text` over an mTLS connection through the agent: the echo, or null when it was refused. */
function echo(port: number, who: LoadedIdentity, text: string, holdMs = 0): Promise<string | null> {
  return new Promise((resolve) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      key: who.keyPem,
      cert: who.certPem,
      ca: who.bundlePem,
      minVersion: 'TLSv1.3',
      checkServerIdentity: () => undefined,
    });
    let got = '';
    const done = (v: string | null): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(null), 5000);
    s.once('secureConnect', () => s.write(text));
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.length >= text.length) {
        if (holdMs > 0) {
          clearTimeout(timer);
          setTimeout(() => done(got), holdMs);
        } else done(got);
      }
    });
    s.on('error', () => done(got.length >= text.length ? got : null));
    s.once('close', () => done(got.length >= text.length ? got : null));
  });
}

/** Resolves once something accepts TCP connections on the port. */
async function listening(port: number, proc: ChildProcess, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`the agent exited with ${proc.exitCode} before it listened`);
    const ok = await new Promise<boolean>((r) => {
      const c = netConnect(port, '127.0.0.1', () => {
        c.destroy();
        r(true);
      });
      c.on('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`the agent did not listen on ${port} in ${ms} ms`);
    await new Promise((w) => setTimeout(w, 10));
  }
}

interface Health {
  status: string;
  decisionRevision: number;
  decisions: { state: string; source: string | null };
  crl: { state: string };
}

async function health(adminPort: number): Promise<Health> {
  const r = await fetch(`http://127.0.0.1:${adminPort}/healthz`);
  return (await r.json()) as Health;
}

function startAgent(config: string): { proc: ChildProcess; output: () => string } {
  const proc = spawn(process.execPath, [EDGEWARD, 'agent', '--config', config], {
    env: { ...process.env, EDGEWARD_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-8000)));
  proc.stderr?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-8000)));
  return { proc, output: () => out };
}

async function kill(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await gone;
}

export async function crashAgent(
  kills: number,
  log: (s: string) => void = () => {},
): Promise<AgentCrashResult> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeward-crash-agent-'));
  const caData = join(dir, 'ca');
  const procs = new Set<ChildProcess>();
  const app = createServer((s) => s.on('data', (d) => s.write(d)).on('error', () => undefined));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
  const appPort = (app.address() as AddressInfo).port;
  const ca = await startBenchCa(caData, TD);
  try {
    const device = (name: string): Promise<LoadedIdentity> =>
      ca.enroll(`spiffe://${TD}/device/${name}`, join(dir, name));
    const good = await device('good');
    const bad = await device('bad');
    const revoked = await device('revoked');
    await ca.running.store.revokeSerial(revoked.serial, 'keyCompromise', Date.now(), 'crash suite');
    const nodeId = `spiffe://${TD}/node/n1`;
    await ca.enroll(nodeId, join(dir, 'n1'));
    const admin = agentOf(join(caData, FILES.adminDir));

    const siem = await serveSiem([
      '--data',
      join(dir, 'siem'),
      '--ca',
      ca.url,
      '--fingerprint',
      ca.fingerprint,
      '--listen',
      '127.0.0.1:0',
      '--token-file',
      tokenFileIn(dir, await ca.token(serviceId(TD, 'siem'))),
    ]);
    procs.add(siem.proc);
    let decisions = 0;
    const decide = async (scope: { type: string; value: string }): Promise<number> => {
      const body = { scope, action: 'quarantine', ttl: '1h', reason: `crash suite ${decisions}` };
      const r = await post(`${siem.url}/v1/decisions`, admin, Buffer.from(JSON.stringify(body)));
      if (r?.status !== 201) throw new Error(`decision refused: ${r?.status} ${r?.body.toString()}`);
      decisions++;
      return (JSON.parse(r.body.toString()) as { decision: { revision: number } }).decision.revision;
    };
    const badRevision = await decide({ type: 'identity', value: bad.identity });

    const inboundPort = await freePort();
    const adminPort = await freePort();
    const closed = `https://127.0.0.1:${await freePort()}`;
    const config = (online: boolean): string => {
      const file = join(dir, online ? 'online.yaml' : 'offline.yaml');
      writeFileSync(
        file,
        [
          `identity: { dir: ${JSON.stringify(join(dir, 'n1'))}, id: ${nodeId} }`,
          `ca: { url: ${online ? ca.url : closed}, fingerprint: "${ca.fingerprint}", crlInterval: 1s }`,
          `siem: { url: ${online ? siem.url : closed}, flushInterval: 50ms }`,
          `admin: { listen: 127.0.0.1:${adminPort} }`,
          'inbound:',
          `  - { listen: 127.0.0.1:${inboundPort}, forward: 127.0.0.1:${appPort}, allow: ["spiffe://${TD}/device/*"] }`,
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      return file;
    };
    const online = config(true);
    const offline = config(false);

    // First start online, until it enforces the quarantine and the CRL.
    let agent = startAgent(online);
    procs.add(agent.proc);
    const end = Date.now() + 60_000;
    for (;;) {
      const h = await health(adminPort).catch(() => undefined);
      if (h && h.decisionRevision >= badRevision && h.crl.state === 'current') break;
      if (Date.now() > end)
        throw new Error(`the agent never took the decisions and the CRL:\n${agent.output()}`);
      await new Promise((w) => setTimeout(w, 50));
    }

    let revision = 0;
    let echoes = 0;
    for (let k = 0; k < kills; k++) {
      // Load: devices holding connections through the agent, and new decisions it must store.
      let stop = false;
      let first: () => void = () => {};
      const firstEcho = new Promise<void>((r) => (first = r));
      const holder = async (): Promise<void> => {
        for (let i = 0; !stop; i++) {
          const text = `k${k}-${i}`;
          const got = await echo(inboundPort, good, text, 50 + Math.floor(Math.random() * 200));
          if (got === null) return; // the agent is gone
          if (got !== text) throw new Error(`kill ${k + 1}: echoed ${got}, sent ${text}`);
          echoes++;
          first();
        }
      };
      const decider = async (): Promise<void> => {
        for (let d = 0; !stop; d++) {
          await decide({ type: 'ip', value: `10.${(decisions >> 8) & 255}.${decisions & 255}.7` });
          await new Promise((w) => setTimeout(w, 50));
        }
      };
      const loops = Promise.all([...Array.from({ length: HOLDERS }, holder), decider()]);
      await Promise.race([firstEcho, loops]);
      await new Promise((r) => setTimeout(r, 20 + Math.floor(Math.random() * 1000)));
      await kill(agent.proc);
      procs.delete(agent.proc);
      stop = true;
      await loops;

      // Back cut off from the CA and the SIEM: the stored state, verified, enforced at once.
      agent = startAgent(offline);
      procs.add(agent.proc);
      await listening(inboundPort, agent.proc);
      const refusedBad = await echo(inboundPort, bad, 'bad');
      const refusedRevoked = await echo(inboundPort, revoked, 'revoked');
      const letIn = await echo(inboundPort, good, 'good');
      const h = await health(adminPort);
      const why = `after kill ${k + 1}:`;
      if (refusedBad !== null) throw new Error(`${why} the quarantined device was let through offline`);
      if (refusedRevoked !== null) throw new Error(`${why} the revoked certificate was let through offline`);
      if (letIn !== 'good') throw new Error(`${why} the good device was refused offline:\n${agent.output()}`);
      if (h.decisions.state !== 'verified' || h.decisions.source !== 'stored')
        throw new Error(`${why} decisions ${JSON.stringify(h.decisions)} offline`);
      if (h.crl.state !== 'current') throw new Error(`${why} CRL ${JSON.stringify(h.crl)} offline`);
      if (h.decisionRevision < revision)
        throw new Error(`${why} stored revision ${h.decisionRevision}, ${revision} after the kill before`);
      revision = h.decisionRevision;
      await kill(agent.proc);
      procs.delete(agent.proc);
      log(
        `kill ${k + 1}: ${echoes} echoes, stored revision ${revision} of ${decisions} decisions, enforced offline`,
      );

      agent = startAgent(online);
      procs.add(agent.proc);
      await listening(inboundPort, agent.proc);
    }
    await kill(agent.proc);
    procs.delete(agent.proc);
    return { kills, echoes, decisions, revision };
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await ca.close();
    await new Promise<void>((r) => app.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === import.meta.filename) {
  const r = await crashAgent(killCountArg(process.argv[2], 'crash-agent'), (s) => console.log(`  ${s}`));
  console.log(
    `crash-agent: ${r.kills} kills, ${r.echoes} echoes through held connections, ${r.decisions} decisions; ` +
      `after each kill the agent came back offline on its stored decisions (revision ${r.revision}) and CRL, ` +
      `verified, and refused the quarantined and the revoked device from its first connection`,
  );
  process.exit(0);
}
