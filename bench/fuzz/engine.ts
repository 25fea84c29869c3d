// The fuzzing engine: a seeded mutator over real samples (byte and bit flips, truncation,
// insertion, deletion, splices, length-field edits, dictionary tokens) and a runner that holds
// every input to the oracles: a success or a refusal with a documented code, nothing else; the
// target's own checks (round trips, no yes to a mutated signed input); a time bound per input and
// a bounded heap. Used by the smoke tests (test/fuzz/) and by `npm run fuzz` for long runs.
import { performance } from 'node:perf_hooks';
import { EdgewardError, type ErrorCode } from '../../common/errors.js';

/** A deterministic PRNG (xorshift128+ on two 32-bit halves is enough here: sfc32). */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** 0 <= n < max. */
  below(max: number): number {
    return max <= 1 ? 0 : this.u32() % max;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new TypeError('pick from an empty list');
    return items[this.below(items.length)] as T;
  }

  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
}

/** What the oracle says about one input that a target accepted or refused. */
export class OracleFailure extends Error {
  override readonly name = 'OracleFailure';
}

export interface FuzzTarget<R = unknown> {
  readonly name: string;
  /** One line: what is fuzzed and through which function. */
  readonly about: string;
  /** The source files it exercises (repository paths), for the coverage report. */
  readonly sources: readonly string[];
  /** Codes a refusal may carry; anything else is a finding. */
  readonly codes: readonly ErrorCode[];
  /** Real samples to mutate (the corpus, plus samples the target makes at start). */
  seeds(): Promise<Buffer[]> | Buffer[];
  /** Tokens that structure-aware mutation inserts (keywords, punctuation, magic numbers). */
  readonly dictionary?: readonly (string | Buffer)[];
  /**
   * Inputs generated from samples or from scratch (structure-aware tree mutations, property-based
   * arbitraries), besides byte-level mutations of the corpus.
   */
  generate?(rng: Rng): Buffer;
  /** The share of inputs that `generate` makes (default 0.1). */
  readonly generateShare?: number;
  /** Parses/verifies one input. Throws to refuse. */
  run(input: Buffer): R | Promise<R>;
  /**
   * The target's own oracle on an accepted input: round trip, and that a verifier said yes only
   * to an input whose signed content is unchanged. Throws OracleFailure.
   */
  accepted?(input: Buffer, result: R): void | Promise<void>;
  /**
   * Inputs made of fields (a quote and its key, a sealed token's parts): mutations then mostly
   * change one field and the input is put back together, so they reach past the framing.
   */
  readonly fields?: {
    split(input: Buffer): Buffer[] | null;
    join(parts: readonly Buffer[]): Buffer;
  };
  /** Largest input handed to the target (mutations are cut there). */
  readonly maxBytes?: number;
}

export interface Finding {
  readonly target: string;
  readonly kind: 'uncoded' | 'unexpected-code' | 'oracle' | 'slow' | 'memory';
  readonly message: string;
  readonly input: Buffer;
}

export interface RunStats {
  readonly target: string;
  readonly inputs: number;
  readonly accepted: number;
  readonly refused: number;
  /** Refusals by code. */
  readonly codes: Readonly<Record<string, number>>;
  readonly findings: readonly Finding[];
  readonly ms: number;
  /** The longest an input took (ms, wall time; an input over the bound is timed again in CPU time). */
  readonly slowestMs: number;
  readonly heapPeakMb: number;
  readonly corpusSize: number;
}

export interface Feedback {
  readonly batch: number;
  take(): ReadonlySet<string>;
}

export interface RunOptions {
  readonly runs: number;
  readonly seed?: number;
  /** Per-input time bound (ms). */
  readonly boundMs?: number;
  /** Heap bound (MB) checked every few thousand inputs. */
  readonly heapMb?: number;
  /** Stop at the first finding of each kind after this many findings. */
  readonly maxFindings?: number;
  /**
   * Coverage feedback (coverage.ts): `take()` gives the code blocks reached since the last take;
   * a batch that reaches a block not reached before is split until the inputs that did are found,
   * and those join the corpus.
   */
  readonly feedback?: Feedback;
  /** Stop at this time (epoch ms) even if fewer than `runs` inputs ran. */
  readonly deadline?: number;
  readonly progress?: (done: number, stats: { accepted: number; refused: number }) => void;
}

const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff, 0x20, 0x30, 0x40];
const INTERESTING_16 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff];
const INTERESTING_32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x10000, 0xff544347];

function asBuf(t: string | Buffer): Buffer {
  return typeof t === 'string' ? Buffer.from(t, 'utf8') : t;
}

/** One mutation of `input`; `others` are splice partners. */
export function mutateOnce(
  input: Buffer,
  rng: Rng,
  others: readonly Buffer[],
  dict: readonly (string | Buffer)[],
): Buffer {
  const n = input.length;
  const at = (): number => rng.below(n + 1);
  const op = rng.below(dict.length > 0 ? 13 : 11);
  switch (op) {
    case 0: {
      // bit flip
      if (n === 0) return rng.bytes(1);
      const b = Buffer.from(input);
      const i = rng.below(n);
      b[i] = (b[i] as number) ^ (1 << rng.below(8));
      return b;
    }
    case 1: {
      // byte set to a random or interesting value
      if (n === 0) return rng.bytes(1);
      const b = Buffer.from(input);
      b[rng.below(n)] = rng.chance(0.5) ? rng.pick(INTERESTING_8) : rng.u32() & 0xff;
      return b;
    }
    case 2: {
      // truncate
      return input.subarray(0, rng.below(n));
    }
    case 3: {
      // insert random bytes
      const i = at();
      return Buffer.concat([input.subarray(0, i), rng.bytes(1 + rng.below(8)), input.subarray(i)]);
    }
    case 4: {
      // delete a range
      if (n === 0) return input;
      const i = rng.below(n);
      const len = 1 + rng.below(Math.min(16, n - i));
      return Buffer.concat([input.subarray(0, i), input.subarray(i + len)]);
    }
    case 5: {
      // duplicate a range in place
      if (n === 0) return input;
      const i = rng.below(n);
      const len = 1 + rng.below(Math.min(32, n - i));
      const chunk = input.subarray(i, i + len);
      return Buffer.concat([input.subarray(0, i), chunk, chunk, input.subarray(i + len)]);
    }
    case 6: {
      // splice with another sample: our head, its tail
      const other = rng.pick(others.length > 0 ? others : [input]);
      const i = at();
      const j = rng.below(other.length + 1);
      return Buffer.concat([input.subarray(0, i), other.subarray(j)]);
    }
    case 7:
    case 8: {
      // length-field edit: a u8 / u16 / u32 big-endian at some offset set to an interesting value,
      // or to the length of what follows, plus or minus one
      if (n < 1) return rng.bytes(2);
      const width = rng.pick(n >= 4 ? [1, 2, 4] : n >= 2 ? [1, 2] : [1]);
      const i = rng.below(n - width + 1);
      const b = Buffer.from(input);
      const rest = n - i - width;
      const v = rng.chance(0.5)
        ? rest + rng.below(3) - 1
        : width === 1
          ? rng.pick(INTERESTING_8)
          : width === 2
            ? rng.pick(INTERESTING_16)
            : rng.pick(INTERESTING_32);
      const max = width === 1 ? 0xff : width === 2 ? 0xffff : 0xffffffff;
      const clamped = Math.max(0, Math.min(max, v));
      if (width === 1) b[i] = clamped;
      else if (width === 2) b.writeUInt16BE(clamped, i);
      else b.writeUInt32BE(clamped >>> 0, i);
      return b;
    }
    case 9: {
      // swap two ranges' bytes (reorders fields)
      if (n < 2) return input;
      const b = Buffer.from(input);
      const i = rng.below(n);
      const j = rng.below(n);
      const t = b[i] as number;
      b[i] = b[j] as number;
      b[j] = t;
      return b;
    }
    case 10: {
      // arithmetic on one byte (off-by-one lengths and counts)
      if (n === 0) return rng.bytes(1);
      const b = Buffer.from(input);
      const i = rng.below(n);
      b[i] = ((b[i] as number) + rng.below(33) - 16) & 0xff;
      return b;
    }
    default: {
      // insert or overwrite with a dictionary token
      const tok = asBuf(rng.pick(dict));
      const i = at();
      if (op === 11) return Buffer.concat([input.subarray(0, i), tok, input.subarray(i)]);
      return Buffer.concat([input.subarray(0, i), tok, input.subarray(Math.min(n, i + tok.length))]);
    }
  }
}

/** 1 to 4 stacked mutations. */
export function mutate(
  input: Buffer,
  rng: Rng,
  others: readonly Buffer[],
  dict: readonly (string | Buffer)[],
  maxBytes: number,
): Buffer {
  let out = input;
  const k = 1 + (rng.chance(0.6) ? 0 : rng.below(4));
  for (let i = 0; i < k; i++) out = mutateOnce(out, rng, others, dict);
  return out.length > maxBytes ? out.subarray(0, maxBytes) : out;
}

function mutateInput<R>(
  target: FuzzTarget<R>,
  input: Buffer,
  rng: Rng,
  corpus: readonly Buffer[],
  dict: readonly (string | Buffer)[],
  maxBytes: number,
): Buffer {
  const parts = target.fields && rng.chance(0.85) ? target.fields.split(input) : null;
  if (!target.fields || !parts || parts.length === 0) return mutate(input, rng, corpus, dict, maxBytes);
  const i = rng.below(parts.length);
  const next = [...parts];
  next[i] = mutate(parts[i] as Buffer, rng, [], dict, maxBytes);
  return target.fields.join(next);
}

function describe(err: unknown): string {
  if (err instanceof Error)
    return `${err.name}: ${err.message}\n${(err.stack ?? '').split('\n').slice(1, 6).join('\n')}`;
  return String(err);
}

const MAX_CORPUS = 4096;

/** What one input came to: 'accepted', a refusal code, or a finding. */
export type Verdict =
  | { readonly kind: 'accepted' }
  | { readonly kind: 'refused'; readonly code: string }
  | { readonly kind: 'finding'; readonly finding: Omit<Finding, 'target' | 'input'> };

export async function judge<R>(target: FuzzTarget<R>, input: Buffer): Promise<Verdict> {
  let result: R;
  try {
    result = await target.run(input);
  } catch (err) {
    if (err instanceof EdgewardError) {
      if (target.codes.includes(err.code)) return { kind: 'refused', code: err.code };
      return {
        kind: 'finding',
        finding: {
          kind: 'unexpected-code',
          message: `${err.code} is not in the target's set: ${err.message}`,
        },
      };
    }
    return { kind: 'finding', finding: { kind: 'uncoded', message: describe(err) } };
  }
  try {
    await target.accepted?.(input, result);
  } catch (err) {
    return { kind: 'finding', finding: { kind: 'oracle', message: describe(err) } };
  }
  return { kind: 'accepted' };
}

/**
 * Runs `opts.runs` inputs: mostly mutations of the corpus (seeds plus inputs that reached new
 * code, when feedback is on), some generated from scratch.
 */
export async function runTarget<R>(target: FuzzTarget<R>, opts: RunOptions): Promise<RunStats> {
  const rng = new Rng(opts.seed ?? 1);
  const boundMs = opts.boundMs ?? 50;
  const heapMb = opts.heapMb ?? 1024;
  const maxFindings = opts.maxFindings ?? 20;
  const maxBytes = target.maxBytes ?? 64 * 1024;
  const dict = target.dictionary ?? [];
  const seeds = await target.seeds();
  if (seeds.length === 0) throw new TypeError(`target ${target.name} has no seeds`);
  const corpus: Buffer[] = [...seeds];
  const findings: Finding[] = [];
  const codes: Record<string, number> = {};
  const seen = new Set<string>();
  let accepted = 0;
  let refused = 0;
  let slowest = 0;
  let heapPeak = 0;
  const batchSize = opts.feedback?.batch ?? 0;
  let batch: Buffer[] = [];
  const start = performance.now();
  let ran = Math.max(opts.runs, seeds.length);

  const record = (f: Omit<Finding, 'target' | 'input'>, input: Buffer): void => {
    const key = `${f.kind}:${f.message.split('\n')[0] ?? ''}`;
    if (seen.has(key) || findings.length >= maxFindings) return;
    seen.add(key);
    findings.push({ target: target.name, input: Buffer.from(input), ...f });
  };

  const one = async (input: Buffer): Promise<void> => {
    const v = await judge(target, input);
    if (v.kind === 'accepted') accepted++;
    else if (v.kind === 'refused') {
      refused++;
      codes[v.code] = (codes[v.code] ?? 0) + 1;
    } else record(v.finding, input);
  };
  /**
   * What an input costs: the lesser of its wall time (a busy machine counts other processes'
   * turns in it) and the process's CPU time (which counts the threads working for it in
   * parallel, crypto in libuv's pool among them).
   */
  const cost = async (input: Buffer, first?: () => Promise<void>): Promise<number> => {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await (first ?? (() => judge(target, input)))();
    const c = process.cpuUsage(c0);
    return Math.min(performance.now() - t0, (c.user + c.system) / 1000);
  };
  const timed = async (input: Buffer): Promise<void> => {
    const dt = await cost(input, () => one(input));
    if (dt > boundMs) {
      // A pause of the garbage collector is not the input's: time it again, best of three.
      let best = Infinity;
      for (let i = 0; i < 3 && best > boundMs; i++) best = Math.min(best, await cost(input));
      if (best > boundMs)
        record({ kind: 'slow', message: `input of ${input.length} bytes took ${best.toFixed(1)} ms` }, input);
      else slowest = Math.max(slowest, best);
    } else slowest = Math.max(slowest, dt);
  };

  // Replay the seeds first: they must all be judged without a finding.
  for (const s of seeds) await timed(s);
  const known = new Set<string>(opts.feedback?.take() ?? []);
  for (let i = seeds.length; i < opts.runs; i++) {
    const input =
      target.generate && rng.chance(target.generateShare ?? 0.1)
        ? target.generate(rng)
        : mutateInput(target, rng.pick(corpus), rng, corpus, dict, maxBytes);
    await timed(input);
    if (batchSize > 0 && opts.feedback) {
      batch.push(input);
      if (batch.length >= batchSize) {
        const fresh = [...opts.feedback.take()].filter((k) => !known.has(k));
        if (fresh.length > 0) {
          for (const b of await bisect(batch, target, opts.feedback, new Set(fresh))) {
            if (corpus.length < MAX_CORPUS) corpus.push(b);
          }
          for (const k of fresh) known.add(k);
        }
        batch = [];
      }
    }
    if (opts.deadline !== undefined && i % 64 === 0 && Date.now() > opts.deadline) {
      ran = i + 1;
      break;
    }
    if (i % 4096 === 0) {
      const heap = process.memoryUsage().heapUsed / 1048576;
      heapPeak = Math.max(heapPeak, heap);
      if (heap > heapMb) {
        record({ kind: 'memory', message: `heap at ${heap.toFixed(0)} MB after ${i} inputs` }, input);
        ran = i + 1;
        break;
      }
      opts.progress?.(i, { accepted, refused });
    }
  }
  heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed / 1048576);
  return {
    target: target.name,
    inputs: ran,
    accepted,
    refused,
    codes,
    findings,
    ms: performance.now() - start,
    slowestMs: slowest,
    heapPeakMb: heapPeak,
    corpusSize: corpus.length,
  };
}

/** The inputs of a batch that reached one of the `fresh` blocks: halves re-run down to one input. */
async function bisect<R>(
  batch: readonly Buffer[],
  target: FuzzTarget<R>,
  feedback: Feedback,
  fresh: ReadonlySet<string>,
): Promise<Buffer[]> {
  if (batch.length === 1) return [...batch];
  const mid = batch.length >> 1;
  const out: Buffer[] = [];
  for (const half of [batch.slice(0, mid), batch.slice(mid)]) {
    feedback.take();
    for (const b of half) await judge(target, b);
    const hit = [...feedback.take()].some((k) => fresh.has(k));
    if (hit) out.push(...(half.length === 1 ? half : await bisect(half, target, feedback, fresh)));
  }
  return out;
}
