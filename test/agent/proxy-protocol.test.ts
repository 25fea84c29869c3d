// PROXY protocol v2: the header the agent builds parses back, and the strict parser refuses junk.
import { describe, expect, it } from 'vitest';
import { buildProxyV2, parseProxyV2 } from '../../agent/proxy-protocol.js';

const id = 'spiffe://factory.example/node/n1';

describe('PROXY v2', () => {
  it('round-trips IPv4 and IPv6 with the identity TLV', () => {
    const h = buildProxyV2(
      { srcIp: '::ffff:10.0.0.2', srcPort: 50000, dstIp: '10.0.0.1', dstPort: 9443 },
      id,
    );
    expect(h.subarray(0, 12).toString('hex')).toBe('0d0a0d0a000d0a515549540a');
    expect(parseProxyV2(Buffer.concat([h, Buffer.from('rest')]))).toMatchObject({
      srcIp: '10.0.0.2',
      srcPort: 50000,
      dstIp: '10.0.0.1',
      dstPort: 9443,
      identity: id,
      length: h.length,
    });
    const h6 = buildProxyV2({ srcIp: '2001:db8::2', srcPort: 1, dstIp: '2001:db8::1', dstPort: 2 }, id);
    expect(parseProxyV2(h6)).toMatchObject({ srcIp: '2001:db8:0:0:0:0:0:2', identity: id });
  });
  it('refuses mixed families and bad ports when building', () => {
    expect(() => buildProxyV2({ srcIp: '10.0.0.1', srcPort: 1, dstIp: '::2', dstPort: 2 }, id)).toThrow(
      expect.objectContaining({ code: 'ERR_AGENT_PROXY_HEADER' }),
    );
    expect(() =>
      buildProxyV2({ srcIp: '10.0.0.1', srcPort: 70000, dstIp: '10.0.0.2', dstPort: 2 }, id),
    ).toThrow(expect.objectContaining({ code: 'ERR_AGENT_PROXY_HEADER' }));
  });
  it('the parser checks every length', () => {
    const h = buildProxyV2({ srcIp: '10.0.0.2', srcPort: 1, dstIp: '10.0.0.1', dstPort: 2 }, id);
    const bad = (b: Buffer): void =>
      expect(() => parseProxyV2(b)).toThrow(expect.objectContaining({ code: 'ERR_AGENT_PROXY_HEADER' }));
    bad(h.subarray(0, 10));
    bad(h.subarray(0, h.length - 1));
    const wrongLen = Buffer.from(h);
    wrongLen.writeUInt16BE(h.readUInt16BE(14) - 2, 14); // the last TLV now overruns the block
    bad(wrongLen);
    const v1 = Buffer.from(h);
    v1[12] = 0x11;
    bad(v1);
    bad(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'));
  });
});
