// The listing and analyst commands as a user runs them: `ca list` and `ca show` on a CA's data
// folder, and `siem decisions|agents|alerts` against a real SIEM process over mTLS with the
// admin identity `ca init` made.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceId } from '../../common/identity.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { EDGEWARD, edgewardAsync } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { enrollAs, subscriber, waitFor } from '../siem/service/setup.js';

const TD = 'factory.example';
const dir = tempDir('edgeward-analyst-cli-');
let ca: TestCa;
let siemUrl: string;
let siem: ChildProcess | undefined;
let sub: Awaited<ReturnType<typeof subscriber>> | undefined;

async function serveSiem(): Promise<string> {
  const tokenFile = await ca.tokenFile(serviceId(TD, 'siem'));
  const proc = spawn(
    process.execPath,
    [
      EDGEWARD,
      'siem',
      'serve',
      '--data',
      join(dir, 'siem'),
      '--listen',
      '127.0.0.1:0',
      '--ca',
      ca.url,
      '--fingerprint',
      ca.fingerprint,
      '--token-file',
      tokenFile,
    ],
    { env: { ...process.env, EDGEWARD_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  siem = proc;
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`SIEM not ready:\n${out}\n${err}`)), 30_000);
    proc.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (https:\/\/\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`SIEM exited with ${code}:\n${out}\n${err}`));
    });
  });
}

const analyst = (args: string[], identity = ca.adminDir) =>
  edgewardAsync([
    'siem',
    ...args.slice(0, args[0] === 'decisions' ? 2 : 1),
    '--siem',
    siemUrl,
    '--identity',
    identity,
    ...args.slice(args[0] === 'decisions' ? 2 : 1),
  ]);

beforeAll(async () => {
  ca = await startTestCa();
  siemUrl = await serveSiem();
});
afterAll(async () => {
  sub?.client.stop();
  siem?.kill('SIGKILL');
  await ca?.stop();
});

describe('edgeward siem decisions, agents, alerts', () => {
  it('quarantines, lists, shows the agents at their revision, lifts', async () => {
    const node = await enrollAs(ca, `spiffe://${TD}/node/n1`, join(dir, 'n1'));
    sub = await subscriber(siemUrl, node, join(dir, 'agent'), TD);

    const q = await analyst([
      'decisions',
      'quarantine',
      '--scope',
      'ip=198.51.100.7',
      '--ttl',
      '1h',
      '--reason',
      'scanning the agents',
    ]);
    expect(q.status, q.stderr).toBe(0);
    const m =
      /^decision (\S+): quarantine ip=198\.51\.100\.7 until \d{4}-\d\d-\d\dT[\d:]+Z \(revision (\d+)\)\n$/.exec(
        q.stdout,
      );
    expect(m, q.stdout).not.toBeNull();
    const [, id, revision] = m as unknown as [string, string, string];

    const l = await analyst(['decisions', 'list']);
    expect(l.status, l.stderr).toBe(0);
    expect(l.stdout).toContain(`revision ${revision}: 1 active, 0 pending approval`);
    expect(l.stdout).toMatch(
      new RegExp(`\\n${id} +quarantine +ip=198\\.51\\.100\\.7 +\\S+Z +scanning the agents\\n`),
    );
    const lj = await analyst(['decisions', 'list', '--json']);
    expect((JSON.parse(lj.stdout) as { active: { id: string }[] }).active.map((d) => d.id)).toEqual([id]);

    await waitFor('the agent at the revision', () => sub?.store.revision === Number(revision));
    const a = await waitFor('the acknowledgement', async () => {
      const r = await analyst(['agents']);
      return r.stdout.includes(`spiffe://${TD}/node/n1`) && /connected +\d+ +current/.test(r.stdout)
        ? r
        : undefined;
    });
    expect(a.status).toBe(0);
    expect(a.stdout).toMatch(new RegExp(`^decision revision ${revision}; 1 subscriber\\(s\\)\\n`));
    expect(a.stdout).toMatch(
      new RegExp(`spiffe://${TD}/node/n1 +1 connected +${revision} +current +\\S+Z\\n`),
    );

    const al = await analyst(['alerts', '--since', '1h', '--limit', '10']);
    expect(al.status, al.stderr).toBe(0);
    expect(al.stdout).toMatch(/^\d+ alert\(s\)\n/);

    const lift = await analyst(['decisions', 'lift', id]);
    expect(lift.status, lift.stderr).toBe(0);
    expect(lift.stdout).toMatch(
      new RegExp(`^lifted ${id} \\(ip=198\\.51\\.100\\.7\\); revision ${Number(revision) + 1}\\n$`),
    );
    const again = await analyst(['decisions', 'list']);
    expect(again.stdout).toContain(`revision ${Number(revision) + 1}: 0 active`);
  });

  it('refuses another identity than the admin with the SIEM’s code, and bad input as usage', async () => {
    const r = await analyst(['decisions', 'list'], join(dir, 'n1'));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /^edgeward siem decisions list: ERR_SIEM_ANALYST_REFUSED: the SIEM refused: ERR_SIEM_FORBIDDEN \(/,
    );
    const bad = await analyst([
      'decisions',
      'quarantine',
      '--scope',
      'host=x',
      '--ttl',
      '1h',
      '--reason',
      'r',
    ]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(
      'edgeward siem decisions quarantine: --scope is TYPE=VALUE with TYPE one of identity',
    );
    const away = await edgewardAsync([
      'siem',
      'agents',
      '--siem',
      'https://127.0.0.1:1',
      '--identity',
      ca.adminDir,
    ]);
    expect(away.status).toBe(1);
    expect(away.stderr).toBe(
      'edgeward siem agents: ERR_SIEM_UNREACHABLE: cannot reach the SIEM at https://127.0.0.1:1: ECONNREFUSED\n',
    );
    const none = await analyst(['decisions', 'lift', 'no-such-decision']);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(
      /^edgeward siem decisions lift: ERR_SIEM_ANALYST_REFUSED: the SIEM refused: ERR_/,
    );
  });
});

describe('edgeward ca list and ca show', () => {
  it('lists identities with certificates by state, and shows one', async () => {
    const l = await edgewardAsync(['ca', 'list', '--data', ca.dataDir]);
    expect(l.status, l.stderr).toBe(0);
    expect(l.stdout).toMatch(/^IDENTITY +METHOD +CERTIFICATES +BINDINGS +STANDING\n/);
    expect(l.stdout).toMatch(new RegExp(`\\nspiffe://${TD}/node/n1 +token +1 valid +- +ok\\n`));
    expect(l.stdout).toMatch(new RegExp(`\\nspiffe://${TD}/svc/siem +token +1 valid`));

    const rv = await edgewardAsync([
      'ca',
      'revoke',
      '--data',
      ca.dataDir,
      '--id',
      `spiffe://${TD}/node/n1`,
      '--reason',
      'keyCompromise',
    ]);
    expect(rv.status, rv.stderr).toBe(0);
    const s = await edgewardAsync(['ca', 'show', '--data', ca.dataDir, `spiffe://${TD}/node/n1`]);
    expect(s.status, s.stderr).toBe(0);
    expect(s.stdout).toContain(`identity  spiffe://${TD}/node/n1\n`);
    expect(s.stdout).toContain('standing  revoked\n');
    expect(s.stdout).toMatch(
      /certificates \(1\):\n {2}SERIAL +STATE .*\n {2}[0-9a-f]+ +revoked \S+Z \(keyCompromise\) +\S+Z +\S+Z +token +[0-9a-f]{64}\n/,
    );
    expect(s.stdout).toContain('hardware bindings (0):');

    const unknown = await edgewardAsync(['ca', 'show', '--data', ca.dataDir, `spiffe://${TD}/node/nobody`]);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toBe(
      `edgeward ca show: ERR_NOT_FOUND: the CA knows no identity spiffe://${TD}/node/nobody\n`,
    );
  });
});
