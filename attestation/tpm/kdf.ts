// The two TPM key derivation functions (Part 1, 11.4.10): KDFa (SP 800-108 counter mode with HMAC)
// and KDFe (SP 800-56A concatenation KDF). Labels get their terminating zero byte here.
import { createHash, createHmac } from 'node:crypto';
import { u32be } from './structures/reader.js';

function labelBytes(label: string): Buffer {
  const b = Buffer.from(label, 'latin1');
  return b.length > 0 && b[b.length - 1] === 0 ? b : Buffer.concat([b, Buffer.from([0])]);
}

function truncate(out: Buffer, bits: number): Buffer {
  const bytes = Math.ceil(bits / 8);
  const r = Buffer.from(out.subarray(0, bytes));
  if (bits % 8 !== 0 && r.length > 0) r[0] = (r[0] ?? 0) & ((1 << (bits % 8)) - 1);
  return r;
}

export function kdfa(
  hash: string,
  key: Buffer,
  label: string,
  contextU: Buffer,
  contextV: Buffer,
  bits: number,
): Buffer {
  const parts: Buffer[] = [];
  const lab = labelBytes(label);
  const bitsBuf = u32be(bits);
  let have = 0;
  for (let i = 1; have * 8 < bits; i++) {
    const block = createHmac(hash, key)
      .update(u32be(i))
      .update(lab)
      .update(contextU)
      .update(contextV)
      .update(bitsBuf)
      .digest();
    parts.push(block);
    have += block.length;
  }
  return truncate(Buffer.concat(parts), bits);
}

export function kdfe(
  hash: string,
  z: Buffer,
  label: string,
  partyU: Buffer,
  partyV: Buffer,
  bits: number,
): Buffer {
  const parts: Buffer[] = [];
  const lab = labelBytes(label);
  let have = 0;
  for (let i = 1; have * 8 < bits; i++) {
    const block = createHash(hash)
      .update(u32be(i))
      .update(z)
      .update(lab)
      .update(partyU)
      .update(partyV)
      .digest();
    parts.push(block);
    have += block.length;
  }
  return truncate(Buffer.concat(parts), bits);
}
