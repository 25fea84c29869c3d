// Joins two sockets into one relayed connection with the limits every connection carries: idle
// timeout, maximum lifetime (or peer certificate expiry, whichever is first), and one close path.
import type { Socket } from 'node:net';

export interface RelayOptions {
  readonly idleTimeout: number;
  /** ms until the connection must end (min of max lifetime and certificate expiry). */
  readonly deadline: number;
  readonly onDeadline: () => void;
  readonly onIdle: () => void;
  /** Called once when both sides are gone, with bytes from and to the TLS side. */
  readonly onClose: (rx: number, tx: number) => void;
}

const MAX_TIMER = 2 ** 31 - 1;

/** `secure` is the TLS side, `plain` the loopback side. Returns a destroy function. */
export function relay(secure: Socket, plain: Socket, o: RelayOptions): (err?: Error) => void {
  let closed = false;
  let timer: NodeJS.Timeout | null = null;
  const destroy = (err?: Error): void => {
    if (timer) clearTimeout(timer);
    secure.destroy(err);
    plain.destroy();
  };
  const done = (): void => {
    if (closed) return;
    closed = true;
    if (timer) clearTimeout(timer);
    secure.destroy();
    plain.destroy();
    o.onClose(secure.bytesRead, secure.bytesWritten);
  };
  secure.on('close', done);
  plain.on('close', done);
  secure.on('error', () => plain.destroy());
  plain.on('error', () => secure.destroy());
  // Idle means no traffic either way: the TLS socket sees both (reads and the relayed writes).
  secure.setTimeout(o.idleTimeout, () => {
    o.onIdle();
    destroy();
  });
  const arm = (left: number): void => {
    timer = setTimeout(
      () => {
        if (left > MAX_TIMER) return arm(left - MAX_TIMER);
        o.onDeadline();
        destroy();
      },
      Math.max(0, Math.min(left, MAX_TIMER)),
    );
    timer.unref();
  };
  arm(o.deadline);
  secure.setNoDelay(true);
  plain.setNoDelay(true);
  secure.pipe(plain);
  plain.pipe(secure);
  return destroy;
}
