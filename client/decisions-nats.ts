// The agent's reader of the SIEM's decisions stream on NATS JetStream: TLS with the agent's mesh
// certificate, the NATS server pinned by its SPIFFE ID and the trust bundle, an ordered consumer
// from where the agent stopped, each signed delta handed to the same verify-persist-enforce path
// as the SSE stream. The bus is not trusted: the envelope only says where a delta may fit, the JWS
// decides. A gap (a delta that does not start at the applied revision) is filled over HTTPS from
// the SIEM (`GET /v1/decisions?from=REV`), and acknowledgements go to the SIEM over HTTPS as well.
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { PeerCertificate, SecureContext } from 'node:tls';
import {
  connect,
  DeliverPolicy,
  Events,
  type ConsumerMessages,
  type NatsConnection,
  type OrderedConsumerOptions,
  type TlsOptions,
} from 'nats';
import { parseBusDecision } from '../common/bus-decisions.js';
import { EdgewardError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { privateDir, replacePrivateFile } from '../common/private-files.js';
import { httpsCall, verifyServiceIdentity } from './https-client.js';
import { Replicas, type ServiceUrls } from './replicas.js';

/** What became of one message on the bus. */
export type BusOutcome =
  /** Verified and applied. */
  | 'applied'
  /** At or below the applied revision (a replay, or the SSE stream got there first). */
  | 'skipped'
  /** Did not verify, or is not a signed delta: counted, enforcement unchanged. */
  | 'refused'
  /** Started past the applied revision: filled from the SIEM over HTTPS. */
  | 'gap';

export interface NatsDecisionOptions {
  /** tls://HOST:PORT of the NATS servers. */
  readonly servers: readonly string[];
  readonly stream: string;
  readonly subject: string;
  /** The NATS server's one URI SAN (spiffe://TD/svc/nats). */
  readonly expectServer: string;
  /** The SIEM's URLs and SPIFFE ID: catch-up after a gap, and acknowledgements. */
  readonly siem: ServiceUrls;
  readonly expectSiem: string;
  /** The agent's identity (mesh certificate, key and bundle), read at each (re)connection. */
  readonly context: () => SecureContext;
  readonly log: Logger;
  /** The applied revision, and whether any set is applied. */
  readonly revision: () => number;
  readonly hasSet: () => boolean;
  /**
   * Verifies, persists and enforces (the agent's one path); resolves with the revision now applied,
   * or null for a delta at or below it (another source brought that revision first).
   */
  readonly apply: (kind: 'snapshot' | 'delta', token: string) => Promise<number | null>;
  /** Where the stream position is kept between restarts (a hint: the revision decides). */
  readonly positionFile: string;
  readonly onOutcome?: (o: BusOutcome) => void;
  /** Catch-ups over HTTPS at most this often (ms, default 1 s): forged gaps cannot become a flood. */
  readonly minCatchUpMs?: number;
}

/**
 * nats.js TLS options for the mesh: the caller's certificate from `context` (nats.js copies these
 * into tls.connect at every connection, the getter included, so a renewed certificate is presented
 * from the next one on), TLS 1.3, and the server known by its one URI SAN chained to the bundle in
 * the context, not by host name. The SIEM's bus connection uses the same.
 */
export function natsTlsOptions(context: () => SecureContext, expect: string): TlsOptions {
  return {
    get secureContext(): SecureContext {
      return context();
    },
    minVersion: 'TLSv1.3',
    checkServerIdentity: (_host: string, cert: PeerCertificate) => verifyServiceIdentity(cert, expect),
  } as unknown as TlsOptions;
}

/** The payload of a compact JWS, read without verifying: only to decide whether it may fit. */
export function peekDecision(jws: string): { kind: unknown; from: unknown; revision: unknown } | null {
  const parts = jws.split('.');
  if (parts.length !== 3 || parts[1] === undefined) return null;
  try {
    const v = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return null;
    const o = v as Record<string, unknown>;
    return { kind: o['kind'], from: o['from'], revision: o['revision'] };
  } catch {
    return null;
  }
}

interface Position {
  readonly seq: number;
  readonly revision: number;
}

async function readPosition(file: string): Promise<Position | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return null;
  }
  if (text.length > 1024) return null;
  try {
    const v = JSON.parse(text) as Partial<Position> | null;
    if (v && Number.isSafeInteger(v.seq) && Number.isSafeInteger(v.revision) && (v.seq as number) >= 0)
      return { seq: v.seq as number, revision: v.revision as number };
  } catch {
    return null;
  }
  return null;
}

export class NatsDecisionClient {
  private nc: NatsConnection | null = null;
  private messages: ConsumerMessages | null = null;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private backoff = 0;
  private lastCatchUp = -Infinity;
  private readonly replicas: Replicas;
  private positionWrite: Promise<void> = Promise.resolve();
  /** The stream sequence of the last message handled. */
  seq = 0;
  connected = false;
  lastAck = -1;
  readonly counts: Record<BusOutcome, number> = { applied: 0, skipped: 0, refused: 0, gap: 0 };

  constructor(private readonly o: NatsDecisionOptions) {
    this.replicas = new Replicas(o.siem);
  }

  start(): void {
    this.stopped = false;
    void this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.messages?.stop();
    const nc = this.nc;
    this.nc = null;
    this.connected = false;
    if (nc && !nc.isClosed()) await nc.close().catch(() => undefined);
    await this.positionWrite;
  }

  private retryLater(): void {
    this.connected = false;
    if (this.stopped) return;
    this.backoff = Math.min(15_000, Math.max(250, this.backoff * 2));
    this.timer = setTimeout(() => void this.run(), this.backoff);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    try {
      // Deltas need a set to apply to: with none, the first one comes from the SIEM.
      if (!this.o.hasSet()) await this.catchUp(true);
      await this.consume();
    } catch (err) {
      if (this.stopped) return;
      this.o.log.warn({ err }, 'NATS decision subscription failed; the last good decisions stay in force');
      const nc = this.nc;
      this.nc = null;
      if (nc && !nc.isClosed()) await nc.close().catch(() => undefined);
      this.retryLater();
    }
  }

  private async connect(): Promise<NatsConnection> {
    const o = this.o;
    const nc = await connect({
      servers: [...o.servers],
      name: 'edgeward-agent',
      timeout: 10_000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 250,
      pingInterval: 10_000,
      maxPingOut: 3,
      tls: natsTlsOptions(o.context, o.expectServer),
    });
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === Events.Disconnect) this.connected = false;
        else if (s.type === Events.Reconnect) {
          this.connected = true;
          o.log.info({ server: s.data }, 'NATS decision subscription reconnected');
        }
      }
    })();
    return nc;
  }

  private async consume(): Promise<void> {
    const o = this.o;
    this.nc = await this.connect();
    const js = this.nc.jetstream();
    const pos = await readPosition(o.positionFile);
    const revision = o.revision();
    // From the message after the last one handled, when that is where the applied set came from;
    // otherwise the newest delta (if it does not follow the applied revision, a catch-up fills the gap).
    const start: Partial<OrderedConsumerOptions> =
      pos !== null && pos.revision === revision && this.seq === 0
        ? { opt_start_seq: pos.seq + 1, deliver_policy: DeliverPolicy.StartSequence }
        : this.seq > 0
          ? { opt_start_seq: this.seq + 1, deliver_policy: DeliverPolicy.StartSequence }
          : { deliver_policy: DeliverPolicy.Last };
    const consumer = await js.consumers.get(o.stream, { filterSubjects: o.subject, ...start });
    this.messages = await consumer.consume({ max_messages: 64 });
    this.connected = true;
    this.backoff = 0;
    o.log.info({ stream: o.stream, revision, ...start }, 'NATS decision subscription started');
    for await (const m of this.messages) {
      if (this.stopped) break;
      await this.handle(m.data, m.seq);
    }
    if (!this.stopped) throw new EdgewardError('ERR_AGENT_DECISION_BUS', 'the NATS consumer ended');
  }

  private count(outcome: BusOutcome): void {
    this.counts[outcome]++;
    this.o.onOutcome?.(outcome);
  }

  /**
   * One message: skipped, refused, applied, or (after a catch-up over HTTPS) either of those. What
   * the message says of itself (its envelope, the JWS payload before verification) only decides
   * whether it may fit; the verifier decides whether it is applied.
   */
  private async handle(data: Uint8Array, seq: number): Promise<void> {
    this.seq = seq;
    let jws: string;
    try {
      jws = parseBusDecision(data, 'ERR_AGENT_DECISION_BUS').jws;
    } catch (err) {
      this.o.log.warn({ err, seq }, 'NATS decision message refused');
      this.savePosition();
      return this.count('refused');
    }
    const p = peekDecision(jws);
    const kind = p?.kind;
    if (
      p === null ||
      (kind !== 'delta' && kind !== 'snapshot') ||
      !Number.isSafeInteger(p.revision) ||
      (kind === 'delta' && (!Number.isSafeInteger(p.from) || (p.revision as number) <= (p.from as number)))
    ) {
      this.o.log.warn({ seq }, 'NATS decision message is not a signed decision document; refused');
      this.savePosition();
      return this.count('refused');
    }
    const rev = p.revision as number;
    if (rev <= this.o.revision()) {
      this.savePosition();
      return this.count('skipped');
    }
    // A snapshot ahead of the applied revision fits whatever is applied; a delta only on its `from`.
    if (kind === 'delta' && p.from !== this.o.revision()) {
      this.count('gap');
      this.o.log.info(
        { from: p.from, revision: rev, applied: this.o.revision() },
        'decision gap on NATS; asking the SIEM',
      );
      await this.catchUp(false);
      if (rev <= this.o.revision()) {
        this.savePosition();
        return this.count('skipped');
      }
      if (p.from !== this.o.revision()) return this.count('refused');
    }
    let applied: number | null;
    try {
      applied = await this.o.apply(kind, jws);
    } catch (err) {
      this.o.log.warn(
        { err, seq, kind, revision: rev },
        'NATS decision document refused; enforcement unchanged',
      );
      this.savePosition();
      return this.count('refused');
    }
    this.savePosition();
    if (applied === null) return this.count('skipped');
    this.count('applied');
    void this.ack(applied);
  }

  /**
   * What the SIEM says the agent needs from its revision (a delta or a snapshot), applied through
   * the same path. `untilDone`: retry until it works (no set yet); otherwise one try.
   */
  private async catchUp(untilDone: boolean): Promise<void> {
    for (let wait = 250; !this.stopped; wait = Math.min(15_000, wait * 2)) {
      const since = Date.now() - this.lastCatchUp;
      const min = this.o.minCatchUpMs ?? 1_000;
      if (since < min) await new Promise((r) => setTimeout(r, min - since).unref());
      this.lastCatchUp = Date.now();
      try {
        const from = this.o.hasSet() ? this.o.revision() : 0;
        const r = await this.replicas.call((url) =>
          httpsCall({
            url: `${url}/v1/decisions?from=${from}`,
            context: this.o.context(),
            expect: this.o.expectSiem,
            maxBytes: 16 * 1024 * 1024,
            code: 'ERR_AGENT_DECISION_BUS',
          }).then((res) => {
            if (res.status !== 200)
              throw new EdgewardError('ERR_AGENT_DECISION_BUS', `the SIEM answered ${res.status}`, {
                detail: { status: res.status },
              });
            return res;
          }),
        );
        const body = JSON.parse(r.body.toString('utf8')) as { kind?: unknown; jws?: unknown };
        if (body.kind === 'snapshot' || body.kind === 'delta') {
          if (typeof body.jws !== 'string')
            throw new EdgewardError('ERR_AGENT_DECISION_BUS', 'the SIEM sent no signed document');
          const applied = await this.o.apply(body.kind, body.jws);
          if (applied !== null) void this.ack(applied);
        } else if (body.kind !== 'current') {
          throw new EdgewardError('ERR_AGENT_DECISION_BUS', 'the SIEM answered an unknown kind');
        }
        return;
      } catch (err) {
        this.o.log.warn({ err }, 'decision catch-up from the SIEM failed');
        if (!untilDone) return;
        await new Promise((r) => setTimeout(r, wait).unref());
      }
    }
  }

  /** The stream position with the revision it led to, for the next start. */
  private savePosition(): void {
    const form = JSON.stringify({ seq: this.seq, revision: this.o.revision() });
    const file = this.o.positionFile;
    this.positionWrite = this.positionWrite
      .then(async () => {
        privateDir(dirname(file));
        await replacePrivateFile(file, form);
      })
      .catch((err: unknown) => this.o.log.warn({ err }, 'NATS stream position not saved'));
  }

  private async ack(revision: number): Promise<void> {
    if (revision <= this.lastAck) return;
    try {
      const r = await this.replicas.call((url) =>
        httpsCall({
          url: `${url}/v1/decisions/ack`,
          method: 'POST',
          body: Buffer.from(JSON.stringify({ revision })),
          headers: { 'content-type': 'application/json' },
          context: this.o.context(),
          expect: this.o.expectSiem,
          maxBytes: 64 * 1024,
          code: 'ERR_AGENT_DECISION_BUS',
        }),
      );
      if (r.status >= 200 && r.status < 300) this.lastAck = Math.max(this.lastAck, revision);
      else this.o.log.warn({ status: r.status, revision }, 'decision ack refused');
    } catch (err) {
      this.o.log.warn({ err, revision }, 'decision ack failed');
    }
  }
}
