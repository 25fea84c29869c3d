// The commands that wire parts together, as real processes: policy check, puf provision and
// ca puf import, and ca serve with several workers sharing sessions.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { edgeward, edgewardAsync, edgewardServe, stop, tokenEnrollArgs } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const TD = 'factory.example';
const dir = tempDir();
const procs: ChildProcess[] = [];
afterAll(async () => {
  for (const p of procs) await stop(p, 'SIGKILL');
});

describe('edgeward policy check', () => {
  it('accepts the default rules and playbooks, running the rules’ embedded tests', () => {
    const r = edgeward([
      'policy',
      'check',
      'policies/default/rules/cloned-credential.yaml',
      'policies/default/playbooks/network.yaml',
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/cloned-credential.yaml: rules OK .* embedded tests pass/);
    expect(r.stdout).toMatch(/network.yaml: playbook OK/);
  });
  it('refuses a malformed rule file with its code', () => {
    const f = join(dir, 'bad-rule.yaml');
    writeFileSync(
      f,
      'title: x\nid: bad\ndetection:\n  selection:\n    source.ip|cidr: 10.0.0.0/33\n  condition: selection\n',
    );
    const r = edgeward(['policy', 'check', f]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ERR_POLICY_RULE_/);
  });
  it('refuses an attestation policy with an unknown method', () => {
    const f = join(dir, 'att.yaml');
    writeFileSync(f, `identities:\n  - pattern: spiffe://${TD}/node/*\n    methods: [magic]\n`);
    const r = edgeward(['policy', 'check', f]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ERR_POLICY_ATT_/);
  });
});

describe('PUF provisioning and registration', () => {
  it('provisions, imports once, refuses a second import and a malformed record', () => {
    const data = join(dir, 'ca');
    expect(edgeward(['ca', 'init', '--data', data, '--trust-domain', TD]).status).toBe(0);
    const rec = join(dir, 'd1.json');
    const p = edgeward([
      'puf',
      'provision',
      '--id',
      `spiffe://${TD}/device/d1`,
      '--puf',
      'sim:seed-1',
      '--out',
      rec,
    ]);
    expect(p.status, p.stderr).toBe(0);
    const i1 = edgeward(['ca', 'puf', 'import', '--data', data, rec]);
    expect(i1.status, i1.stderr).toBe(0);
    expect(i1.stdout).toMatch(/registered PUF device spiffe:\/\/factory.example\/device\/d1/);
    const i2 = edgeward(['ca', 'puf', 'import', '--data', data, rec]);
    expect(i2.status).toBe(1);
    expect(i2.stderr).toContain('ERR_ATT_PUF_RECORD_EXISTS');
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"identity": "spiffe://factory.example/device/d2", "__proto__": {"x": 1}}');
    const i3 = edgeward(['ca', 'puf', 'import', '--data', data, bad]);
    expect(i3.status).toBe(1);
    expect(i3.stderr).toContain('ERR_ATT_PUF_RECORD_MALFORMED');
    const big = join(dir, 'big.json');
    writeFileSync(big, `{"pad": "${'x'.repeat(600 * 1024)}"}`);
    const i4 = edgeward(['ca', 'puf', 'import', '--data', data, big]);
    expect(i4.status).toBe(1);
    expect(i4.stderr).toContain('ERR_ATT_PUF_RECORD_TOO_LARGE');
    const av = edgeward(['ca', 'audit', 'verify', '--data', data]);
    expect(av.status).toBe(0);
  });

  it('ca serve --workers 2 enrolls through either worker (sessions are shared) and replaces one that dies', async () => {
    const data = join(dir, 'ca');
    const { proc, match } = await edgewardServe(
      ['ca', 'serve', '--data', data, '--listen', '127.0.0.1:0', '--workers', '2'],
      /listening on (https:\/\/\S+) \(2 workers\)\nroot fingerprint \(SHA-256\): ([0-9a-f]{64})/,
    );
    procs.push(proc);
    const [, url = '', fp = ''] = match;
    for (let i = 0; i < 4; i++) {
      const id = `spiffe://${TD}/node/w${i}`;
      const tokenFile = join(dir, `w${i}.token`);
      expect(edgeward(['ca', 'token', '--data', data, '--id', id, '--out', tokenFile]).status).toBe(0);
      const r = await edgewardAsync(
        tokenEnrollArgs({ url, fingerprint: fp }, id, tokenFile, join(dir, `w${i}`)),
      );
      expect(r.status, r.stderr).toBe(0);
    }
    const d = await edgewardAsync([
      'enroll',
      '--ca',
      url,
      '--fingerprint',
      fp,
      '--id',
      `spiffe://${TD}/device/d1`,
      '--attest',
      'puf',
      '--puf',
      'sim:seed-1',
      '--out',
      join(dir, 'd1'),
    ]);
    expect(d.status, d.stderr).toBe(0);

    // A worker that dies is replaced, and the primary says so as a JSON log line on stderr.
    let err = '';
    proc.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const workers = readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    expect(workers).toHaveLength(2);
    process.kill(workers[0] as number, 'SIGKILL');
    const deadline = Date.now() + 10_000;
    while (!err.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const line = JSON.parse(err.split('\n')[0] ?? '') as Record<string, unknown>;
    expect(line).toMatchObject({
      level: 50,
      name: 'ca',
      msg: 'CA worker exited; starting another',
      worker: workers[0],
      exitCode: null,
      signal: 'SIGKILL',
    });

    await stop(proc);
    expect(edgeward(['ca', 'audit', 'verify', '--data', data]).status).toBe(0);
  });

  it('ca serve --workers 2 on a folder with no CA stops with the workers’ refusal, not a restart loop', () => {
    const empty = join(dir, 'no-ca');
    mkdirSync(empty);
    const r = edgeward(['ca', 'serve', '--data', empty, '--listen', '127.0.0.1:0', '--workers', '2']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('edgeward ca serve: ERR_CA_NOT_INITIALISED');
    const logged = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged.filter((l) => l['msg'] === 'CA worker failed to start; stopping').length).toBeGreaterThan(
      0,
    );
    expect(logged.some((l) => l['msg'] === 'CA worker exited; starting another')).toBe(false);
  });
});
