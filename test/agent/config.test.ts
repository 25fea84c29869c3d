// The YAML config: a complete example parses; every bad field gets a coded error naming it.
import { describe, expect, it } from 'vitest';
import { isLoopback, parseAgentConfig } from '../../agent/config.js';

const GOOD = `
identity: { dir: ./node1, id: spiffe://factory.example/node/n1 }
ca: { url: https://127.0.0.1:8443, fingerprint: ${'ab'.repeat(32)} }
enroll: { attest: tpm, tcti: "swtpm:host=127.0.0.1,port=2321" }
siem: { url: https://127.0.0.1:8444 }
admin: { listen: 127.0.0.1:9901 }
inbound:
  - { listen: 0.0.0.0:9443, forward: 127.0.0.1:8080, allow: ["spiffe://factory.example/node/*"] }
outbound:
  - { listen: 127.0.0.1:7000, connect: 10.0.0.2:9443, expect: spiffe://factory.example/node/n2 }
`;

const bad = (text: string, code: string, path?: string): void => {
  try {
    parseAgentConfig(text, '/etc/edgeward/agent.yaml');
  } catch (err) {
    expect(err).toMatchObject({ code });
    if (path !== undefined)
      expect((err as { message: string }).message.startsWith(`${path}:`), (err as Error).message).toBe(true);
    return;
  }
  throw new Error('config was accepted');
};

describe('agent config', () => {
  it('parses the example, resolves paths, applies defaults and freezes', () => {
    const c = parseAgentConfig(GOOD, '/etc/edgeward/agent.yaml');
    expect(c.identity).toEqual({
      dir: '/etc/edgeward/node1',
      id: 'spiffe://factory.example/node/n1',
      trustDomain: 'factory.example',
    });
    expect(c.siem?.id).toBe('spiffe://factory.example/svc/siem');
    expect(c.inbound[0]?.listen).toMatchObject({ kind: 'tcp', host: '0.0.0.0', port: 9443 });
    expect(c.outbound[0]?.expect).toBe('spiffe://factory.example/node/n2');
    expect(c.decisions.stream).toBe(true);
    expect(c.state.dir).toBe('/etc/edgeward/node1/agent-state');
    expect(c.limits.handshakeTimeout).toBe(10_000);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.inbound[0])).toBe(true);
    expect(() => {
      (c.inbound as unknown as unknown[]).push(1);
    }).toThrow();
  });

  it('refuses bad YAML, duplicate keys and unknown keys', () => {
    bad('identity: [', 'ERR_AGENT_CONFIG_YAML');
    bad(`${GOOD}\nidentity: { dir: x, id: y }`, 'ERR_AGENT_CONFIG_YAML');
    bad(`${GOOD}\nbogus: 1`, 'ERR_AGENT_CONFIG_INVALID', 'bogus');
    bad('just a string', 'ERR_AGENT_CONFIG_INVALID', '(top level)');
    bad(
      GOOD.replace('enroll: { attest: tpm,', 'enroll: { __proto__: { x: 1 }, attest: tpm,'),
      'ERR_AGENT_CONFIG_INVALID',
      'enroll.__proto__',
    );
  });

  it('names the bad field', () => {
    bad(
      GOOD.replace('spiffe://factory.example/node/n1 }', 'http://x }'),
      'ERR_AGENT_CONFIG_INVALID',
      'identity.id',
    );
    bad(GOOD.replace('fingerprint: ab', 'fingerprint: zz'), 'ERR_AGENT_CONFIG_INVALID', 'ca.fingerprint');
    bad(
      GOOD.replace('https://127.0.0.1:8443', 'http://127.0.0.1:8443'),
      'ERR_AGENT_CONFIG_INVALID',
      'ca.url',
    );
    bad(GOOD.replace('0.0.0.0:9443', '0.0.0.0:99999'), 'ERR_AGENT_CONFIG_INVALID', 'inbound[0].listen');
    bad(
      GOOD.replace('["spiffe://factory.example/node/*"]', '["node/*"]'),
      'ERR_AGENT_CONFIG_INVALID',
      'inbound[0]',
    );
    bad(
      GOOD.replace('expect: spiffe://factory.example/node/n2', 'expect: n2'),
      'ERR_AGENT_CONFIG_INVALID',
      'outbound[0].expect',
    );
    bad(`${GOOD}\nlimits: { idleTimeout: forever }`, 'ERR_AGENT_CONFIG_INVALID', 'limits.idleTimeout');
    bad(`${GOOD}\nlimits: { maxConnections: 0 }`, 'ERR_AGENT_CONFIG_INVALID', 'limits.maxConnections');
  });

  it('takes a join token from a file (path resolved), never inline (it would be readable with the config)', () => {
    const withFile = GOOD.replace(
      'enroll: { attest: tpm, tcti: "swtpm:host=127.0.0.1,port=2321" }',
      'enroll: { attest: token, tokenFile: ./n1.token }',
    );
    expect(parseAgentConfig(withFile, '/etc/edgeward/agent.yaml').enroll).toEqual({
      attest: 'token',
      tokenFile: '/etc/edgeward/n1.token',
    });
    bad(
      withFile.replace('tokenFile: ./n1.token', `token: ewt_${'a'.repeat(43)}`),
      'ERR_AGENT_CONFIG_INVALID',
      'enroll.token',
    );
  });

  it('refuses a dotted host that is not an address (010.0.0.2 would be read as octal)', () => {
    for (const host of ['010.0.0.2:9443', '10.0.0:9443', "'[fe80::1%eth0]:9443'"])
      bad(
        GOOD.replace('connect: 10.0.0.2:9443', `connect: ${host}`),
        'ERR_AGENT_CONFIG_INVALID',
        'outbound[0].connect',
      );
  });

  it('plaintext listeners stay on loopback unless the config says otherwise', () => {
    bad(
      GOOD.replace('listen: 127.0.0.1:7000', 'listen: 0.0.0.0:7000'),
      'ERR_AGENT_CONFIG_INVALID',
      'outbound[0].listen',
    );
    bad(
      GOOD.replace('listen: 127.0.0.1:9901', 'listen: 10.0.0.5:9901'),
      'ERR_AGENT_CONFIG_INVALID',
      'admin.listen',
    );
    const c = parseAgentConfig(
      `${GOOD.replace('listen: 127.0.0.1:7000', 'listen: 0.0.0.0:7000')}\nallowPlaintextPublic: true`,
      '/x/a.yaml',
    );
    expect(c.outbound[0]?.listen.text).toBe('0.0.0.0:7000');
    const u = parseAgentConfig(
      GOOD.replace('listen: 127.0.0.1:7000', 'listen: unix:run/out.sock'),
      '/x/a.yaml',
    );
    expect(u.outbound[0]?.listen).toMatchObject({ kind: 'unix', path: '/x/run/out.sock' });
    expect(isLoopback({ kind: 'tcp', host: '[::1]', port: 1, text: '' })).toBe(false);
    expect(isLoopback({ kind: 'tcp', host: '::1', port: 1, text: '' })).toBe(true);
  });

  it('refuses a listen address used twice and alias bombs', () => {
    bad(
      GOOD.replace('listen: 127.0.0.1:7000', 'listen: 127.0.0.1:9901'),
      'ERR_AGENT_CONFIG_INVALID',
      'outbound[0].listen',
    );
    const bomb = [
      'a: &a ["x","x","x","x","x","x","x","x","x","x"]',
      ...Array.from(
        { length: 12 },
        (_, i) =>
          `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`,
      ),
    ].join('\n');
    bad(bomb, 'ERR_AGENT_CONFIG_YAML');
  });

  it('an unreadable file is ERR_AGENT_CONFIG_READ', async () => {
    const { loadAgentConfig } = await import('../../agent/config.js');
    await expect(loadAgentConfig('/nonexistent/agent.yaml')).rejects.toMatchObject({
      code: 'ERR_AGENT_CONFIG_READ',
    });
  });

  it('reads siem.nats: tls:// servers, the prefix and the server identity, with defaults', () => {
    const withNats = (nats: string): string =>
      GOOD.replace(
        'siem: { url: https://127.0.0.1:8444 }',
        `siem: { url: https://127.0.0.1:8444, nats: ${nats} }`,
      );
    const c = parseAgentConfig(withNats('{ urls: [tls://nats-a:4443, "tls://[::1]:4443"] }'), '/a.yaml');
    expect(c.siem?.nats).toEqual({
      urls: ['tls://nats-a:4443', 'tls://[::1]:4443'],
      prefix: 'edgeward',
      stream: 'EDGEWARD_DECISIONS',
      subject: 'edgeward.decisions',
      id: 'spiffe://factory.example/svc/nats',
    });
    // The SSE stream stays on unless turned off.
    expect(c.decisions.stream).toBe(true);
    const d = parseAgentConfig(
      `${withNats('{ urls: [tls://n:4443], prefix: plant7, id: spiffe://factory.example/svc/bus }')}decisions: { stream: false }\n`,
      '/a.yaml',
    );
    expect(d.siem?.nats).toMatchObject({ stream: 'PLANT7_DECISIONS', subject: 'plant7.decisions' });
    expect(d.siem?.nats?.id).toBe('spiffe://factory.example/svc/bus');
    expect(d.decisions.stream).toBe(false);
    expect(parseAgentConfig(GOOD, '/a.yaml').siem?.nats).toBeNull();

    bad(withNats('{ urls: [nats://n:4222] }'), 'ERR_AGENT_CONFIG_INVALID', 'siem.nats.urls[0]');
    bad(withNats('{ urls: [tls://u:pw@n:4443] }'), 'ERR_AGENT_CONFIG_INVALID', 'siem.nats.urls[0]');
    bad(withNats('{ urls: [tls://n] }'), 'ERR_AGENT_CONFIG_INVALID', 'siem.nats.urls[0]');
    bad(withNats('{ urls: [tls://n:1/x] }'), 'ERR_AGENT_CONFIG_INVALID', 'siem.nats.urls[0]');
    bad(withNats('{ urls: [tls://n:1, tls://n:1] }'), 'ERR_AGENT_CONFIG_INVALID', 'siem.nats.urls[1]');
    bad(withNats('{ urls: [] }'), 'ERR_AGENT_CONFIG_INVALID', 'siem.nats.urls');
    bad(withNats('{ urls: [tls://n:1], prefix: Big }'), 'ERR_AGENT_CONFIG_INVALID', 'siem.nats.prefix');
    bad(withNats('{ urls: [tls://n:1], id: nats }'), 'ERR_AGENT_CONFIG_INVALID', 'siem.nats.id');
    bad(withNats('{ prefix: edgeward }'), 'ERR_AGENT_CONFIG_INVALID', 'siem.nats.urls');
    bad(withNats('{ urls: [tls://n:1], token: x }'), 'ERR_AGENT_CONFIG_INVALID', 'siem.nats.token');
  });
});
