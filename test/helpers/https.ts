// Raw HTTPS requests for negative tests: any body, any headers, optional client certificate,
// trusting a given root (or nothing, for first contact).
import { request } from 'node:https';

export interface RawResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json: Record<string, unknown> | undefined;
}

export function rawRequest(
  url: string,
  o: {
    method?: string;
    body?: string | Buffer;
    headers?: Record<string, string>;
    ca?: string;
    key?: string;
    cert?: string;
    /** The local address to connect from (e.g. 127.0.0.2, another source on loopback). */
    localAddress?: string;
  } = {},
): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: o.method ?? 'GET',
        headers: { ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}), ...o.headers },
        rejectUnauthorized: false,
        ...(o.ca ? { ca: o.ca } : {}),
        ...(o.key ? { key: o.key, cert: o.cert } : {}),
        ...(o.localAddress ? { localAddress: o.localAddress } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          let json: Record<string, unknown> | undefined;
          try {
            json = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
        });
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}
