// 53-bit hashes of (entity kind, value) for the integer-keyed timeline index. Not a security
// boundary: a collision only makes a query re-check more rows (the text column decides).
export const ENTITY = { sourceIdentity: 1, destinationIdentity: 2, sourceIp: 3, serial: 4 } as const;

export function entityHash(kind: number, value: string): number {
  // Two independent 32-bit multiplicative hashes (FNV-1a and a murmur-style constant).
  let a = 0x811c9dc5 ^ kind;
  let b = 0x5bd1e995 ^ (kind * 0x9e3779b1);
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return (a >>> 0) * 0x200000 + ((b >>> 0) & 0x1fffff);
}
