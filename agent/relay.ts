// Joins two sockets into one relayed connection with the limits every connection carries: idle
// timeout, maximum lifetime (or peer certificate expiry, whichever is first), and one close path.
// Both sockets are half-open (allowHalfOpen): a FIN from one side is relayed as a FIN to the other
// while the opposite direction keeps flowing (a client that ends its request with a FIN still gets
// the reply). The relay is over when both directions have ended, or at once when a side is cut.
// Idle proxied connections are the agent's main memory cost, so a relay holds no per-connection
// closures and no stream pipes: the listeners are shared functions that find their Relay through
// a symbol on the socket (pipe() would add about nine closures and its state per direction).
import type { Socket } from 'node:net';

export interface RelayOptions {
  readonly idleTimeout: number;
  /** ms until the connection must end (min of max lifetime and certificate expiry). */
  readonly deadline: number;
  /** Called as methods (`o.onIdle()`), so a connection object can be its own options. */
  onDeadline(): void;
  onIdle(): void;
  /** Called once when both sides are gone, with bytes from and to the TLS side. */
  onClose(rx: number, tx: number): void;
}

const MAX_TIMER = 2 ** 31 - 1;
const kRelay = Symbol('edgeward.relay');

type RelayedSocket = Socket & { [kRelay]?: Relay };

export class Relay {
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  /** ms of the deadline still to wait after the armed timer (timers are capped at ~24.8 days). */
  private left = 0;
  /** Set once one side closed cleanly: the other only flushes what it still holds. */
  private linger: NodeJS.Timeout | null = null;

  /** `secure` is the TLS side, `plain` the loopback side. */
  constructor(
    readonly secure: Socket,
    readonly plain: Socket,
    readonly options: RelayOptions,
  ) {
    const o = options;
    const s = secure as RelayedSocket;
    const p = plain as RelayedSocket;
    s[kRelay] = this;
    p[kRelay] = this;
    s.on('close', onClose);
    p.on('close', onClose);
    s.on('error', onError);
    p.on('error', onError);
    // Idle means no traffic either way: the TLS socket sees both (reads and the relayed writes).
    s.setTimeout(o.idleTimeout);
    s.on('timeout', onTimeout);
    this.arm(o.deadline);
    s.setNoDelay(true);
    p.setNoDelay(true);
    // What stream.pipe() does in both directions: write through, pause the reader while the
    // writer's buffer is full, resume on drain, pass the end on.
    s.on('data', onData);
    p.on('data', onData);
    s.on('drain', onDrain);
    p.on('drain', onDrain);
    s.on('end', onEnd);
    p.on('end', onEnd);
  }

  /** Cuts both sides now. */
  destroy(err?: Error): void {
    this.clearTimer();
    this.secure.destroy(err);
    this.plain.destroy();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.linger) clearTimeout(this.linger);
    this.linger = null;
  }

  private arm(left: number): void {
    this.left = left;
    this.timer = setTimeout(onDeadlineTimer, Math.max(0, Math.min(left, MAX_TIMER)), this);
    this.timer.unref();
  }

  /** @internal */
  deadlineReached(): void {
    this.timer = null;
    if (this.left > MAX_TIMER) return this.arm(this.left - MAX_TIMER);
    this.options.onDeadline();
    this.destroy();
  }

  /** @internal */
  idle(): void {
    this.options.onIdle();
    this.destroy();
  }

  /**
   * @internal One side closed. Cleanly (its FIN was read and its own FIN sent and flushed, so both
   * directions are over): the other side may still be flushing its last bytes and gets until its
   * own close, bounded by the idle timeout. Otherwise (reset, error, destroy) both are cut now.
   */
  sideClosed(s: Socket): void {
    if (this.closed || this.linger) return this.done();
    const other = this.other(s);
    if (s.readableEnded && s.writableFinished && other.readableEnded && !other.destroyed) {
      this.linger = setTimeout(onLingerTimer, this.options.idleTimeout, this);
      this.linger.unref();
      return;
    }
    this.done();
  }

  /** @internal */
  done(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    this.secure.destroy();
    this.plain.destroy();
    this.options.onClose(this.secure.bytesRead, this.secure.bytesWritten);
  }

  /** @internal The other side of `s`. */
  other(s: Socket): Socket {
    return s === this.secure ? this.plain : this.secure;
  }
}

/** The Relay a socket belongs to, if any. */
export function relayOf(s: Socket): Relay | undefined {
  return (s as RelayedSocket)[kRelay];
}

function onData(this: Socket, chunk: Buffer): void {
  if (!relayOf(this)!.other(this).write(chunk)) this.pause();
}

function onDrain(this: Socket): void {
  const from = relayOf(this)!.other(this);
  if (from.isPaused()) from.resume();
}

function onEnd(this: Socket): void {
  relayOf(this)!.other(this).end();
}

function onError(this: Socket): void {
  relayOf(this)!.other(this).destroy();
}

function onClose(this: Socket): void {
  relayOf(this)!.sideClosed(this);
}

function onTimeout(this: Socket): void {
  relayOf(this)!.idle();
}

function onDeadlineTimer(r: Relay): void {
  r.deadlineReached();
}

function onLingerTimer(r: Relay): void {
  r.done();
}

/** `secure` is the TLS side, `plain` the loopback side. Returns a destroy function. */
export function relay(secure: Socket, plain: Socket, o: RelayOptions): (err?: Error) => void {
  const r = new Relay(secure, plain, o);
  return (err) => r.destroy(err);
}
