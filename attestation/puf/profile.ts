// The fuzzy-extractor profile: every parameter of the construction, fixed and named, so that a
// registration record names exactly one profile and a hostile record cannot choose weak ones.
// The arithmetic behind these numbers is in docs/puf.md.

export interface PufProfile {
  readonly name: 'ew-puf-v1';
  /** Raw cells in the key region of the PUF (packed LSB-first when read). */
  readonly responseBits: number;
  /** Reads averaged (per-bit majority) at manufacture to form the reference response. */
  readonly enrollReads: number;
  /** Von Neumann debiasing of cell pairs; the kept pairs' first bits feed the code. */
  readonly debias: 'von-neumann';
  /** Inner repetition code length (odd). */
  readonly repetition: number;
  /** Outer binary BCH code (n, k, t) and how many blocks of it. */
  readonly bch: { readonly n: number; readonly k: number; readonly t: number };
  readonly blocks: number;
  /** Strong extractor: HMAC-SHA-256 keyed by a 32-byte salt; output is an Ed25519 seed. */
  readonly extractor: 'hmac-sha256';
  readonly saltBytes: number;
  /** Challenge-response pairs: response length and the accepted Hamming distance. */
  readonly crp: {
    readonly challengeBytes: number;
    readonly responseBits: number;
    readonly threshold: number;
  };
}

export const PROFILE_V1: PufProfile = Object.freeze({
  name: 'ew-puf-v1',
  responseBits: 32768,
  enrollReads: 15,
  debias: 'von-neumann',
  repetition: 7,
  bch: Object.freeze({ n: 255, k: 71, t: 29 }),
  blocks: 2,
  extractor: 'hmac-sha256',
  saltBytes: 32,
  crp: Object.freeze({ challengeBytes: 16, responseBits: 512, threshold: 169 }),
});

/** Debiased bits the code consumes: blocks x n x repetition. */
export function codeBits(p: PufProfile): number {
  return p.blocks * p.bch.n * p.repetition;
}

/** Secret message bits, i.e. the min-entropy left after the code offset leaks n - k bits. */
export function messageBits(p: PufProfile): number {
  return p.blocks * p.bch.k;
}

export const PROFILES: Readonly<Record<string, PufProfile>> = Object.freeze({
  [PROFILE_V1.name]: PROFILE_V1,
});

/** The profile as plain JSON for the record and the challenge. */
export function profileParams(p: PufProfile): Record<string, unknown> {
  return {
    responseBits: p.responseBits,
    debias: p.debias,
    repetition: p.repetition,
    bch: { n: p.bch.n, k: p.bch.k, t: p.bch.t },
    blocks: p.blocks,
    extractor: p.extractor,
  };
}
