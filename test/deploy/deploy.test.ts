// deploy/ stays usable: `systemd-analyze verify` accepts the example units, each unit's ExecStart
// command line is one edgeward accepts (run against an empty folder, it fails for the missing
// data, never for its options), and the example agent configuration loads with the agent's own
// parser.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../agent/index.js';
import { EDGEWARD } from '../helpers/cli.js';

const DEPLOY = join(import.meta.dirname, '..', '..', 'deploy');
const UNITS = readdirSync(DEPLOY).filter((f) => f.endsWith('.service'));
/** What each command, given an empty folder, must be refused for: past its options, at its data. */
const REFUSAL: Record<string, string> = {
  'edgeward-ca.service': 'ERR_CA_NOT_INITIALISED',
  'edgeward-siem.service': 'ERR_SECRET_FILE',
  'edgeward-agent.service': 'ERR_SECRET_FILE',
};
const tmp = mkdtempSync(join(tmpdir(), 'edgeward-deploy-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The value of `key=` in a unit's [Service] section. */
function serviceKey(unit: string, key: string): string {
  const text = readFileSync(join(DEPLOY, unit), 'utf8');
  const section = text.split(/^\[/m).find((s) => s.startsWith('Service]'));
  const line = section?.split('\n').find((l) => l.startsWith(`${key}=`));
  if (line === undefined) throw new Error(`${unit}: no ${key}=`);
  return line.slice(key.length + 1);
}

describe('deploy/', () => {
  it('has a unit for the CA, the SIEM and the agent', () => {
    expect(UNITS.sort()).toEqual(['edgeward-agent.service', 'edgeward-ca.service', 'edgeward-siem.service']);
  });

  it('systemd-analyze verify accepts every unit', () => {
    if (spawnSync('systemd-analyze', ['--version']).error)
      throw new Error('systemd-analyze is required for this test (apt-get install -y systemd)');
    // The units name /usr/bin/edgeward; verify copies with the built command in its place.
    const bin = join(tmp, 'edgeward');
    writeFileSync(bin, `#!/bin/sh\nexec "${process.execPath}" "${EDGEWARD}" "$@"\n`);
    chmodSync(bin, 0o755);
    const copies = UNITS.map((u) => {
      const f = join(tmp, u);
      writeFileSync(f, readFileSync(join(DEPLOY, u), 'utf8').replaceAll('/usr/bin/edgeward', bin));
      return f;
    });
    const r = spawnSync('systemd-analyze', ['verify', ...copies], { encoding: 'utf8' });
    // Under a container without a running systemd, verify still parses and checks every unit;
    // only its own notes about the host go to stderr, which the filter keeps out.
    const complaints = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('edgeward-'));
    expect(complaints).toEqual([]);
    expect(r.status).toBe(0);
  });

  for (const unit of UNITS) {
    it(`${unit}: its ExecStart options are valid edgeward options`, () => {
      const argv = serviceKey(unit, 'ExecStart').split(/\s+/);
      expect(argv[0]).toBe('/usr/bin/edgeward');
      const data = mkdtempSync(join(tmp, 'data-'));
      const config = join(tmp, `${unit}.yaml`);
      // The agent's configuration, with its folders moved into the test's.
      writeFileSync(
        config,
        readFileSync(join(DEPLOY, 'agent.yaml'), 'utf8')
          .replaceAll('/var/lib/edgeward/agent', data)
          .replaceAll('/etc/edgeward', data),
      );
      const args = argv
        .slice(1)
        .map((a) =>
          a.startsWith('/var/lib/edgeward/')
            ? join(data, 'x')
            : a === '/etc/edgeward/agent.yaml'
              ? config
              : a,
        )
        .map((a) => (a.startsWith('/etc/edgeward/') ? join(data, 'missing.token') : a));
      const r = spawnSync(process.execPath, [EDGEWARD, ...args], {
        encoding: 'utf8',
        env: { ...process.env, EDGEWARD_LOG_LEVEL: 'warn' },
        timeout: 30_000,
      });
      const out = `${r.stdout}${r.stderr}`;
      // Refused for what the empty folder lacks (exit 1), never as a usage error (exit 2).
      expect(r.status, out).toBe(1);
      expect(out).not.toMatch(/unknown (option|argument)|usage:/i);
      expect(out).toContain(REFUSAL[unit]);
    });
  }

  it('agent.yaml loads with the agent configuration parser', async () => {
    const c = await loadAgentConfig(join(DEPLOY, 'agent.yaml'));
    expect(c.identity.id).toBe('spiffe://factory.example/node/n1');
    expect(c.inbound.map((l) => l.name)).toEqual(['app']);
    expect(c.outbound.map((l) => l.expect)).toEqual(['spiffe://factory.example/node/n2']);
    expect(c.admin?.listen).toMatchObject({ kind: 'tcp', host: '127.0.0.1', port: 9901 });
  });

  it('ca.env holds only KEY=value lines and comments', () => {
    const lines = readFileSync(join(DEPLOY, 'ca.env'), 'utf8').split('\n');
    for (const l of lines) expect(l === '' || l.startsWith('#') || /^[A-Z_]+=\S+$/.test(l), l).toBe(true);
    expect(lines).toContain('EDGEWARD_CA_PASSPHRASE=change-me');
  });
});
