// Binary primitive BCH codes of length 255 over GF(2^8): systematic encoding and bounded-distance
// decoding (syndromes, Berlekamp-Massey, Chien search). Corrects up to t errors per block and
// reports failure (never a wrong guess it could detect) when the error locator is inconsistent.

const PRIM = 0x11d; // x^8 + x^4 + x^3 + x^2 + 1
const N = 255;
const EXP = new Uint8Array(512);
const LOG = new Int16Array(256);
{
  let x = 1;
  for (let i = 0; i < N; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= PRIM;
  }
  for (let i = N; i < 512; i++) EXP[i] = EXP[i - N]!;
  LOG[0] = -1;
}

function gmul(a: number, b: number): number {
  if (a === 0 || b === 0) return 0;
  return EXP[LOG[a]! + LOG[b]!]!;
}

function gdiv(a: number, b: number): number {
  if (a === 0) return 0;
  return EXP[(LOG[a]! - LOG[b]! + N) % N]!;
}

export interface BchCode {
  readonly n: number;
  readonly k: number;
  readonly t: number;
  /** Systematic encoding of k message bits (0/1 values) into n code bits (parity first). */
  encode(message: Uint8Array): Uint8Array;
  /** Corrects `word` (n bits of 0/1) in place; returns the number of errors fixed, or -1. */
  decode(word: Uint8Array): number;
}

/** Binary generator polynomial: product of the distinct minimal polynomials of a^1..a^2t. */
function generator(t: number): Uint8Array {
  let g = new Uint8Array([1]);
  const seen = new Set<number>();
  for (let i = 1; i <= 2 * t; i++) {
    if (seen.has(i)) continue;
    // Cyclotomic coset of i mod 255 gives the conjugates whose product is i's minimal polynomial.
    const coset: number[] = [];
    let j = i;
    while (!coset.includes(j)) {
      coset.push(j);
      seen.add(j);
      j = (j * 2) % N;
    }
    let m = new Uint8Array([1]); // coefficients in GF(256), constant term first
    for (const e of coset) {
      const root = EXP[e]!;
      const next = new Uint8Array(m.length + 1);
      for (let a = 0; a < m.length; a++) {
        next[a + 1]! ^= m[a]!;
        next[a]! ^= gmul(m[a]!, root);
      }
      m = next;
    }
    const prod = new Uint8Array(g.length + m.length - 1);
    for (let a = 0; a < g.length; a++) {
      if (!g[a]) continue;
      for (let b = 0; b < m.length; b++) {
        if (m[b]! > 1) throw new Error('minimal polynomial is not binary');
        prod[a + b]! ^= m[b]!;
      }
    }
    g = prod;
  }
  return g;
}

const cache = new Map<string, BchCode>();

export function bchCode(k: number, t: number): BchCode {
  const key = `${k}/${t}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const g = generator(t);
  const r = g.length - 1;
  if (N - r !== k) throw new TypeError(`BCH(255, ${k}, ${t}) does not exist (generator degree ${r})`);

  const encode = (message: Uint8Array): Uint8Array => {
    if (message.length !== k) throw new TypeError('BCH encode: wrong message length');
    const word = new Uint8Array(N);
    word.set(message, r);
    // Remainder of m(x) x^r mod g(x), by long division from the top coefficient down.
    const rem = new Uint8Array(N);
    rem.set(message, r);
    for (let i = N - 1; i >= r; i--) {
      if (!rem[i]) continue;
      for (let j = 0; j <= r; j++) rem[i - r + j]! ^= g[j]!;
    }
    for (let i = 0; i < r; i++) word[i] = rem[i]!;
    return word;
  };

  const syn = new Uint8Array(2 * t + 1);
  const decode = (word: Uint8Array): number => {
    if (word.length !== N) throw new TypeError('BCH decode: wrong word length');
    syn.fill(0);
    let any = 0;
    // Odd syndromes directly; even ones are squares in characteristic 2.
    for (let i = 0; i < N; i++) {
      if (!word[i]) continue;
      for (let j = 1; j <= 2 * t; j += 2) syn[j]! ^= EXP[(i * j) % N]!;
    }
    for (let j = 2; j <= 2 * t; j += 2) syn[j] = gmul(syn[j >>> 1]!, syn[j >>> 1]!);
    for (let j = 1; j <= 2 * t; j++) any |= syn[j]!;
    if (any === 0) return 0;

    // Berlekamp-Massey for the error locator polynomial C(x).
    const C = new Uint8Array(t + 2);
    let B = new Uint8Array(t + 2);
    C[0] = 1;
    B[0] = 1;
    let L = 0;
    let m = 1;
    let b = 1;
    for (let n = 0; n < 2 * t; n++) {
      let d = syn[n + 1]!;
      for (let i = 1; i <= L; i++) d ^= gmul(C[i]!, syn[n + 1 - i]!);
      if (d === 0) {
        m++;
        continue;
      }
      const coef = gdiv(d, b);
      const T = C.slice();
      for (let i = 0; i + m < C.length; i++) if (B[i]) C[i + m]! ^= gmul(coef, B[i]!);
      if (2 * L <= n) {
        L = n + 1 - L;
        B = T;
        b = d;
        m = 1;
      } else {
        m++;
      }
      if (L > t) return -1;
    }
    // Chien search: position p is in error when C(a^-p) = 0.
    let found = 0;
    const logC = new Int16Array(L + 1);
    for (let i = 0; i <= L; i++) logC[i] = C[i] ? LOG[C[i]!]! : -1;
    const flips: number[] = [];
    for (let p = 0; p < N; p++) {
      let v = 0;
      const inv = (N - p) % N;
      for (let i = 0; i <= L; i++) {
        const lc = logC[i]!;
        if (lc >= 0) v ^= EXP[(lc + inv * i) % N]!;
      }
      if (v === 0) {
        flips.push(p);
        found++;
      }
    }
    if (found !== L) return -1;
    for (const p of flips) word[p]! ^= 1;
    return found;
  };

  const code: BchCode = { n: N, k, t, encode, decode };
  cache.set(key, code);
  return code;
}
