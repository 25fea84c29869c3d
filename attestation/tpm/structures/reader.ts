// A bounded big-endian reader for TPM wire structures: every read checks the remaining length and
// `end()` refuses trailing bytes, so hostile blobs fail with a coded error instead of a RangeError.
import { EdgewardError } from '../../../common/errors.js';

export function malformed(what: string, detail?: Record<string, unknown>): EdgewardError {
  return new EdgewardError('ERR_ATT_TPM_STRUCTURE_MALFORMED', `malformed TPM structure: ${what}`, {
    detail: { what, ...detail },
  });
}

export class TpmReader {
  private pos = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, field: string): void {
    if (n < 0 || this.pos + n > this.buf.length) {
      throw malformed(`${this.what}: ${field} runs past the end`, { offset: this.pos, need: n });
    }
  }

  u8(field: string): number {
    this.need(1, field);
    return this.buf.readUInt8(this.pos++);
  }

  u16(field: string): number {
    this.need(2, field);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(field: string): number {
    this.need(4, field);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(field: string): bigint {
    this.need(8, field);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  bytes(n: number, field: string): Buffer {
    this.need(n, field);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A TPM2B: u16 size then that many bytes, with an optional upper bound from the spec. */
  tpm2b(field: string, max = 0xffff): Buffer {
    const n = this.u16(`${field}.size`);
    if (n > max) throw malformed(`${this.what}: ${field} larger than ${max} bytes`, { size: n });
    return this.bytes(n, field);
  }

  end(): void {
    if (this.pos !== this.buf.length) {
      throw malformed(`${this.what}: ${this.buf.length - this.pos} trailing bytes`, { offset: this.pos });
    }
  }
}

export function u16be(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

export function u32be(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

export function tpm2b(data: Buffer): Buffer {
  if (data.length > 0xffff) throw new TypeError('TPM2B payload too large');
  return Buffer.concat([u16be(data.length), data]);
}
