// Client of the SIEM's decision stream: SSE `GET /v1/decisions/stream?from=REV` over mTLS (a
// snapshot, then deltas; resumable), each applied then acknowledged with
// `POST /v1/decisions/ack {revision}`. Reconnects with backoff, to the next SIEM replica when the
// one it followed is down, resuming at the applied revision; the last good set stays in force.
import * as https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { SecureContext } from 'node:tls';
import { EdgewardError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { httpsCall, tlsOptions } from './https-client.js';
import { Replicas, type ServiceUrls } from './replicas.js';

export interface SseEvent {
  readonly event: string;
  readonly data: string;
  readonly id: string | null;
}

const MAX_EVENT_BYTES = 16 * 1024 * 1024;

/** Incremental SSE parser (WHATWG rules: `event`, `data`, `id`, comments; CR, LF or CRLF). Bounded. */
export class SseParser {
  private buf = '';
  private event = '';
  private data: string[] = [];
  private dataBytes = 0;
  private id: string | null = null;

  constructor(private readonly onEvent: (e: SseEvent) => void) {}

  push(chunk: string): void {
    this.buf += chunk;
    if (this.buf.length > MAX_EVENT_BYTES)
      throw new EdgewardError('ERR_AGENT_DECISION_STREAM', 'SSE line too long');
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) return;
      // A lone CR at the very end may be the first half of CRLF: wait for more.
      if (m[0] === '\r' && m.index === this.buf.length - 1) return;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0)
        this.onEvent({ event: this.event || 'message', data: this.data.join('\n'), id: this.id });
      this.event = '';
      this.data = [];
      this.dataBytes = 0;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') {
      this.dataBytes += value.length + 1;
      if (this.dataBytes > MAX_EVENT_BYTES)
        throw new EdgewardError('ERR_AGENT_DECISION_STREAM', 'SSE event too large');
      this.data.push(value);
    } else if (field === 'id' && !value.includes('\0')) this.id = value;
  }
}

/** The signed token of an SSE data field: a compact JWS as is, or `{"jws": ...}` / `{"token": ...}`. */
export function tokenOf(data: string): string {
  const t = data.trim();
  if (!t.startsWith('{')) return t;
  let o: unknown;
  try {
    o = JSON.parse(t);
  } catch (cause) {
    throw new EdgewardError('ERR_AGENT_DECISION_STREAM', 'SSE data is neither a JWS nor JSON', { cause });
  }
  const r = o as Record<string, unknown>;
  const tok = r && typeof r === 'object' ? (r['jws'] ?? r['token']) : undefined;
  if (typeof tok !== 'string')
    throw new EdgewardError('ERR_AGENT_DECISION_STREAM', 'SSE data carries no jws/token');
  return tok;
}

export interface DecisionStreamOptions {
  /** The SIEM's URL, or its replicas' URLs (any of them serves the same decisions and revision). */
  readonly url: ServiceUrls;
  readonly expect: string;
  readonly context: () => SecureContext;
  readonly log: Logger;
  /** Current applied revision (resume point). */
  readonly revision: () => number;
  /** Verifies, persists and enforces; resolves with the revision now applied. */
  readonly apply: (kind: 'snapshot' | 'delta', token: string) => Promise<number>;
  readonly maxBackoff?: number;
}

export class DecisionStreamClient {
  private req: ReturnType<typeof https.request> | null = null;
  private stopped = false;
  private backoff = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly replicas: Replicas;
  /** The replica of the current connection (acks go there). */
  private url: string;
  /** Whether the current connection got its stream (a drop after that is not an outage). */
  private answered = false;
  connected = false;
  lastAck = -1;

  constructor(private readonly o: DecisionStreamOptions) {
    this.replicas = new Replicas(o.url);
    this.url = this.replicas.current;
  }

  /** The SIEM replica followed now (or tried next). */
  get replica(): string {
    return this.url;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.req?.destroy();
    this.req = null;
  }

  private retry(): void {
    this.connected = false;
    if (this.stopped) return;
    // A replica that refused the connection, timed out or answered 503 costs this one try: the
    // next connect goes to the next replica, from the revision applied.
    if (!this.answered) this.replicas.failed(this.url);
    this.backoff = Math.min(this.o.maxBackoff ?? 15_000, Math.max(250, this.backoff * 2));
    this.timer = setTimeout(() => this.connect(), this.backoff);
    this.timer.unref();
  }

  private connect(): void {
    if (this.stopped) return;
    const from = this.o.revision();
    this.url = this.replicas.current;
    this.answered = false;
    const req = https.request(`${this.url}/v1/decisions/stream?from=${from}`, {
      method: 'GET',
      headers: { accept: 'text/event-stream', 'last-event-id': String(from) },
      ...tlsOptions(this.o.context(), this.o.expect),
      agent: false,
      timeout: 10_000,
    });
    // Until the stream answers, silence is an outage; once it streams, heartbeats keep it busy.
    req.on('timeout', () => {
      if (!this.answered) req.destroy(new EdgewardError('ERR_AGENT_DECISION_STREAM', 'SIEM timed out'));
    });
    this.req = req;
    req.on('response', (res) => this.onResponse(res));
    req.on('error', (err) => {
      if (!this.stopped)
        this.o.log.warn({ err }, 'decision stream error; the last good decisions stay in force');
    });
    req.on('close', () => {
      if (this.req === req) this.retry();
    });
    req.end();
  }

  private onResponse(res: IncomingMessage): void {
    if (
      res.statusCode !== 200 ||
      !String(res.headers['content-type'] ?? '').startsWith('text/event-stream')
    ) {
      this.o.log.warn({ status: res.statusCode }, 'decision stream refused');
      res.resume();
      this.req?.destroy();
      return;
    }
    this.connected = true;
    this.answered = true;
    this.replicas.worked(this.url);
    res.socket.setTimeout(0);
    this.backoff = 0;
    res.setEncoding('utf8');
    // Events are applied strictly in order; the chain also serialises with the acks.
    let chain = Promise.resolve();
    const parser = new SseParser((e) => {
      if (e.event !== 'snapshot' && e.event !== 'delta') return;
      chain = chain.then(() => this.handle(e.event as 'snapshot' | 'delta', e.data));
    });
    res.on('data', (chunk: string) => {
      try {
        parser.push(chunk);
      } catch (err) {
        this.o.log.warn({ err }, 'decision stream sent malformed data; reconnecting');
        this.req?.destroy();
      }
    });
  }

  private async handle(kind: 'snapshot' | 'delta', data: string): Promise<void> {
    try {
      const revision = await this.o.apply(kind, tokenOf(data));
      await this.ack(revision);
    } catch (err) {
      this.o.log.warn({ err, kind }, 'decision refused; resyncing from the applied revision');
      // A gap or a bad delta: reconnect from what is applied so the server can resend.
      this.req?.destroy();
    }
  }

  private async ack(revision: number): Promise<void> {
    if (revision <= this.lastAck) return;
    try {
      const r = await httpsCall({
        url: `${this.url}/v1/decisions/ack`,
        method: 'POST',
        body: Buffer.from(JSON.stringify({ revision })),
        headers: { 'content-type': 'application/json' },
        context: this.o.context(),
        expect: this.o.expect,
        maxBytes: 64 * 1024,
        code: 'ERR_AGENT_DECISION_STREAM',
      });
      if (r.status >= 200 && r.status < 300) this.lastAck = revision;
      else this.o.log.warn({ status: r.status, revision }, 'decision ack refused');
    } catch (err) {
      this.o.log.warn({ err, revision }, 'decision ack failed');
    }
  }
}
