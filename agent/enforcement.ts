// The live-connection index and the enforcement core: which peers are refused (revoked serials
// from the CRL, the SIEM's decisions, expired certificates) and which live connections a new
// decision or CRL must cut. Pure state; sockets stay in the adapters, which hand in a kill().
import type { Clock } from '../common/clock.js';
import type { ErrorCode } from '../common/errors.js';
import { matchIdentity } from '../common/identity.js';
import { isCanonicalScope } from '../common/decision-scope.js';
import type { Decision, DecisionSet } from '../common/decisions.js';
import { cidrContains, parseCidr, socketIp, type Cidr, type Ip } from '../common/ip.js';
import { normalizeSerial } from '../common/x509.js';

export type Direction = 'inbound' | 'outbound';
/** The two things an agent enforces from outside: the SIEM's decisions and the CA's CRL. */
export type FailClosed = 'decisions' | 'crl';

export interface PeerFacts {
  /** The peer's one URI SAN. */
  readonly identity: string;
  /** Canonical serial (common/x509.ts normalizeSerial). */
  readonly serial: string;
  /** Lower-case hex SHA-256 of the peer's DER SubjectPublicKeyInfo. */
  readonly spki: string;
  /** Remote address as the socket reports it (read with common/ip.ts socketIp). */
  readonly ip: string;
  /** Epoch ms. */
  readonly notAfter: number;
}

export interface Refusal {
  readonly code: ErrorCode;
  readonly reason: string;
  readonly decisionId?: string;
  readonly revision?: number;
}

export interface LiveConn extends PeerFacts {
  readonly direction: Direction;
  readonly listener: string;
  /** Called once by the enforcer when the connection must go; the adapter destroys its sockets. */
  kill(refusal: Refusal): void;
}

interface CompiledDecision {
  readonly d: Decision;
  readonly cidr?: Cidr;
  readonly ipText?: string;
}

function appliesTo(d: Decision, direction: Direction): boolean {
  return direction === 'inbound' || d.action === 'isolate' || d.scope.type === 'node';
}

// Verified documents carry canonical scopes only (common/decision-jws.ts refuses others), so an
// ip scope's value is the text socketIp gives for the same address. A scope that is not canonical
// is skipped, never rebased here: the agent enforces exactly what the SIEM checked and signed.
function compile(d: Decision): CompiledDecision | null {
  if (!isCanonicalScope(d.scope)) return null;
  switch (d.scope.type) {
    case 'cidr':
      return { d, cidr: parseCidr(d.scope.value) };
    case 'ip':
      return { d, ipText: d.scope.value };
    default:
      return { d };
  }
}

function addTo<K>(map: Map<K, Set<LiveConn>>, key: K, c: LiveConn): void {
  let s = map.get(key);
  if (!s) map.set(key, (s = new Set()));
  s.add(c);
}

function removeFrom<K>(map: Map<K, Set<LiveConn>>, key: K, c: LiveConn): void {
  const s = map.get(key);
  if (!s) return;
  s.delete(c);
  if (s.size === 0) map.delete(key);
}

export class Enforcer {
  private readonly byIdentity = new Map<string, Set<LiveConn>>();
  private readonly bySerial = new Map<string, Set<LiveConn>>();
  private readonly bySpki = new Map<string, Set<LiveConn>>();
  private readonly byIp = new Map<string, Set<LiveConn>>();
  private readonly ipKey = new Map<LiveConn, string>();
  private decisions: CompiledDecision[] = [];
  private revoked: ReadonlySet<string> = new Set();
  private revision = 0;
  /**
   * What the agent was told to enforce but could not verify (a tampered decision store or CRL):
   * until a verified one replaces it, every connection is refused. Never fail open.
   */
  private readonly closed = new Map<FailClosed, string>();

  constructor(private readonly clock: Clock) {}

  get size(): number {
    return this.ipKey.size;
  }

  get decisionRevision(): number {
    return this.revision;
  }

  /** Live connection counts per peer identity and direction (for /metrics). */
  countsByIdentity(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [id, set] of this.byIdentity) out.set(id, set.size);
    return out;
  }

  connections(): IterableIterator<LiveConn> {
    return this.ipKey.keys();
  }

  /** What is failing closed now (see failClosed), in a stable order. */
  get failingClosed(): FailClosed[] {
    return [...this.closed.keys()].sort();
  }

  /**
   * Refuses every connection until a verified decision set (`decisions`) or CRL (`crl`) is applied,
   * and cuts live ones. For a persisted state that exists but does not verify.
   */
  failClosed(what: FailClosed, reason: string): LiveConn[] {
    this.closed.set(what, reason);
    return this.killWhere(() => ({ code: 'ERR_AGENT_FAIL_CLOSED', reason }));
  }

  /** Why this peer must be refused right now, or null. */
  check(peer: PeerFacts, direction: Direction): Refusal | null {
    const now = this.clock.now();
    if (peer.notAfter <= now) return { code: 'ERR_AGENT_CERT_EXPIRED', reason: 'certificate expired' };
    if (this.revoked.has(peer.serial)) return { code: 'ERR_AGENT_REVOKED', reason: 'serial is on the CRL' };
    const ip = socketIp(peer.ip);
    for (const c of this.decisions) {
      if (c.d.expiresAt <= now || !appliesTo(c.d, direction)) continue;
      if (matches(c, peer, ip)) return refusalOf(c.d);
    }
    for (const reason of this.closed.values()) return { code: 'ERR_AGENT_FAIL_CLOSED', reason };
    return null;
  }

  add(conn: LiveConn): void {
    const ip = socketIp(conn.ip)?.text ?? conn.ip;
    this.ipKey.set(conn, ip);
    addTo(this.byIdentity, conn.identity, conn);
    addTo(this.bySerial, conn.serial, conn);
    addTo(this.bySpki, conn.spki, conn);
    addTo(this.byIp, ip, conn);
  }

  remove(conn: LiveConn): void {
    const ip = this.ipKey.get(conn);
    if (ip === undefined) return;
    this.ipKey.delete(conn);
    removeFrom(this.byIdentity, conn.identity, conn);
    removeFrom(this.bySerial, conn.serial, conn);
    removeFrom(this.bySpki, conn.spki, conn);
    removeFrom(this.byIp, ip, conn);
  }

  /** Replaces the decision set and cuts every live connection it now matches. */
  applyDecisions(set: DecisionSet): LiveConn[] {
    this.decisions = set.decisions.map(compile).filter((c): c is CompiledDecision => c !== null);
    this.revision = set.revision;
    this.closed.delete('decisions');
    const now = this.clock.now();
    const killed: LiveConn[] = [];
    for (const c of this.decisions) {
      if (c.d.expiresAt <= now) continue;
      for (const conn of this.candidates(c)) {
        if (!appliesTo(c.d, conn.direction)) continue;
        if (matches(c, conn, socketIp(conn.ip))) this.kill(conn, refusalOf(c.d), killed);
      }
    }
    return killed;
  }

  /** Replaces the revoked serials (from a verified CRL) and cuts matching live connections. */
  applyRevoked(serials: Iterable<string>): LiveConn[] {
    const set = new Set<string>();
    for (const s of serials) set.add(normalizeSerial(s));
    this.revoked = set;
    this.closed.delete('crl');
    const killed: LiveConn[] = [];
    for (const s of set) {
      for (const conn of [...(this.bySerial.get(s) ?? [])]) {
        this.kill(conn, { code: 'ERR_AGENT_REVOKED', reason: 'serial is on the CRL' }, killed);
      }
    }
    return killed;
  }

  /** Cuts connections a predicate picks (e.g. those a reloaded authorization policy no longer allows). */
  killWhere(pred: (c: LiveConn) => Refusal | null): LiveConn[] {
    const killed: LiveConn[] = [];
    for (const conn of [...this.ipKey.keys()]) {
      const r = pred(conn);
      if (r) this.kill(conn, r, killed);
    }
    return killed;
  }

  /** Cuts connections whose peer certificate has expired. */
  sweepExpired(): LiveConn[] {
    const now = this.clock.now();
    return this.killWhere((c) =>
      c.notAfter <= now ? { code: 'ERR_AGENT_CERT_EXPIRED', reason: 'certificate expired' } : null,
    );
  }

  private kill(conn: LiveConn, r: Refusal, killed: LiveConn[]): void {
    if (!this.ipKey.has(conn)) return;
    this.remove(conn);
    killed.push(conn);
    conn.kill(r);
  }

  private *candidates(c: CompiledDecision): Iterable<LiveConn> {
    const v = c.d.scope.value;
    switch (c.d.scope.type) {
      case 'identity':
      case 'node':
        if (!v.includes('*')) {
          yield* [...(this.byIdentity.get(v) ?? [])];
          return;
        }
        for (const [id, set] of [...this.byIdentity]) if (matchIdentity(v, id)) yield* [...set];
        return;
      case 'serial':
        yield* [...(this.bySerial.get(v) ?? [])];
        return;
      case 'spki':
        yield* [...(this.bySpki.get(v) ?? [])];
        return;
      case 'ip':
        if (c.ipText !== undefined) yield* [...(this.byIp.get(c.ipText) ?? [])];
        return;
      case 'cidr':
        for (const [ipText, set] of [...this.byIp]) {
          const ip = socketIp(ipText);
          if (ip && c.cidr && cidrContains(c.cidr, ip)) yield* [...set];
        }
        return;
    }
  }
}

function refusalOf(d: Decision): Refusal {
  return {
    code: 'ERR_AGENT_QUARANTINED',
    reason: `${d.scope.type} quarantined: ${d.reason}`.slice(0, 300),
    decisionId: d.id,
    revision: d.revision,
  };
}

function matches(c: CompiledDecision, peer: PeerFacts, ip: Ip | null): boolean {
  const v = c.d.scope.value;
  switch (c.d.scope.type) {
    case 'identity':
    case 'node':
      return v.includes('*') ? matchIdentity(v, peer.identity) : v === peer.identity;
    case 'serial':
      return v === peer.serial;
    case 'spki':
      return v === peer.spki;
    case 'ip':
      return ip !== null && c.ipText === ip.text;
    case 'cidr':
      return ip !== null && c.cidr !== undefined && cidrContains(c.cidr, ip);
  }
}
