// The attack: join tokens on command lines (`siem serve --token T`, the demo, agent
// configs), where any local user reads them in /proc/PID/cmdline; a watcher enrolled as svc/siem
// 41 ms after one appeared. Real processes: a mesh from dist/ and a watcher process of /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceId } from '../../common/identity.js';
import { edgeward } from '../helpers/cli.js';
import { startMesh, type Mesh } from '../helpers/mesh.js';
import { tempDir } from '../helpers/tmp.js';

const TOKEN = /ewt_[A-Za-z0-9_-]{43}/g;

/**
 * A separate process, as the attacker ran it, that polls every /proc/PID/cmdline of this test's
 * descendants and prints each join token it sees. (Descendants only: other test runs on the same
 * machine are none of its business.)
 */
function startWatcher(root: number): { proc: ChildProcess; seen: () => string[] } {
  const script = `
    const fs = require('node:fs');
    const root = ${root};
    const seen = new Set();
    const parent = (pid) => {
      try { return Number(fs.readFileSync('/proc/' + pid + '/stat', 'latin1').split(') ')[1].split(' ')[1]); }
      catch { return 0; }
    };
    const ours = (pid) => { for (let p = pid, i = 0; p > 1 && i < 8; p = parent(p), i++) if (p === root) return true; return false; };
    setInterval(() => {
      for (const d of fs.readdirSync('/proc')) {
        if (!/^[0-9]+$/.test(d) || Number(d) === process.pid) continue;
        let c;
        try { c = fs.readFileSync('/proc/' + d + '/cmdline', 'latin1'); } catch { continue; }
        for (const t of c.match(${TOKEN.toString()}) ?? [])
          if (!seen.has(t) && ours(Number(d))) { seen.add(t); process.stdout.write(t + '\\n'); }
      }
    }, 2);`;
  const proc = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  return { proc, seen: () => out.split('\n').filter(Boolean) };
}

let mesh: Mesh;
let watcher: ReturnType<typeof startWatcher>;
/** Tokens the tests below put on a command line on purpose, to see them refused. */
const onPurpose = new Set<string>([`ewt_${'A'.repeat(43)}`]);
const dir = tempDir('edgeward-argv-');

beforeAll(async () => {
  watcher = startWatcher(process.pid);
  mesh = await startMesh({ agents: [{ name: 'n1' }] });
  await mesh.enroll('device/d1');
});
afterAll(async () => {
  watcher?.proc.kill('SIGKILL');
  await mesh?.stop();
});

const enrollArgs = (id: string, out: string): string[] => [
  'enroll',
  '--ca',
  mesh.caUrl,
  '--fingerprint',
  mesh.fingerprint,
  '--id',
  id,
  '--attest',
  'token',
  '--out',
  out,
];

/** `siem serve` into a new folder of `dir`, with the token flags given. */
const siemServe = (data: string, ...token: string[]): ReturnType<typeof edgeward> =>
  edgeward([
    'siem',
    'serve',
    '--data',
    join(dir, data),
    '--listen',
    '127.0.0.1:0',
    '--ca',
    mesh.caUrl,
    '--fingerprint',
    mesh.fingerprint,
    ...token,
  ]);

/** An agent configuration for node NAME with the given `enroll` section; returns the file. */
function agentConfig(name: string, enroll: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `identity: { dir: ${JSON.stringify(join(dir, name))}, id: spiffe://${mesh.trustDomain}/node/${name} }`,
      `ca: { url: ${mesh.caUrl}, fingerprint: "${mesh.fingerprint}" }`,
      `enroll: ${enroll}`,
      '',
    ].join('\n'),
  );
  return file;
}

describe('join tokens in argv', () => {
  it('no command line of the mesh (ca token, siem serve, agents, enroll) carries a join token', async () => {
    // The watcher works: a token on a command line of ours is seen.
    const fake = `ewt_${'A'.repeat(43)}`;
    const decoy = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 400)', fake]);
    await new Promise((r) => decoy.once('exit', r));
    expect(watcher.seen()).toEqual([fake]);
  });

  it('enroll --token is refused before the token is used, pointing to --token-file and EDGEWARD_JOIN_TOKEN', () => {
    const id = `spiffe://${mesh.trustDomain}/device/argv`;
    const token = mesh.token(id);
    onPurpose.add(token);
    const r = edgeward([...enrollArgs(id, join(dir, 'argv')), '--token', token]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('ERR_SECRET_ARGV');
    expect(r.stderr).toContain('--token-file FILE (mode 0600) or set EDGEWARD_JOIN_TOKEN');
    // The refused token never reached the CA: it still enrolls, from the environment.
    const ok = edgeward(enrollArgs(id, join(dir, 'argv')), { EDGEWARD_JOIN_TOKEN: token });
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`issued ${id}`);
  });

  it('siem serve --token is refused before anything starts', () => {
    const token = mesh.token(serviceId(mesh.trustDomain, 'siem'));
    onPurpose.add(token);
    const r = siemServe('siem', '--token', token);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('ERR_SECRET_ARGV');
    expect(r.stdout).not.toContain('listening');
  });

  it('--token=T is refused first, even when the rest of the command line is wrong', () => {
    const token = `ewt_${'A'.repeat(43)}`;
    for (const args of [
      ['siem', 'serve', `--token=${token}`],
      ['enroll', `--token=${token}`],
      ['renew', '--dir', join(dir, 'none'), `--token=${token}`],
    ]) {
      const r = edgeward(args);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toContain('ERR_SECRET_ARGV');
      expect(r.stderr).toContain('treat that token as exposed');
    }
    // The legitimate node still renews.
    const agent = mesh.agents[0];
    if (agent === undefined) throw new Error('no agent');
    const renewed = edgeward(['renew', '--ca', mesh.caUrl, '--dir', agent.dir]);
    expect(renewed.status, renewed.stderr).toBe(0);
  });

  it('a token file that group or others can read is refused by enroll, siem serve and the agent', () => {
    const file = mesh.tokenFile(`spiffe://${mesh.trustDomain}/device/open`);
    chmodSync(file, 0o644);
    const fix = `has mode 0644: group or others can read it; run chmod 600 ${file}`;
    const en = edgeward([
      ...enrollArgs(`spiffe://${mesh.trustDomain}/device/open`, join(dir, 'o')),
      '--token-file',
      file,
    ]);
    expect(en.status).toBe(1);
    expect(en.stderr).toContain('ERR_SECRET_FILE_MODE');
    expect(en.stderr).toContain(fix);
    const siem = siemServe('siem2', '--token-file', file);
    expect(siem.status).toBe(1);
    expect(siem.stderr).toContain('ERR_SECRET_FILE_MODE');
    const config = agentConfig('open-agent', `{ attest: token, tokenFile: ${JSON.stringify(file)} }`);
    const agent = edgeward(['agent', '--config', config]);
    expect(agent.status).toBe(1);
    expect(agent.stderr).toContain('ERR_SECRET_FILE_MODE');
    expect(agent.stderr).toContain(fix);
  });

  it('an agent configuration holding a token inline is refused, naming the key and the fix', () => {
    const config = agentConfig('inline', `{ attest: token, token: ewt_${'B'.repeat(43)} }`);
    const r = edgeward(['agent', '--config', config]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('ERR_AGENT_CONFIG_INVALID: enroll.token: a join token does not belong');
    expect(r.stderr).toContain('give enroll.tokenFile, or set EDGEWARD_JOIN_TOKEN');
  });

  it('ca token --out writes a new 0600 file under umask 000, and refuses an existing one', () => {
    const id = `spiffe://${mesh.trustDomain}/device/out`;
    const file = join(dir, 'out.token');
    const r = edgeward(['ca', 'token', '--data', mesh.caDir, '--id', id, '--out', file], {}, { umask: 0 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(TOKEN);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const again = edgeward(['ca', 'token', '--data', mesh.caDir, '--id', id, '--out', file]);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain(`ERR_SECRET_FILE: cannot create ${file} (EEXIST)`);
    const en = edgeward([...enrollArgs(id, join(dir, 'out')), '--token-file', file]);
    expect(en.status, en.stderr).toBe(0);
  });

  it('a process edgeward spawns does not inherit EDGEWARD_JOIN_TOKEN', () => {
    // tpm2-tools stand-ins on PATH: each writes the environment it was given, then fails.
    const tools = join(dir, 'tools');
    mkdirSync(tools);
    const seen = join(dir, 'tool-env.txt');
    for (const tool of [
      'tpm2_createek',
      'tpm2_readpublic',
      'tpm2_nvreadpublic',
      'tpm2_nvread',
      'tpm2_pcrread',
    ])
      writeFileSync(join(tools, tool), `#!/bin/sh\nenv >> "$EW_TEST_ENV_OUT"\nexit 1\n`, { mode: 0o700 });
    const id = `spiffe://${mesh.trustDomain}/device/env-child`;
    const token = mesh.token(id);
    const r = edgeward(
      [
        ...enrollArgs(id, join(dir, 'env-child')).map((a) => (a === 'token' ? 'tpm' : a)),
        '--tcti',
        'swtpm:port=1',
      ],
      { EDGEWARD_JOIN_TOKEN: token, EW_TEST_ENV_OUT: seen, PATH: `${tools}:${process.env['PATH'] ?? ''}` },
    );
    expect(r.status).toBe(1);
    const env = readFileSync(seen, 'utf8');
    // The child got the rest of the environment, not the token.
    expect(env).toContain(`EW_TEST_ENV_OUT=${seen}`);
    expect(env).not.toContain('EDGEWARD_JOIN_TOKEN');
    expect(env).not.toContain(token);
  });

  it('the watcher saw no other token on any command line (token files, EDGEWARD_JOIN_TOKEN)', () => {
    expect(watcher.seen().filter((t) => !onPurpose.has(t))).toEqual([]);
  });
});
