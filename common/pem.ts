// PEM encode/decode with strict block parsing (labels must match, base64 must be clean).
import { EdgewardError } from './errors.js';

export function toPem(label: string, der: Buffer): string {
  const b64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]{1,40})-----\r?\n([A-Za-z0-9+/=\r\n]*?)-----END \1-----/g;

/** All PEM blocks with the given label, in order. Text outside blocks is ignored. */
export function fromPemAll(text: string, label: string): Buffer[] {
  const out: Buffer[] = [];
  for (const m of text.matchAll(BLOCK)) {
    if (m[1] !== label) continue;
    const body = (m[2] ?? '').replace(/\s+/g, '');
    if (body.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length % 4 !== 0) {
      throw new EdgewardError('ERR_PEM_MALFORMED', `malformed ${label} PEM body`);
    }
    out.push(Buffer.from(body, 'base64'));
  }
  return out;
}

export function fromPem(text: string, label: string): Buffer {
  const all = fromPemAll(text, label);
  if (all.length !== 1 || !all[0]) {
    throw new EdgewardError(
      'ERR_PEM_MALFORMED',
      `expected exactly one ${label} PEM block, found ${all.length}`,
    );
  }
  return all[0];
}
