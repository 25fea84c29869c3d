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
import { compileSchema } from '../common/schema.js';
import { BUS_PREFIX, busDecisionNames } from '../common/bus-decisions.js';

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
  readonly ca: {
    /** The first of `urls`. */
    readonly url: string;
    /** The CA replicas, tried in turn (`ca.url` or `ca.urls`). */
    readonly urls: readonly string[];
    readonly fingerprint: string;
    readonly crlInterval: number;
  };
  /**
   * Passed to the enrollment prover (agent/wiring.ts; the prover validates its own fields), with
   * `tokenFile` resolved; an inline `token` is refused.
   */
  readonly enroll: Readonly<Record<string, unknown>> | null;
  readonly siem: {
    /** The first of `urls`. */
    readonly url: string;
    /** The SIEM replicas, tried in turn (`siem.url` or `siem.urls`). */
    readonly urls: readonly string[];
    readonly id: string;
    readonly batchMax: number;
    readonly flushInterval: number;
    readonly spoolMaxEvents: number;
    readonly spoolMaxBytes: number;
    /** Decisions also (or only) from the SIEM's decisions stream on NATS JetStream. */
    readonly nats: AgentNatsConfig | null;
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

/** The decisions stream on NATS: TLS with the agent's mesh certificate, the server known by its SPIFFE ID. */
export interface AgentNatsConfig {
  /** tls://HOST:PORT, tried in turn. */
  readonly urls: readonly string[];
  /** The deployment prefix of `siem serve --bus-prefix` (default edgeward). */
  readonly prefix: string;
  readonly stream: string;
  readonly subject: string;
  /** The NATS server's one URI SAN (default spiffe://TD/svc/nats). */
  readonly id: string;
}

class Path {
  constructor(readonly at: string) {}
  fail(message: string): never {
    throw new EdgewardError('ERR_AGENT_CONFIG_INVALID', `${this.at || '(top level)'}: ${message}`, {
      detail: { path: this.at },
    });
  }
  sub(k: string | number): Path {
    return new Path(typeof k === 'number' ? `${this.at}[${k}]` : this.at ? `${this.at}.${k}` : k);
  }
}

type Obj = Record<string, unknown>;

const text = (max: number) => ({ type: 'string', minLength: 1, maxLength: max }) as const;
const int = (minimum: number, maximum: number) => ({ type: 'integer', minimum, maximum }) as const;
/** A duration such as 500ms or 10s (a bare number is read as milliseconds by parseDuration). */
const DURATION = { anyOf: [text(32), { type: 'number' }] } as const;
const BOOL = { type: 'boolean' } as const;
const ADDRESS = text(300);
const PATH = text(1024);
const NAME = text(4096);
const IDENTITY = text(2048);

/** Up to 16 replicas' URLs of one service. */
const URLS = { type: 'array', minItems: 1, maxItems: 16, items: text(2048) } as const;

const mapping = (properties: Record<string, object>, required: readonly string[] = []) =>
  ({ type: 'object', additionalProperties: false, required, properties }) as const;

/**
 * The configuration's shape: keys, types, lengths and ranges. URLs, addresses, identities,
 * durations and the rules between sections are read after it, by the functions below.
 */
const configShape = compileSchema<Obj>(
  mapping(
    {
      identity: mapping({ dir: PATH, id: IDENTITY }, ['dir', 'id']),
      ca: mapping(
        {
          url: text(2048),
          urls: URLS,
          // A number is let through to be refused below with advice: YAML reads 00...0 as one.
          fingerprint: { anyOf: [text(200), { type: 'number' }] },
          crlInterval: DURATION,
        },
        ['fingerprint'],
      ),
      // The enrollment prover validates its own fields.
      enroll: {
        type: 'object',
        required: ['attest'],
        properties: { attest: text(64), tokenFile: PATH },
      },
      siem: mapping(
        {
          url: text(2048),
          urls: URLS,
          id: IDENTITY,
          batchMax: int(1, 10_000),
          flushInterval: DURATION,
          spoolMaxEvents: int(100, 100_000_000),
          spoolMaxBytes: int(65_536, 64 * 1024 ** 3),
          nats: mapping({ urls: URLS, prefix: text(32), id: IDENTITY }, ['urls']),
        },
        [],
      ),
      admin: mapping({ listen: ADDRESS }, ['listen']),
      state: mapping({ dir: PATH }, ['dir']),
      decisions: mapping({ file: PATH, stream: BOOL, key: PATH, kid: NAME }),
      limits: mapping({
        handshakeTimeout: DURATION,
        idleTimeout: DURATION,
        maxLifetime: DURATION,
        maxConnections: int(1, 1_000_000),
        handshakeRate: int(1, 1_000_000),
        handshakeBurst: int(1, 1_000_000),
      }),
      inbound: {
        type: 'array',
        maxItems: 256,
        items: mapping(
          {
            name: NAME,
            listen: ADDRESS,
            forward: ADDRESS,
            allow: { type: 'array' },
            deny: { type: 'array' },
            proxyProtocol: BOOL,
          },
          ['listen', 'forward'],
        ),
      },
      outbound: {
        type: 'array',
        maxItems: 256,
        items: mapping({ name: NAME, listen: ADDRESS, connect: ADDRESS, expect: IDENTITY }, [
          'listen',
          'connect',
          'expect',
        ]),
      },
      allowPlaintextPublic: BOOL,
    },
    ['identity', 'ca'],
  ),
  'ERR_AGENT_CONFIG_INVALID',
  'agent configuration',
  { prefix: 'path' },
);

function duration(v: unknown, p: Path, dflt: number, min = 1, max = 365 * 86_400_000): number {
  if (v === undefined) return dflt;
  let ms: number;
  try {
    ms = parseDuration(typeof v === 'number' ? String(v) : (v as string));
  } catch {
    return p.fail('expected a duration such as 500ms, 10s, 5m, 24h');
  }
  if (ms < min || ms > max) p.fail(`duration out of range`);
  return ms;
}

function url(v: unknown, p: Path): string {
  const s = v as string;
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

/** A section's `url` or `urls` (exactly one of them), each an https:// URL, none twice. */
function urls(section: Obj, p: Path): string[] {
  const one = section['url'];
  const many = section['urls'] as unknown[] | undefined;
  if (one !== undefined && many !== undefined) p.fail('give url or urls, not both');
  if (one === undefined && many === undefined) p.fail('missing url (or urls, a list of replicas)');
  if (many === undefined) return [url(one, p.sub('url'))];
  const list = many.map((u, i) => url(u, p.sub('urls').sub(i)));
  list.forEach((u, i) => {
    if (list.indexOf(u) !== i) p.sub('urls').sub(i).fail(`${u} is listed twice`);
  });
  return list;
}

/** A NATS server of `siem.nats.urls`: tls://HOST:PORT only (the bus is reached over TLS, never in plaintext). */
function natsUrl(v: unknown, p: Path): string {
  let u: URL;
  try {
    u = new URL(v as string);
  } catch {
    return p.fail('expected a tls://HOST:PORT URL');
  }
  if (u.protocol !== 'tls:')
    p.fail('expected a tls://HOST:PORT URL (NATS over TLS with the mesh certificate)');
  if (u.username || u.password)
    p.fail('URL must not carry credentials: the mesh certificate is the credential');
  if (u.hostname === '' || u.port === '') p.fail('expected a tls://HOST:PORT URL with a port');
  if ((u.pathname !== '' && u.pathname !== '/') || u.search || u.hash)
    p.fail('URL must not carry a path, query or fragment');
  return `tls://${u.host}`;
}

function natsSection(no: Obj | undefined, p: Path, trustDomain: string): AgentNatsConfig | null {
  if (no === undefined) return null;
  const list = (no['urls'] as unknown[]).map((u, i) => natsUrl(u, p.sub('urls').sub(i)));
  list.forEach((u, i) => {
    if (list.indexOf(u) !== i) p.sub('urls').sub(i).fail(`${u} is listed twice`);
  });
  const prefix = (no['prefix'] as string | undefined) ?? 'edgeward';
  if (!BUS_PREFIX.test(prefix)) p.sub('prefix').fail('expected a lower-case name: [a-z][a-z0-9_]{0,31}');
  const id = (no['id'] as string | undefined) ?? serviceId(trustDomain, 'nats');
  try {
    parseIdentity(id);
  } catch {
    p.sub('id').fail('not a valid SPIFFE identity');
  }
  const names = busDecisionNames(prefix);
  return { urls: list, prefix, stream: names.stream, subject: names.subject, id };
}

function hostPort(v: unknown, p: Path): { host: string; port: number; text: string } {
  const s = v as string;
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
  const s = v as string;
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

function path(v: unknown, base: string): string {
  const s = v as string;
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
  const o = configShape(doc);
  const root = new Path('');
  const base = dirname(resolve(file));
  const section = (k: string): Obj | undefined => o[k] as Obj | undefined;
  const int = (v: unknown, dflt: number): number => (v === undefined ? dflt : (v as number));
  const bool = (v: unknown, dflt: boolean): boolean => (v === undefined ? dflt : (v as boolean));
  const optStr = (v: unknown): string | undefined => v as string | undefined;

  const idp = root.sub('identity');
  const ido = section('identity') as Obj;
  const id = ido['id'] as string;
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
  const identity = { dir: path(ido['dir'], base), id, trustDomain };

  const cap = root.sub('ca');
  const cao = section('ca') as Obj;
  if (typeof cao['fingerprint'] === 'number')
    cap.sub('fingerprint').fail('quote the fingerprint: YAML reads an all-digit value as a number');
  const fingerprint = (cao['fingerprint'] as string).replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(fingerprint))
    cap.sub('fingerprint').fail('expected the SHA-256 fingerprint of the root in hex (64 digits)');
  const caUrls = urls(cao, cap);
  const ca = {
    url: caUrls[0] as string,
    urls: caUrls,
    fingerprint,
    crlInterval: duration(cao['crlInterval'], cap.sub('crlInterval'), 60_000, 1000),
  };

  let enroll: Record<string, unknown> | null = null;
  const eo = section('enroll');
  if (eo !== undefined) {
    const ep = root.sub('enroll');
    enroll = { ...eo };
    // A token here would be readable by whoever reads the configuration (and its backups).
    if (enroll['token'] !== undefined)
      ep.sub('token').fail(
        'a join token does not belong in the configuration: put it in a file of its own (chmod 600) ' +
          `and give enroll.tokenFile, or set ${JOIN_TOKEN_ENV}`,
      );
    if (enroll['tokenFile'] !== undefined) enroll['tokenFile'] = path(enroll['tokenFile'], base);
  }

  let siem: AgentConfig['siem'] = null;
  const so = section('siem');
  if (so !== undefined) {
    const sp = root.sub('siem');
    const sid = optStr(so['id']) ?? serviceId(trustDomain, 'siem');
    try {
      parseIdentity(sid);
    } catch {
      sp.sub('id').fail('not a valid SPIFFE identity');
    }
    const siemUrls = urls(so, sp);
    siem = {
      url: siemUrls[0] as string,
      urls: siemUrls,
      id: sid,
      batchMax: int(so['batchMax'], 500),
      flushInterval: duration(so['flushInterval'], sp.sub('flushInterval'), 200, 10, 60_000),
      spoolMaxEvents: int(so['spoolMaxEvents'], 1_000_000),
      spoolMaxBytes: int(so['spoolMaxBytes'], 256 * 1024 * 1024),
      nats: natsSection(so['nats'] as Obj | undefined, sp.sub('nats'), trustDomain),
    };
  }

  const allowPlaintextPublic = bool(o['allowPlaintextPublic'], false);
  const plaintext = (a: ListenAddress, p: Path): ListenAddress => {
    if (!allowPlaintextPublic && !isLoopback(a))
      p.fail(
        'plaintext listeners bind to loopback or a unix socket (set allowPlaintextPublic: true to override)',
      );
    return a;
  };

  let admin: AgentConfig['admin'] = null;
  const ao = section('admin');
  if (ao !== undefined) {
    const lp = root.sub('admin').sub('listen');
    admin = { listen: plaintext(listen(ao['listen'], lp, base), lp) };
  }

  const st = section('state');
  const stateDir = st === undefined ? resolve(identity.dir, 'agent-state') : path(st['dir'], base);

  let decisions: AgentConfig['decisions'] = { file: null, stream: siem !== null, key: null, kid: null };
  const d = section('decisions');
  if (d !== undefined) {
    decisions = {
      file: d['file'] === undefined ? null : path(d['file'], base),
      stream: bool(d['stream'], siem !== null),
      key: d['key'] === undefined ? null : path(d['key'], base),
      kid: optStr(d['kid']) ?? null,
    };
    if (decisions.stream && siem === null) root.sub('decisions').sub('stream').fail('needs a siem section');
  }

  let limits: LimitsConfig = DEFAULT_LIMITS;
  const l = section('limits');
  if (l !== undefined) {
    const lp = root.sub('limits');
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
      maxConnections: int(l['maxConnections'], DEFAULT_LIMITS.maxConnections),
      handshakeRate: int(l['handshakeRate'], DEFAULT_LIMITS.handshakeRate),
      handshakeBurst: int(l['handshakeBurst'], DEFAULT_LIMITS.handshakeBurst),
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
  ((o['inbound'] ?? []) as Obj[]).forEach((e, i) => {
    const p = root.sub('inbound').sub(i);
    const l = listen(e['listen'], p.sub('listen'), base);
    if (l.kind === 'unix') p.sub('listen').fail('an mTLS listener needs host:port');
    claim(l, p.sub('listen'));
    const allow = e['allow'];
    if (allow === undefined)
      p.sub('allow').fail('expected a list of identity patterns (default deny: an empty list allows nobody)');
    let policy: AuthzPolicy;
    try {
      policy = compileAuthz(allow as unknown[], (e['deny'] ?? []) as unknown[]);
    } catch (err) {
      return p.fail(err instanceof Error ? err.message : 'invalid patterns');
    }
    const name = optStr(e['name']) ?? `in:${l.text}`;
    if (names.has(name)) p.sub('name').fail('duplicate name');
    names.add(name);
    inbound.push({
      name,
      listen: l,
      forward: listen(e['forward'], p.sub('forward'), base),
      policy,
      proxyProtocol: bool(e['proxyProtocol'], false),
    });
  });

  const outbound: OutboundConfig[] = [];
  ((o['outbound'] ?? []) as Obj[]).forEach((e, i) => {
    const p = root.sub('outbound').sub(i);
    const l = plaintext(listen(e['listen'], p.sub('listen'), base), p.sub('listen'));
    claim(l, p.sub('listen'));
    const expect = e['expect'] as string;
    try {
      parseIdentity(expect);
    } catch {
      p.sub('expect').fail('not a valid SPIFFE identity');
    }
    const name = optStr(e['name']) ?? `out:${l.text}`;
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
