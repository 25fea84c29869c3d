// The agent's YAML configuration: parsed, validated once with coded errors that name the bad
// field, relative paths resolved against the config file's folder, then deep-frozen.
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseDuration } from '../common/clock.js';
import { EdgewardError } from '../common/errors.js';
import { JOIN_TOKEN_ENV } from '../common/join-token.js';
import { parseIdentity, serviceId } from '../common/identity.js';
import { compileAuthz, type AuthzPolicy } from '../policies/index.js';
import { isLoopbackIp, tryParseIp } from '../common/ip.js';
import { DEFAULT_LIMITS, type LimitsConfig } from './limits.js';

export type ListenAddress =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly text: string }
  | { readonly kind: 'unix'; readonly path: string; readonly text: string };

export interface InboundConfig {
  readonly name: string;
  readonly listen: ListenAddress;
  readonly forward: ListenAddress;
  readonly policy: AuthzPolicy;
  readonly proxyProtocol: boolean;
}

export interface OutboundConfig {
  readonly name: string;
  readonly listen: ListenAddress;
  readonly connect: { readonly host: string; readonly port: number; readonly text: string };
  readonly expect: string;
}

export interface AgentConfig {
  /** Absolute path of the file this came from (for SIGHUP reloads). */
  readonly file: string;
  readonly identity: { readonly dir: string; readonly id: string; readonly trustDomain: string };
  readonly ca: { readonly url: string; readonly fingerprint: string; readonly crlInterval: number };
  /**
   * Passed to the enrollment prover (agent/wiring.ts; the prover validates its own fields), with
   * `tokenFile` resolved; an inline `token` is refused.
   */
  readonly enroll: Readonly<Record<string, unknown>> | null;
  readonly siem: {
    readonly url: string;
    readonly id: string;
    readonly batchMax: number;
    readonly flushInterval: number;
    readonly spoolMaxEvents: number;
    readonly spoolMaxBytes: number;
  } | null;
  readonly admin: { readonly listen: ListenAddress } | null;
  readonly state: { readonly dir: string };
  readonly decisions: {
    readonly file: string | null;
    readonly stream: boolean;
    readonly key: string | null;
    readonly kid: string | null;
  };
  readonly limits: LimitsConfig;
  readonly inbound: readonly InboundConfig[];
  readonly outbound: readonly OutboundConfig[];
  /** Lets plaintext listeners (outbound, admin) bind to non-loopback addresses. */
  readonly allowPlaintextPublic: boolean;
}

class Path {
  constructor(readonly at: string) {}
  fail(message: string): never {
    throw new EdgewardError('ERR_AGENT_CONFIG_INVALID', `${this.at || '(root)'}: ${message}`, {
      detail: { path: this.at },
    });
  }
  sub(k: string | number): Path {
    return new Path(typeof k === 'number' ? `${this.at}[${k}]` : this.at ? `${this.at}.${k}` : k);
  }
}

type Obj = Record<string, unknown>;

function obj(v: unknown, p: Path, keys: readonly string[]): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) p.fail('expected a mapping');
  const o = v as Obj;
  for (const k of Object.keys(o))
    if (!keys.includes(k)) p.sub(k).fail(`unknown key (known: ${keys.join(', ')})`);
  return o;
}

function str(v: unknown, p: Path, max = 4096): string {
  if (typeof v !== 'string' || v.length === 0) p.fail('expected a non-empty string');
  if (v.length > max) p.fail(`longer than ${max} characters`);
  return v;
}

function optStr(v: unknown, p: Path): string | undefined {
  return v === undefined ? undefined : str(v, p);
}

function bool(v: unknown, p: Path, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') p.fail('expected true or false');
  return v;
}

function int(v: unknown, p: Path, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    p.fail(`expected an integer from ${min} to ${max}`);
  return v;
}

function duration(v: unknown, p: Path, dflt: number, min = 1, max = 365 * 86_400_000): number {
  if (v === undefined) return dflt;
  let ms: number;
  try {
    ms = typeof v === 'number' ? parseDuration(String(v)) : parseDuration(str(v, p, 32));
  } catch (e) {
    if (e instanceof EdgewardError) throw e;
    return p.fail('expected a duration such as 500ms, 10s, 5m, 24h');
  }
  if (ms < min || ms > max) p.fail(`duration out of range`);
  return ms;
}

function url(v: unknown, p: Path): string {
  const s = str(v, p, 2048);
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return p.fail('expected an https:// URL');
  }
  if (u.protocol !== 'https:') p.fail('expected an https:// URL');
  if (u.username || u.password || u.search || u.hash)
    p.fail('URL must not carry credentials, query or fragment');
  return u.origin + u.pathname.replace(/\/+$/, '');
}

function hostPort(v: unknown, p: Path): { host: string; port: number; text: string } {
  const s = str(v, p, 300);
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  if (!m) return p.fail('expected host:port (IPv6 as [addr]:port)');
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (port > 65535) p.fail('port out of range');
  if (m[1] !== undefined && tryParseIp(host)?.family !== 6) p.fail('bracketed host must be an IPv6 address');
  if (m[2] !== undefined && !tryParseIp(host) && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(host))
    p.fail('invalid host name');
  // A dotted number that is not an address (010.0.0.1) would reach inet_aton, which reads octal.
  if (m[2] !== undefined && /^[0-9.]+$/.test(host) && !tryParseIp(host))
    p.fail('IPv4 addresses need four decimal octets 0..255 without leading zeros');
  return { host, port, text: s };
}

function listen(v: unknown, p: Path, base: string): ListenAddress {
  const s = str(v, p, 300);
  if (s.startsWith('unix:')) {
    const path = s.slice(5);
    if (path.length === 0 || path.length > 100) p.fail('unix socket path must be 1-100 characters');
    const abs = isAbsolute(path) ? path : resolve(base, path);
    return { kind: 'unix', path: abs, text: `unix:${abs}` };
  }
  const hp = hostPort(s, p);
  return { kind: 'tcp', ...hp };
}

export function isLoopback(a: ListenAddress): boolean {
  if (a.kind === 'unix') return true;
  if (a.host === 'localhost') return true;
  const ip = tryParseIp(a.host);
  return ip !== null && isLoopbackIp(ip);
}

function path(v: unknown, p: Path, base: string): string {
  const s = str(v, p, 1024);
  return isAbsolute(s) ? s : resolve(base, s);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

/** Validates an already-parsed document; `file` anchors relative paths. */
export function validateAgentConfig(doc: unknown, file: string): AgentConfig {
  const root = new Path('');
  const base = dirname(resolve(file));
  const o = obj(doc, root, [
    'identity',
    'ca',
    'enroll',
    'siem',
    'admin',
    'state',
    'decisions',
    'limits',
    'inbound',
    'outbound',
    'allowPlaintextPublic',
  ]);
  if (o['identity'] === undefined) root.sub('identity').fail('required');
  if (o['ca'] === undefined) root.sub('ca').fail('required');

  const idp = root.sub('identity');
  const ido = obj(o['identity'], idp, ['dir', 'id']);
  const id = str(ido['id'], idp.sub('id'), 2048);
  let trustDomain: string;
  try {
    const parsed = parseIdentity(id);
    if (parsed.kind !== 'node' && parsed.kind !== 'device')
      idp.sub('id').fail('must be a spiffe://TD/node/... or /device/... identity');
    trustDomain = parsed.trustDomain;
  } catch (e) {
    if (e instanceof EdgewardError && e.code === 'ERR_AGENT_CONFIG_INVALID') throw e;
    return idp.sub('id').fail('not a valid SPIFFE identity');
  }
  const identity = { dir: path(ido['dir'], idp.sub('dir'), base), id, trustDomain };

  const cap = root.sub('ca');
  const cao = obj(o['ca'], cap, ['url', 'fingerprint', 'crlInterval']);
  if (typeof cao['fingerprint'] === 'number')
    cap.sub('fingerprint').fail('quote the fingerprint: YAML reads an all-digit value as a number');
  const fingerprint = str(cao['fingerprint'], cap.sub('fingerprint'), 200).replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(fingerprint))
    cap.sub('fingerprint').fail('expected the SHA-256 fingerprint of the root in hex (64 digits)');
  const ca = {
    url: url(cao['url'], cap.sub('url')),
    fingerprint,
    crlInterval: duration(cao['crlInterval'], cap.sub('crlInterval'), 60_000, 1000),
  };

  let enroll: Record<string, unknown> | null = null;
  if (o['enroll'] !== undefined) {
    const ep = root.sub('enroll');
    if (o['enroll'] === null || typeof o['enroll'] !== 'object' || Array.isArray(o['enroll']))
      ep.fail('expected a mapping');
    enroll = { ...(o['enroll'] as Obj) };
    str(enroll['attest'], ep.sub('attest'), 64);
    // A token here would be readable by whoever reads the configuration (and its backups).
    if (enroll['token'] !== undefined)
      ep.sub('token').fail(
        'a join token does not belong in the configuration: put it in a file of its own (chmod 600) ' +
          `and give enroll.tokenFile, or set ${JOIN_TOKEN_ENV}`,
      );
    if (enroll['tokenFile'] !== undefined)
      enroll['tokenFile'] = path(enroll['tokenFile'], ep.sub('tokenFile'), base);
  }

  let siem: AgentConfig['siem'] = null;
  if (o['siem'] !== undefined) {
    const sp = root.sub('siem');
    const so = obj(o['siem'], sp, [
      'url',
      'id',
      'batchMax',
      'flushInterval',
      'spoolMaxEvents',
      'spoolMaxBytes',
    ]);
    const sid = optStr(so['id'], sp.sub('id')) ?? serviceId(trustDomain, 'siem');
    try {
      parseIdentity(sid);
    } catch {
      sp.sub('id').fail('not a valid SPIFFE identity');
    }
    siem = {
      url: url(so['url'], sp.sub('url')),
      id: sid,
      batchMax: int(so['batchMax'], sp.sub('batchMax'), 500, 1, 10_000),
      flushInterval: duration(so['flushInterval'], sp.sub('flushInterval'), 200, 10, 60_000),
      spoolMaxEvents: int(so['spoolMaxEvents'], sp.sub('spoolMaxEvents'), 1_000_000, 100, 100_000_000),
      spoolMaxBytes: int(
        so['spoolMaxBytes'],
        sp.sub('spoolMaxBytes'),
        256 * 1024 * 1024,
        65_536,
        64 * 1024 ** 3,
      ),
    };
  }

  const allowPlaintextPublic = bool(o['allowPlaintextPublic'], root.sub('allowPlaintextPublic'), false);
  const plaintext = (a: ListenAddress, p: Path): ListenAddress => {
    if (!allowPlaintextPublic && !isLoopback(a))
      p.fail(
        'plaintext listeners bind to loopback or a unix socket (set allowPlaintextPublic: true to override)',
      );
    return a;
  };

  let admin: AgentConfig['admin'] = null;
  if (o['admin'] !== undefined) {
    const ap = root.sub('admin');
    const ao = obj(o['admin'], ap, ['listen']);
    admin = { listen: plaintext(listen(ao['listen'], ap.sub('listen'), base), ap.sub('listen')) };
  }

  let stateDir = resolve(identity.dir, 'agent-state');
  if (o['state'] !== undefined) {
    const so = obj(o['state'], root.sub('state'), ['dir']);
    stateDir = path(so['dir'], root.sub('state').sub('dir'), base);
  }

  let decisions: AgentConfig['decisions'] = { file: null, stream: siem !== null, key: null, kid: null };
  if (o['decisions'] !== undefined) {
    const dp = root.sub('decisions');
    const d = obj(o['decisions'], dp, ['file', 'stream', 'key', 'kid']);
    decisions = {
      file: d['file'] === undefined ? null : path(d['file'], dp.sub('file'), base),
      stream: bool(d['stream'], dp.sub('stream'), siem !== null),
      key: d['key'] === undefined ? null : path(d['key'], dp.sub('key'), base),
      kid: optStr(d['kid'], dp.sub('kid')) ?? null,
    };
    if (decisions.stream && siem === null) dp.sub('stream').fail('needs a siem section');
  }

  let limits: LimitsConfig = DEFAULT_LIMITS;
  if (o['limits'] !== undefined) {
    const lp = root.sub('limits');
    const l = obj(o['limits'], lp, [
      'handshakeTimeout',
      'idleTimeout',
      'maxLifetime',
      'maxConnections',
      'handshakeRate',
      'handshakeBurst',
    ]);
    limits = {
      handshakeTimeout: duration(
        l['handshakeTimeout'],
        lp.sub('handshakeTimeout'),
        DEFAULT_LIMITS.handshakeTimeout,
        100,
        300_000,
      ),
      idleTimeout: duration(l['idleTimeout'], lp.sub('idleTimeout'), DEFAULT_LIMITS.idleTimeout, 100),
      maxLifetime: duration(l['maxLifetime'], lp.sub('maxLifetime'), DEFAULT_LIMITS.maxLifetime, 100),
      maxConnections: int(
        l['maxConnections'],
        lp.sub('maxConnections'),
        DEFAULT_LIMITS.maxConnections,
        1,
        1_000_000,
      ),
      handshakeRate: int(
        l['handshakeRate'],
        lp.sub('handshakeRate'),
        DEFAULT_LIMITS.handshakeRate,
        1,
        1_000_000,
      ),
      handshakeBurst: int(
        l['handshakeBurst'],
        lp.sub('handshakeBurst'),
        DEFAULT_LIMITS.handshakeBurst,
        1,
        1_000_000,
      ),
    };
  }

  const names = new Set<string>();
  const listens = new Set<string>();
  const claim = (a: ListenAddress, p: Path): void => {
    if (a.kind === 'tcp' && a.port === 0) return; // ephemeral ports never collide
    if (listens.has(a.text)) p.fail(`listen address ${a.text} used twice`);
    listens.add(a.text);
  };
  if (admin) claim(admin.listen, root.sub('admin').sub('listen'));

  const inbound: InboundConfig[] = [];
  const inList = o['inbound'] ?? [];
  if (!Array.isArray(inList) || inList.length > 256)
    root.sub('inbound').fail('expected a list (at most 256)');
  (inList as unknown[]).forEach((v, i) => {
    const p = root.sub('inbound').sub(i);
    const e = obj(v, p, ['name', 'listen', 'forward', 'allow', 'deny', 'proxyProtocol']);
    const l = listen(e['listen'], p.sub('listen'), base);
    if (l.kind === 'unix') p.sub('listen').fail('an mTLS listener needs host:port');
    claim(l, p.sub('listen'));
    const allow = e['allow'];
    const deny = e['deny'] ?? [];
    if (!Array.isArray(allow))
      p.sub('allow').fail('expected a list of identity patterns (default deny: an empty list allows nobody)');
    if (!Array.isArray(deny)) p.sub('deny').fail('expected a list of identity patterns');
    let policy: AuthzPolicy;
    try {
      policy = compileAuthz(allow as unknown[], deny as unknown[]);
    } catch (err) {
      return p.fail(err instanceof Error ? err.message : 'invalid patterns');
    }
    const name = optStr(e['name'], p.sub('name')) ?? `in:${l.text}`;
    if (names.has(name)) p.sub('name').fail('duplicate name');
    names.add(name);
    inbound.push({
      name,
      listen: l,
      forward: listen(e['forward'], p.sub('forward'), base),
      policy,
      proxyProtocol: bool(e['proxyProtocol'], p.sub('proxyProtocol'), false),
    });
  });

  const outbound: OutboundConfig[] = [];
  const outList = o['outbound'] ?? [];
  if (!Array.isArray(outList) || outList.length > 256)
    root.sub('outbound').fail('expected a list (at most 256)');
  (outList as unknown[]).forEach((v, i) => {
    const p = root.sub('outbound').sub(i);
    const e = obj(v, p, ['name', 'listen', 'connect', 'expect']);
    const l = plaintext(listen(e['listen'], p.sub('listen'), base), p.sub('listen'));
    claim(l, p.sub('listen'));
    const expect = str(e['expect'], p.sub('expect'), 2048);
    try {
      parseIdentity(expect);
    } catch {
      p.sub('expect').fail('not a valid SPIFFE identity');
    }
    const name = optStr(e['name'], p.sub('name')) ?? `out:${l.text}`;
    if (names.has(name)) p.sub('name').fail('duplicate name');
    names.add(name);
    outbound.push({ name, listen: l, connect: hostPort(e['connect'], p.sub('connect')), expect });
  });

  return deepFreeze({
    file: resolve(file),
    identity,
    ca,
    enroll,
    siem,
    admin,
    state: { dir: stateDir },
    decisions,
    limits,
    inbound,
    outbound,
    allowPlaintextPublic,
  });
}

export const MAX_CONFIG_BYTES = 1024 * 1024;

export function parseAgentConfig(text: string, file: string): AgentConfig {
  if (text.length > MAX_CONFIG_BYTES)
    throw new EdgewardError('ERR_AGENT_CONFIG_INVALID', 'configuration larger than 1 MiB');
  let doc: unknown;
  try {
    // uniqueKeys refuses duplicated keys; maxAliasCount bounds alias ("billion laughs") expansion.
    doc = parseYaml(text, { uniqueKeys: true, maxAliasCount: 100, prettyErrors: true });
  } catch (cause) {
    throw new EdgewardError(
      'ERR_AGENT_CONFIG_YAML',
      `${file}: ${cause instanceof Error ? cause.message.split('\n')[0] : 'bad YAML'}`,
      { cause },
    );
  }
  return validateAgentConfig(doc, file);
}

export async function loadAgentConfig(file: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new EdgewardError(
      'ERR_AGENT_CONFIG_READ',
      `${file}: ${(cause as NodeJS.ErrnoException).code ?? 'unreadable'}`,
      { cause },
    );
  }
  return parseAgentConfig(text, file);
}
