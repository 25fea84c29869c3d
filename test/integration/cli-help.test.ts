// Every command and group of the command table, walked as a user would: `--help` and `-h` print
// the usage with every option explained and an example (exit 0), a group lists its commands, an
// unknown flag names the closest valid one (exit 2), and errors come in one style.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCommand } from '../../common/args.js';
import { COMMANDS, GROUPS } from '../../common/commands.js';
import { ATTEST_OPTIONS } from '../../attestation/index.js';
import { edgeward } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir();
const words = (path: string): string[] => path.split(' ');

describe('edgeward --help, for every command in the table', () => {
  for (const c of COMMANDS) {
    it(`${c.path} --help and -h`, () => {
      for (const flag of ['--help', '-h']) {
        const r = edgeward([...words(c.path), flag]);
        expect(r.status, r.stderr).toBe(0);
        expect(r.stderr).toBe('');
        expect(r.stdout).toContain(`usage: edgeward ${c.path}`);
        expect(r.stdout).toContain(c.summary);
        for (const [name, o] of Object.entries(c.options)) {
          if (o.hidden) {
            expect(r.stdout).not.toContain(`--${name} `);
            continue;
          }
          expect(r.stdout).toMatch(
            new RegExp(`--${name}${o.value ? ` ${o.value.replace(/[[\]|.*+?()]/g, '\\$&')}` : ''}\\s+\\S`),
          );
          expect(r.stdout).toContain(o.help);
        }
        expect(r.stdout).toMatch(/\nexamples?:\n {2}edgeward /);
        for (const e of c.examples) {
          expect(e.startsWith(`edgeward ${c.path} `) || e === `edgeward ${c.path}`).toBe(true);
          expect(r.stdout).toContain(e);
        }
      }
    });

    it(`${c.path}: an unknown flag names the closest valid one, exit 2`, () => {
      const first = Object.entries(c.options).find(([, o]) => !o.hidden)?.[0];
      const typo = first ? `--${first}x` : '--bogus';
      const r = edgeward([...words(c.path), typo, 'v']);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      const near = first ? ` (did you mean --${first}?)` : '';
      expect(r.stderr).toContain(
        `edgeward ${c.path}: unknown option ${typo}${near}\nusage: edgeward ${c.path}`,
      );
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  }

  it('every example parses by its command’s own options, with the required ones given', () => {
    for (const c of COMMANDS)
      for (const e of c.examples) {
        // Words as a shell splits them (double quotes group).
        const words = [...e.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? '');
        const argv = words.slice(1 + c.path.split(' ').length);
        expect(() => parseCommand(argv, c), e).not.toThrow();
      }
  });

  it('enroll and renew accept every flag of the attestation registry', () => {
    for (const path of ['enroll', 'renew']) {
      const c = COMMANDS.find((x) => x.path === path);
      for (const flag of Object.keys(ATTEST_OPTIONS)) expect(Object.keys(c?.options ?? {})).toContain(flag);
    }
  });
});

describe('groups list their commands', () => {
  for (const g of [{ path: '', summary: '' }, ...GROUPS]) {
    const argv = g.path === '' ? [] : words(g.path);
    const children = [
      ...new Set(
        [...COMMANDS, ...GROUPS]
          .map((x) => x.path)
          .filter((p) => p.startsWith(g.path === '' ? '' : `${g.path} `) && p !== g.path)
          .map((p) => words(p)[argv.length] as string),
      ),
    ];
    it(`edgeward ${g.path} --help lists ${children.join(', ')} (exit 0); without a command, exit 2`, () => {
      const r = edgeward([...argv, '--help']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain(`usage: edgeward ${g.path === '' ? '' : `${g.path} `}<command>`);
      for (const child of children) expect(r.stdout).toMatch(new RegExp(`\\n {2}${child} +\\S`));
      const bare = edgeward(argv);
      expect(bare.status).toBe(2);
      expect(bare.stderr).toContain('commands:');
      const flag = edgeward([...argv, '--data', 'x']);
      expect(flag.status).toBe(2);
      expect(flag.stderr).toContain(
        `edgeward${g.path === '' ? '' : ` ${g.path}`}: --data needs a command first`,
      );
      const wrong = edgeward([...argv, `${children[0] as string}x`]);
      expect(wrong.status).toBe(2);
      expect(wrong.stderr).toContain(
        `edgeward${g.path === '' ? '' : ` ${g.path}`}: unknown command ${children[0] as string}x (did you mean ${children[0] as string}?)`,
      );
    });
  }

  it('the ca list includes puf import', () => {
    expect(edgeward(['ca', '--help']).stdout).toMatch(/\n {2}puf +PUF devices registered/);
    expect(edgeward(['ca', 'puf', '--help']).stdout).toMatch(
      /\n {2}import +register a provisioned PUF device/,
    );
  });
});

describe('version and error style', () => {
  it('edgeward --version prints the package version', () => {
    const r = edgeward(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^edgeward \d+\.\d+\.\d+\n$/);
  });

  it('a missing option is a usage error (exit 2); a refusal exit 1, both as `edgeward <command>: ...`', () => {
    const missing = edgeward(['ca', 'token', '--data', dir]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/^edgeward ca token: missing --id\nusage: edgeward ca token /);
    const refused = edgeward([
      'ca',
      'token',
      '--data',
      join(dir, 'none'),
      '--id',
      'spiffe://factory.example/node/a',
    ]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^edgeward ca token: ERR_CA_NOT_INITIALISED: /);
    const agent = edgeward(['agent', '--config', join(dir, 'missing.yaml')]);
    expect(agent.status).toBe(2);
    // Off a terminal a service's start failure is a log line (docs/logging.md): JSON, level fatal.
    const fatal = JSON.parse(agent.stderr.trim()) as Record<string, unknown>;
    expect(fatal).toMatchObject({ level: 60, name: 'agent', code: 'ERR_AGENT_CONFIG_READ' });
    expect(fatal['msg']).toMatch(/^ERR_AGENT_CONFIG_READ: .*missing\.yaml/);
    const puf = edgeward(['puf', 'provision', '--id', 'x', '--puf', 'sim:1']);
    expect(puf.status).toBe(2);
    expect(puf.stderr).toMatch(/^edgeward puf provision: missing --out/);
  });
});

describe('policy check and agent --check', () => {
  const agentYaml = join(dir, 'agent.yaml');
  writeFileSync(
    agentYaml,
    `identity: { dir: ./node1, id: spiffe://factory.example/node/n1 }
ca: { url: https://127.0.0.1:8443, fingerprint: ${'ab'.repeat(32)} }
admin: { listen: 127.0.0.1:9901 }
inbound:
  - { name: web, listen: 0.0.0.0:9443, forward: 127.0.0.1:8080, allow: ["spiffe://factory.example/node/*"] }
outbound:
  - { name: db, listen: 127.0.0.1:7000, connect: 10.0.0.2:9443, expect: spiffe://factory.example/node/n2 }
`,
  );

  it('policy check of a folder checks every .yaml in it, without a stack trace', () => {
    const r = edgeward(['policy', 'check', 'policies/default/rules']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/policies\/default\/rules\/cloned-credential\.yaml: rules OK/);
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    const e = edgeward(['policy', 'check', empty]);
    expect(e.status).toBe(2);
    expect(e.stderr).toBe(
      `edgeward policy check: ${empty} holds no .yaml or .yml file\nusage: edgeward policy check FILE|DIR...\n(edgeward policy check --help explains every option)\n`,
    );
    const gone = edgeward(['policy', 'check', join(dir, 'gone.yaml')]);
    expect(gone.status).toBe(1);
    expect(gone.stderr).toBe(
      `edgeward policy check: ENOENT: no such file or directory, stat '${join(dir, 'gone.yaml')}'\n`,
    );
    const none = edgeward(['policy', 'check']);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/^edgeward policy check: missing FILE\|DIR\.\.\.\nusage: /);
  });

  it('policy check recognises an agent configuration; agent --check validates one', () => {
    const p = edgeward(['policy', 'check', agentYaml]);
    expect(p.status, p.stderr).toBe(0);
    expect(p.stdout).toContain(`${agentYaml}: agent configuration OK`);
    expect(p.stdout).toContain('outbound  db: 127.0.0.1:7000 → spiffe://factory.example/node/n2');
    const a = edgeward(['agent', '--check', '--config', agentYaml]);
    expect(a.status, a.stderr).toBe(0);
    expect(a.stdout).toContain(`${agentYaml}: agent configuration OK`);
    expect(a.stdout).toContain('identity  spiffe://factory.example/node/n1');
    const bad = join(dir, 'bad-agent.yaml');
    writeFileSync(
      bad,
      'identity: { dir: x, id: http://x }\nca: { url: https://127.0.0.1:1, fingerprint: 00 }\n',
    );
    const b = edgeward(['agent', '--check', '-c', bad]);
    expect(b.status).toBe(1);
    expect(b.stderr).toMatch(/^edgeward agent: ERR_AGENT_CONFIG_INVALID: identity\.id: /);
  });
});
