// The strict DER reader and the writer: round trips, and every hostile encoding refused with
// ERR_DER_MALFORMED (non-minimal lengths and integers, indefinite lengths, truncation, trailing
// bytes, depth, bad times), and derAs turning that into the caller's code.
import { describe, expect, it } from 'vitest';
import {
  children,
  derAs,
  explicit,
  oid,
  parseDer,
  readBitString,
  readBitStringBytes,
  readBool,
  readExplicit,
  readInteger,
  readIntegerBytes,
  readOctetString,
  readOid,
  readSmallInt,
  readTime,
  readTlv,
  seq,
  smallInt,
  time,
  tlv,
  uint,
} from '../../common/der.js';
import { EdgewardError } from '../../common/errors.js';

const hex = (h: string): Buffer => Buffer.from(h.replace(/\s/g, ''), 'hex');
const malformed = (why: string): object => ({ code: 'ERR_DER_MALFORMED', message: `malformed DER: ${why}` });

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('readTlv and parseDer', () => {
  it('reads short and long lengths and the raw encoding', () => {
    const long = tlv(0x04, Buffer.alloc(200, 7));
    expect(long.subarray(0, 3)).toEqual(hex('04 81 c8'));
    const t = parseDer(long, 0x04);
    expect(t.value.length).toBe(200);
    expect(t.raw).toEqual(long);
    expect(readTlv(hex('0500 0101ff'), 2)).toMatchObject({ next: 5, tlv: { tag: 0x01 } });
  });
  it.each([
    ['', 'truncated header'],
    ['30', 'truncated header'],
    ['3080 0000', 'indefinite length'],
    ['3081 05 0000000000', 'non-minimal length'],
    ['3082 0005 0000000000', 'non-minimal length'],
    ['3082 0090', 'non-minimal length'],
    ['3085 0000000001 00', 'length too large'],
    ['3082 01', 'truncated length'],
    ['3003 0101', 'length past the end'],
    ['1f01 00', 'high tag numbers are not used here'],
  ])('refuses %s (%s)', (input, why) => {
    expect(thrown(() => parseDer(hex(input)))).toMatchObject(malformed(why));
  });
  it('refuses trailing bytes and an unexpected tag', () => {
    expect(thrown(() => parseDer(hex('0500 00')))).toMatchObject(malformed('trailing bytes'));
    expect(thrown(() => parseDer(hex('0500'), 0x30))).toMatchObject(malformed('expected tag 0x30'));
  });
  it('refuses children of a primitive and nesting past the limit', () => {
    expect(thrown(() => children(parseDer(hex('0401 00'))))).toMatchObject(
      malformed('expected a constructed value'),
    );
    expect(thrown(() => children(parseDer(seq()), 33))).toMatchObject(malformed('too deep'));
    expect(children(parseDer(seq(smallInt(1), smallInt(2)))).map((c) => readSmallInt(c))).toEqual([1, 2]);
  });
});

describe('OBJECT IDENTIFIER', () => {
  it.each([
    '1.2.840.10045.4.3.2',
    '2.5.29.37',
    '0.9.2342.19200300.100.1.25',
    '2.23.133.8.1',
    '1.3.6.1.4.1.311',
  ])('round-trips %s', (dotted) => {
    expect(readOid(parseDer(oid(dotted)))).toBe(dotted);
  });
  it('encodes a first subidentifier of 128 or more in base 128 (arcs 2.48 and up)', () => {
    expect(oid('2.47')).toEqual(hex('0601 7f'));
    expect(oid('2.48')).toEqual(hex('0602 8100'));
    expect(oid('2.999.3')).toEqual(hex('0603 883703')); // X.690 8.19.5 example
    expect(readOid(parseDer(hex('0603 883703')))).toBe('2.999.3');
    expect(readOid(parseDer(hex('0602 8100')))).toBe('2.48');
  });
  it('refuses what is not an OID on the writer side', () => {
    for (const bad of ['1', '3.1', '1.40', '1.2.x', '1.-2']) expect(() => oid(bad)).toThrow(TypeError);
  });
  it.each([
    ['0600', 'bad OID length'],
    ['0602 2a86', 'truncated OID'],
    ['0603 2a8001', 'non-minimal OID arc'],
    ['060b 2a ffffffffffffffffff7f', 'OID arc too large'],
  ])('refuses %s (%s)', (input, why) => {
    expect(thrown(() => readOid(parseDer(hex(input))))).toMatchObject(malformed(why));
  });
  it('refuses an OID longer than 64 bytes', () => {
    expect(thrown(() => readOid(parseDer(tlv(0x06, Buffer.alloc(65, 1)))))).toMatchObject(
      malformed('bad OID length'),
    );
  });
});

describe('INTEGER', () => {
  it('reads unsigned and signed values of any size', () => {
    expect(readInteger(parseDer(uint(Buffer.from([0x80]))))).toBe(128n);
    expect(readInteger(parseDer(hex('0201 ff')))).toBe(-1n);
    expect(readInteger(parseDer(hex('0202 ff7f')))).toBe(-129n);
    expect(readInteger(parseDer(hex('0201 00')))).toBe(0n);
    const big = Buffer.from('7f' + 'ff'.repeat(31), 'hex');
    expect(readInteger(parseDer(uint(big)))).toBe(BigInt('0x' + big.toString('hex')));
    expect(readIntegerBytes(parseDer(uint(hex('00 00 9a'))))).toEqual(hex('00 9a'));
    expect(readSmallInt(parseDer(smallInt(65537)))).toBe(65537);
  });
  it.each([
    ['0200', 'empty INTEGER'],
    ['0202 0001', 'non-minimal INTEGER'],
    ['0202 ff80', 'non-minimal INTEGER'],
  ])('refuses %s (%s)', (input, why) => {
    expect(thrown(() => readInteger(parseDer(hex(input))))).toMatchObject(malformed(why));
  });
  it('readSmallInt refuses negative and oversized values', () => {
    expect(thrown(() => readSmallInt(parseDer(hex('0201 80'))))).toMatchObject(malformed('negative INTEGER'));
    expect(thrown(() => readSmallInt(parseDer(hex('0207 01000000000000'))))).toMatchObject(
      malformed('bad INTEGER'),
    );
  });
  it('refuses another tag where an INTEGER is expected', () => {
    expect(thrown(() => readInteger(parseDer(hex('0401 01'))))).toMatchObject(
      malformed('expected an INTEGER'),
    );
    expect(thrown(() => readInteger(undefined))).toMatchObject(malformed('expected an INTEGER'));
  });
});

describe('BIT STRING, OCTET STRING, BOOLEAN, EXPLICIT', () => {
  it('reads bit strings with and without unused bits', () => {
    expect(readBitString(parseDer(hex('0302 0780')))).toEqual({ bytes: hex('80'), unusedBits: 7 });
    expect(readBitStringBytes(parseDer(hex('0303 00abcd')))).toEqual(hex('abcd'));
    expect(readBitString(parseDer(hex('0301 00')))).toEqual({ bytes: Buffer.alloc(0), unusedBits: 0 });
  });
  it.each([
    ['0300', 'bad BIT STRING'],
    ['0302 0800', 'bad BIT STRING'],
    ['0301 01', 'bad BIT STRING'],
    ['0302 0181', 'BIT STRING unused bits are not zero'],
  ])('refuses bit string %s (%s)', (input, why) => {
    expect(thrown(() => readBitString(parseDer(hex(input))))).toMatchObject(malformed(why));
  });
  it('readBitStringBytes refuses unused bits (keys and signatures are whole bytes)', () => {
    expect(thrown(() => readBitStringBytes(parseDer(hex('0302 0780'))))).toMatchObject(
      malformed('BIT STRING with unused bits'),
    );
  });
  it('reads OCTET STRING and BOOLEAN, refusing BER booleans', () => {
    expect(readOctetString(parseDer(hex('0402 beef')))).toEqual(hex('beef'));
    expect(readBool(parseDer(hex('0101 ff')))).toBe(true);
    expect(readBool(parseDer(hex('0101 00')))).toBe(false);
    expect(thrown(() => readBool(parseDer(hex('0101 01'))))).toMatchObject(malformed('bad BOOLEAN'));
    expect(thrown(() => readBool(parseDer(hex('0102 ffff'))))).toMatchObject(malformed('bad BOOLEAN'));
  });
  it('reads exactly one value inside [n] EXPLICIT', () => {
    expect(readSmallInt(readExplicit(parseDer(explicit(0, smallInt(2))), 0))).toBe(2);
    expect(thrown(() => readExplicit(parseDer(explicit(0, smallInt(2))), 1))).toMatchObject(
      malformed('expected [1] EXPLICIT'),
    );
    expect(
      thrown(() => readExplicit(parseDer(explicit(3, Buffer.concat([smallInt(1), smallInt(2)]))), 3)),
    ).toMatchObject(malformed('[3] EXPLICIT holds 2 values'));
  });
});

describe('time', () => {
  it('round-trips UTCTime and GeneralizedTime at second precision', () => {
    for (const iso of [
      '1950-01-01T00:00:00Z',
      '2026-12-07T07:30:05Z',
      '2049-12-31T23:59:59Z',
      '2050-01-01T00:00:00Z',
    ]) {
      const ms = Date.parse(iso);
      const enc = time(ms + 999);
      expect(enc[0]).toBe(ms < Date.parse('2050-01-01T00:00:00Z') ? 0x17 : 0x18);
      expect(readTime(parseDer(enc))).toBe(ms);
    }
    expect(readTime(parseDer(tlv(0x17, Buffer.from('491231235959Z'))))).toBe(
      Date.parse('2049-12-31T23:59:59Z'),
    );
    expect(readTime(parseDer(tlv(0x17, Buffer.from('500101000000Z'))))).toBe(
      Date.parse('1950-01-01T00:00:00Z'),
    );
  });
  it.each([
    [0x17, '2612070730Z'],
    [0x17, '261207073005'],
    [0x17, '261207073005+0100'],
    [0x17, '261307073005Z'],
    [0x17, '260230000000Z'],
    [0x17, '261207240000Z'],
    [0x17, '261207076000Z'],
    [0x18, '20261207073005.5Z'],
    [0x18, '261207073005Z'],
    [0x17, '2６1207073005Z'],
  ])('refuses %i %s', (tag, text) => {
    expect(thrown(() => readTime(parseDer(tlv(tag, Buffer.from(text)))))).toMatchObject({
      code: 'ERR_DER_MALFORMED',
    });
  });
  it('refuses another tag', () => {
    expect(thrown(() => readTime(parseDer(hex('0401 00'))))).toMatchObject(
      malformed('expected a UTCTime or GeneralizedTime'),
    );
  });
});

describe('derAs', () => {
  it("turns a DER failure into the caller's code and keeps the cause", () => {
    const err = thrown(() => derAs('ERR_AGENT_CRL_MALFORMED', 'CRL', () => parseDer(hex('3081 05'))));
    expect(err).toBeInstanceOf(EdgewardError);
    expect(err).toMatchObject({ code: 'ERR_AGENT_CRL_MALFORMED', message: 'CRL: non-minimal length' });
    expect((err as Error).cause).toMatchObject({ code: 'ERR_DER_MALFORMED' });
  });
  it('passes other errors and results through', () => {
    expect(derAs('ERR_AGENT_CRL_MALFORMED', 'CRL', () => 7)).toBe(7);
    const other = new EdgewardError('ERR_SERIAL_INVALID');
    expect(
      thrown(() =>
        derAs('ERR_AGENT_CRL_MALFORMED', 'CRL', () => {
          throw other;
        }),
      ),
    ).toBe(other);
  });
});
