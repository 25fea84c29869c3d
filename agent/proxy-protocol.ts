// PROXY protocol v2 header (haproxy spec, section 2.2) carrying the peer's address and, in a
// custom TLV, its verified identity, so the local app behind the agent learns who called.
import { EdgewardError } from '../common/errors.js';
import { ipBytes, socketIp } from '../common/ip.js';

export const PP2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
/** First of the spec's custom TLV types (0xE0-0xEF): the peer's SPIFFE ID, UTF-8. */
export const PP2_TYPE_EDGEWARD_IDENTITY = 0xe0;
export const PP2_TYPE_SSL = 0x20;
export const PP2_SUBTYPE_SSL_VERSION = 0x21;
const PP2_CLIENT_SSL = 0x01;
const PP2_CLIENT_CERT_CONN = 0x02;

export interface ProxyEndpoints {
  readonly srcIp: string;
  readonly srcPort: number;
  readonly dstIp: string;
  readonly dstPort: number;
}

function tlv(type: number, value: Buffer): Buffer {
  const h = Buffer.alloc(3);
  h[0] = type;
  h.writeUInt16BE(value.length, 1);
  return Buffer.concat([h, value]);
}

export function buildProxyV2(ep: ProxyEndpoints, identity: string): Buffer {
  // Socket addresses: ::ffff:-mapped ones are IPv4, so a dual-stack listener speaks AF_INET.
  const src = socketIp(ep.srcIp);
  const dst = socketIp(ep.dstIp);
  if (!src || !dst || src.family !== dst.family)
    throw new EdgewardError(
      'ERR_AGENT_PROXY_HEADER',
      'source and destination must be addresses of one family',
    );
  const ports = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 65535;
  if (!ports(ep.srcPort) || !ports(ep.dstPort))
    throw new EdgewardError('ERR_AGENT_PROXY_HEADER', 'port out of range');
  const id = Buffer.from(identity, 'utf8');
  if (id.length === 0 || id.length > 2048)
    throw new EdgewardError('ERR_AGENT_PROXY_HEADER', 'identity length out of range');
  const v4 = src.family === 4;
  const addr = Buffer.alloc(v4 ? 12 : 36);
  addr.set(ipBytes(src), 0);
  addr.set(ipBytes(dst), v4 ? 4 : 16);
  addr.writeUInt16BE(ep.srcPort, v4 ? 8 : 32);
  addr.writeUInt16BE(ep.dstPort, v4 ? 10 : 34);
  const sslHead = Buffer.alloc(5);
  sslHead[0] = PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN;
  sslHead.writeUInt32BE(0, 1); // 0 = client certificate verified
  const ssl = tlv(
    PP2_TYPE_SSL,
    Buffer.concat([sslHead, tlv(PP2_SUBTYPE_SSL_VERSION, Buffer.from('TLSv1.3'))]),
  );
  const body = Buffer.concat([addr, ssl, tlv(PP2_TYPE_EDGEWARD_IDENTITY, id)]);
  const head = Buffer.alloc(16);
  PP2_SIGNATURE.copy(head, 0);
  head[12] = 0x21; // version 2, command PROXY
  head[13] = v4 ? 0x11 : 0x21; // TCP over IPv4 / IPv6
  head.writeUInt16BE(body.length, 14);
  return Buffer.concat([head, body]);
}

export interface ParsedProxyV2 extends ProxyEndpoints {
  readonly identity: string | null;
  /** Bytes the header took; what follows is the stream. */
  readonly length: number;
}

/** Strict parser (for the app side and tests): every length checked, TLVs must fill the block. */
export function parseProxyV2(buf: Buffer): ParsedProxyV2 {
  const bad = (m: string): never => {
    throw new EdgewardError('ERR_AGENT_PROXY_HEADER', m);
  };
  if (buf.length < 16 || !buf.subarray(0, 12).equals(PP2_SIGNATURE)) bad('no PROXY v2 signature');
  if (buf[12] !== 0x21) bad('unsupported version/command');
  const fam = buf[13];
  if (fam !== 0x11 && fam !== 0x21) bad('unsupported address family');
  const len = buf.readUInt16BE(14);
  if (buf.length < 16 + len) bad('truncated header');
  const alen = fam === 0x11 ? 12 : 36;
  if (len < alen) bad('address block too short');
  const a = buf.subarray(16, 16 + alen);
  const ipText = (b: Buffer): string =>
    fam === 0x11
      ? Array.from(b).join('.')
      : Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16)).join(':');
  const v4 = fam === 0x11;
  const srcIp = ipText(a.subarray(0, v4 ? 4 : 16));
  const dstIp = ipText(a.subarray(v4 ? 4 : 16, v4 ? 8 : 32));
  const srcPort = a.readUInt16BE(v4 ? 8 : 32);
  const dstPort = a.readUInt16BE(v4 ? 10 : 34);
  let identity: string | null = null;
  let off = 16 + alen;
  const end = 16 + len;
  while (off < end) {
    if (end - off < 3) bad('truncated TLV');
    const type = buf[off]!;
    const l = buf.readUInt16BE(off + 1);
    if (off + 3 + l > end) bad('TLV overruns the header');
    if (type === PP2_TYPE_EDGEWARD_IDENTITY) {
      if (identity !== null) bad('duplicate identity TLV');
      identity = buf.subarray(off + 3, off + 3 + l).toString('utf8');
    }
    off += 3 + l;
  }
  return { srcIp, srcPort, dstIp, dstPort, identity, length: end };
}
