// Random addresses and every accepted way to write each (mapped, compressed anywhere, padded,
// upper-case, dotted tails), for property tests that parts agree on what an address is.
import fc from 'fast-check';

export interface Address {
  readonly family: 4 | 6;
  /** The address as an unsigned integer. */
  readonly n: bigint;
  /** A plain spelling: the dotted quad, or the eight groups uncompressed in lower-case hex. */
  readonly text: string;
}

function groupsOf(n: bigint): number[] {
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  return g;
}

function dotted(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 0xffn)).join('.');
}

const v4 = fc
  .oneof(fc.nat({ max: 0xffffffff }), fc.constantFrom(0x7f000001, 0, 0xffffffff, 0x7f000002, 0x0a000001))
  .map((x) => addressOf(4, BigInt(x)));

// Groups biased towards zero, so that runs to compress are common; never IPv4-mapped.
const v6 = fc
  .array(fc.oneof(fc.constant(0), fc.constant(0), fc.nat({ max: 0xffff })), { minLength: 8, maxLength: 8 })
  .map((g): Address => {
    let n = 0n;
    for (const x of g) n = (n << 16n) | BigInt(x);
    if (n >> 32n === 0xffffn) n ^= 1n << 48n; // the mapped range is IPv4, generated as such
    return addressOf(6, n);
  });

/** The address of that number, in the plain spelling of `text`. */
export function addressOf(family: 4 | 6, n: bigint): Address {
  return {
    family,
    n,
    text:
      family === 4
        ? dotted(n)
        : groupsOf(n)
            .map((x) => x.toString(16))
            .join(':'),
  };
}

export const arbAddress: fc.Arbitrary<Address> = fc.oneof(v4, v6);

/** Every accepted spelling of the address (including the canonical one). */
export function spellings(a: Address): string[] {
  if (a.family === 4) {
    const d = a.text;
    const hi = Number(a.n >> 16n).toString(16);
    const lo = Number(a.n & 0xffffn).toString(16);
    return [
      d,
      `::ffff:${d}`,
      `::FFFF:${d}`,
      `::ffff:${hi}:${lo}`,
      `::FFFF:${hi.toUpperCase()}:${lo.toUpperCase()}`,
      `0:0:0:0:0:ffff:${d}`,
      `0000:0000:0000:0000:0000:ffff:${hi.padStart(4, '0')}:${lo.padStart(4, '0')}`,
    ];
  }
  const g = groupsOf(a.n).map((x) => x.toString(16));
  const out = [g.join(':'), g.map((x) => x.padStart(4, '0')).join(':'), g.join(':').toUpperCase()];
  // `::` in place of any run of zero groups, not only the longest.
  for (let i = 0; i < 8; i++) {
    for (let j = i + 1; j <= 8 && g[j - 1] === '0'; j++) {
      out.push(`${g.slice(0, i).join(':')}::${g.slice(j).join(':')}`);
    }
  }
  // The last 32 bits as a dotted quad.
  out.push(`${g.slice(0, 6).join(':')}:${dotted(a.n & 0xffffffffn)}`);
  return out;
}

/** The reference answer: does the block (base/bits, one family) hold the address? By numbers. */
export function holds(base: Address, bits: number, a: Address): boolean {
  if (base.family !== a.family) return false;
  const shift = BigInt((a.family === 4 ? 32 : 128) - bits);
  return base.n >> shift === a.n >> shift;
}
