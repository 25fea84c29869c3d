// One bounded HTTPS request over the agent's mTLS identity (CRL fetch, decision acks). Bodies are
// capped so a hostile or broken server cannot make the agent buffer without bound.
import * as https from 'node:https';
import type { SecureContext } from 'node:tls';
import { EdgewardError, type ErrorCode } from '../common/errors.js';
import { poolFor, tlsOptions } from './reporter.js';

export interface HttpsCall {
  readonly url: string;
  readonly method?: 'GET' | 'POST';
  readonly body?: Buffer;
  readonly headers?: Record<string, string>;
  readonly context: SecureContext;
  /** Server's SPIFFE ID to pin, or null to rely on the chain alone. */
  readonly expect: string | null;
  readonly maxBytes: number;
  readonly timeout?: number;
  readonly code: ErrorCode;
}

export function httpsCall(o: HttpsCall): Promise<{ status: number; body: Buffer; type: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      o.url,
      {
        method: o.method ?? 'GET',
        headers: { ...(o.body ? { 'content-length': String(o.body.length) } : {}), ...o.headers },
        ...tlsOptions(o.context, o.expect),
        agent: poolFor(o.context),
        timeout: o.timeout ?? 10_000,
      },
      (res) => {
        const declared = Number(res.headers['content-length'] ?? 0);
        if (declared > o.maxBytes) {
          req.destroy(new EdgewardError(o.code, 'response too large'));
          return;
        }
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n > o.maxBytes) req.destroy(new EdgewardError(o.code, 'response too large'));
          else chunks.push(c);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks),
            type: String(res.headers['content-type'] ?? ''),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new EdgewardError(o.code, 'timed out')));
    req.on('error', (cause) =>
      reject(cause instanceof EdgewardError ? cause : new EdgewardError(o.code, undefined, { cause })),
    );
    req.end(o.body);
  });
}
