// `npm start` runs `edgeward demo`: the whole mesh as real processes, an attack, the timeline.
// This runs it once, on its own ports, and checks the story it tells actually happened.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connect, createServer } from 'node:net';
import { edgewardAsync, edgewardServe } from '../helpers/cli.js';
import { waitFor } from '../siem/service/setup.js';
import { freePortRange } from '../helpers/ports.js';
import { tempDir } from '../helpers/tmp.js';

/** The demo listens on --port-base up to --port-base + 42 (cli/demo.ts). */
const DEMO_PORTS = 43;

describe('edgeward demo --once', () => {
  it('detects the cloned credential and the scanner, and every agent enforces the decisions', async () => {
    const base = await freePortRange(DEMO_PORTS);
    const r = await edgewardAsync([
      'demo',
      '--once',
      '--port-base',
      String(base),
      '--data',
      join(tempDir(), 'demo'),
    ]);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const out = r.stdout;
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
    expect(out).toMatch(/DECISION quarantine ip 127\.0\.0\.3/);
    for (const n of ['n1', 'n2', 'n3'])
      expect(out).toMatch(new RegExp(`ACK spiffe://factory.example/node/${n} applied revision 2`));
    expect(out).toMatch(
      /a valid device credential \(d2\) is now refused from 127\.0\.0\.3 and accepted from 127\.0\.0\.1/,
    );
  }, 150_000);

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
