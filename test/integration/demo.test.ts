// `npm start` runs `edgeward demo`: the whole mesh as real processes, an attack, the timeline.
// This runs it on its own ports, checks the story it tells actually happened, runs every command
// it prints as printed, and checks that a second demo cannot take its folder.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connect, createServer } from 'node:net';
import { loadIdentity } from '../../common/identity-dir.js';
import { EDGEWARD, edgewardAsync, edgewardServe, stop } from '../helpers/cli.js';
import { waitFor } from '../siem/service/setup.js';
import { freePortRange } from '../helpers/ports.js';
import { tempDir } from '../helpers/tmp.js';

/** The demo listens on --port-base up to --port-base + 42 (cli/demo/supervisor.ts). */
const DEMO_PORTS = 43;

/** Starts `edgeward demo` (without --once) and resolves with its output once the story is told. */
function startDemo(args: string[]): Promise<{ proc: ChildProcess; out: string }> {
  const proc = spawn(process.execPath, [EDGEWARD, 'demo', ...args], {
    env: { ...process.env, EDGEWARD_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`the demo did not finish its story:\n${out}\n${err}`));
    }, 120_000);
    proc.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('Ctrl-C stops it.')) {
        clearTimeout(timer);
        resolve({ proc, out });
      }
    });
    proc.stderr.on('data', (c: Buffer) => (err += c.toString()));
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited with ${code}:\n${out}\n${err}`));
    });
  });
}

/** Runs a printed command line as a user pastes it into a shell. */
function asPrinted(line: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const p = spawn('/bin/sh', ['-c', line], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((r) => p.on('close', (status) => r({ status, stdout, stderr })));
}

describe('edgeward demo', () => {
  it('detects the cloned credential and the scanner, every agent enforces the decisions, every printed command works, and the folder is locked', async () => {
    const base = await freePortRange(DEMO_PORTS);
    const data = join(tempDir(), 'demo');
    const { proc, out } = await startDemo(['--port-base', String(base), '--data', data]);
    try {
      expect(out).toMatch(/SIEM enrolled as spiffe:\/\/factory.example\/svc\/siem/);
      expect(out).toMatch(
        /analysts' dashboard on https:\/\/127\.0\.0\.1:\d+: its certificate \(localhost, 127\.0\.0\.1\) verified against the demo's local web root; login as analyst \(analyst\) OK/,
      );
      expect(out).toMatch(/dashboard: +https:\/\/127\.0\.0\.1:\d+ +user analyst, password [A-Za-z0-9_-]{16}/);
      expect(out).toMatch(/4 devices enrolled with PUF evidence/);
      // The test machine has swtpm (scripts/install-deps.sh), so the demo has its TPM device too.
      expect(out).toMatch(/device t1 enrolled with TPM evidence \(swtpm/);
      expect(out).toMatch(/n3 → n1 over the outbound sidecar: .* OK/);
      expect(out).toMatch(/ALERT \[critical\] One certificate serial in use from two addresses at once/);
      expect(out).toMatch(/DECISION quarantine serial [0-9a-f]+ \(revision \d+\)/);
      expect(out).toMatch(/d1’s live connection to n1 was cut, \d+ ms after the clone connected/);
      expect(out).toMatch(
        /ALERT \[medium\] Handshake failures from one source address \(source\.ip=127\.0\.0\.3\)/,
      );
      // Every agent acknowledges the scanner's decision, or a later revision (a repeat raised by
      // another reporter's own evidence adds one); an agent acknowledges only the last it applied.
      const ipRevision = Number(/DECISION quarantine ip 127\.0\.0\.3 \(revision (\d+)\)/.exec(out)?.[1]);
      expect(ipRevision).toBeGreaterThan(0);
      for (const n of ['n1', 'n2', 'n3']) {
        const acks = [
          ...out.matchAll(new RegExp(`ACK spiffe://factory.example/node/${n} applied revision (\\d+)`, 'g')),
        ];
        expect(Math.max(...acks.map((m) => Number(m[1]))), n).toBeGreaterThanOrEqual(ipRevision);
      }
      expect(out).toMatch(
        /a valid device credential \(d2\) is now refused from 127\.0\.0\.3 and accepted from 127\.0\.0\.1/,
      );

      // The timeline is in the order things happened: the decision before the cut it caused.
      const lines = out.split('\n').filter((l) => l.startsWith('[+'));
      const stamps = lines.map((l) => Number(/^\[\+ *([\d.]+) s\]/.exec(l)?.[1]));
      expect(stamps).toEqual([...stamps].sort((x, y) => x - y));
      const at = (re: RegExp): number => lines.findIndex((l) => re.test(l));
      expect(at(/DECISION quarantine serial/)).toBeGreaterThan(at(/ALERT \[critical\]/));
      expect(at(/live connection to n1 was cut/)).toBeGreaterThan(at(/DECISION quarantine serial/));

      // Every command it prints works as printed.
      const printed = (label: string): string => {
        const m = new RegExp(`\\n {2}${label}: +(.+)\\n`).exec(out);
        expect(m, `no "${label}" line in:\n${out}`).not.toBeNull();
        return (m as RegExpExecArray)[1] as string;
      };
      const api = await asPrinted(printed('SIEM analyst API'));
      expect(api.status, api.stderr).toBe(0);
      const answer = JSON.parse(api.stdout) as { active: { scope: { type: string; value: string } }[] };
      expect(answer.active.map((d) => d.scope.type).sort()).toEqual(['ip', 'serial']);
      // The cloned-credential decision is on d1's own certificate, the one in its folder, and on
      // nothing else: the serial the timeline printed, the serial the SIEM enforces.
      const d1Serial = loadIdentity(join(data, 'd1')).serial;
      expect(out).toContain(`device d1 (serial ${d1Serial}) holds a live mTLS connection`);
      expect(/DECISION quarantine serial ([0-9a-f]+) \(revision/.exec(out)?.[1]).toBe(d1Serial);
      expect(answer.active.filter((d) => d.scope.type === 'serial').map((d) => d.scope.value)).toEqual([
        d1Serial,
      ]);
      const decisions = await asPrinted(printed('decisions'));
      expect(decisions.status, decisions.stderr).toBe(0);
      // Later sightings by other nodes, each raising the detection on its own evidence, may add
      // revisions to the same two decisions (SECURITY.md: a repeat is raised again per reporter).
      expect(decisions.stdout).toMatch(/^revision \d+: 2 active, 0 pending approval\n/);
      const identities = await asPrinted(printed('identities'));
      expect(identities.status, identities.stderr).toBe(0);
      expect(identities.stdout).toMatch(
        /\nspiffe:\/\/factory\.example\/device\/d1 +puf +1 valid +puf +renewal hold/,
      );
      const metrics = await asPrinted(printed('agent metrics'));
      expect(metrics.status, metrics.stderr).toBe(0);
      expect(metrics.stdout).toMatch(/^# HELP edgeward_agent_/m);
      const crl = await asPrinted(printed('CRL'));
      expect(crl.status, crl.stderr).toBe(0);
      expect(crl.stdout).toContain('Certificate Revocation List (CRL):');
      const audit = await asPrinted(printed('audit chain'));
      expect(audit.status, audit.stderr).toBe(0);
      expect(audit.stdout).toMatch(/^audit chain OK: \d+ records/);

      // Each process's log is JSON lines only; what it printed for a person is beside it.
      const logs = readdirSync(data).filter((f) => f.endsWith('.log'));
      expect(logs).toContain('ca.log');
      for (const f of logs)
        for (const line of readFileSync(join(data, f), 'utf8')
          .split('\n')
          .filter((l) => l !== ''))
          expect(() => JSON.parse(line) as unknown, `${f}: ${line}`).not.toThrow();
      expect(readFileSync(join(data, 'ca.out'), 'utf8')).toMatch(/listening on https:/);

      // A second demo with the same folder refuses while this one holds it, and touches nothing.
      const other = await freePortRange(DEMO_PORTS);
      const second = await edgewardAsync(['demo', '--once', '--port-base', String(other), '--data', data]);
      expect(second.status).toBe(1);
      expect(second.stderr).toBe(
        `edgeward demo: ERR_DEMO_DATA_IN_USE: ${data} is in use by another edgeward demo (pid ${proc.pid}); stop it (Ctrl-C in its terminal, or kill ${proc.pid}) or give another --data\n`,
      );
      const still = await asPrinted(printed('audit chain'));
      expect(still.status, still.stderr).toBe(0);
    } finally {
      await stop(proc, 'SIGINT');
    }
  }, 200_000);

  it('refuses to wipe a non-empty folder it did not make', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'precious.txt'), 'keep me');
    const r = await edgewardAsync(['demo', '--once', '--data', dir]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/not made by edgeward demo/);
    expect(readFileSync(join(dir, 'precious.txt'), 'utf8')).toBe('keep me');
  });

  it('refuses a port base whose ports another program holds, before it starts or writes anything', async () => {
    const base = await freePortRange(DEMO_PORTS);
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(base + 41, '127.0.0.1', r));
    try {
      const data = join(tempDir(), 'demo');
      const r = await edgewardAsync(['demo', '--once', '--port-base', String(base), '--data', data]);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`port ${base + 41} on 127.0.0.1 is not free (EADDRINUSE)`);
      expect(r.stderr).toContain(`ports ${base} to ${base + 42}: give another --port-base`);
      expect(existsSync(data)).toBe(false);
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });

  it('leaves no server running when the demo itself is killed with SIGKILL', async () => {
    const base = await freePortRange(DEMO_PORTS);
    const { proc } = await edgewardServe(
      ['demo', '--port-base', String(base), '--data', join(tempDir(), 'demo')],
      /Ctrl-C stops it/,
    );
    const open = (port: number): Promise<boolean> =>
      new Promise((r) => {
        const s = connect(port, '127.0.0.1', () => (s.destroy(), r(true))).on('error', () => r(false));
      });
    // The CA, the SIEM, its dashboard and the first agent's listener are up...
    const ports = [base, base + 1, base + 2, base + 10];
    expect(await Promise.all(ports.map(open))).toEqual([true, true, true, true]);
    proc.kill('SIGKILL');
    // ...and every one of them goes away with the demo, though it could not stop them itself.
    await waitFor(
      'the children to stop',
      async () => !(await Promise.all(ports.map(open))).some(Boolean),
      15_000,
    );
  }, 150_000);
});
