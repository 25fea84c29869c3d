// Whether a TCP port can be listened on now: the error a listen on it gets (EADDRINUSE,
// EACCES, ...), or undefined when it is free. Checked by listening and closing at once.
import { createServer } from 'node:net';

export function listenError(port: number, host = '127.0.0.1'): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((done) => {
    const srv = createServer();
    srv.once('error', done);
    srv.listen(port, host, () => srv.close(() => done(undefined)));
  });
}
