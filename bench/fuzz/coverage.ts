// Coverage feedback and figures from V8's own block coverage (node:inspector, precise coverage
// with block counts), limited to the target's source files. A take returns the blocks that ran
// since the last take (V8 resets the counters on each take).
import { Session } from 'node:inspector';
import type { Feedback } from './engine.js';

interface Range {
  readonly startOffset: number;
  readonly endOffset: number;
  readonly count: number;
}
interface FunctionCoverage {
  readonly functionName: string;
  readonly ranges: readonly Range[];
}
interface ScriptCoverage {
  readonly url: string;
  readonly functions: readonly FunctionCoverage[];
}

export interface CoverageSummary {
  /** Per source file: functions run / functions V8 knows of, block ranges run / known. */
  readonly files: readonly {
    file: string;
    functionsHit: number;
    functions: number;
    blocksHit: number;
    blocks: number;
  }[];
}

export class BlockCoverage implements Feedback {
  private readonly session = new Session();
  private readonly hitBlocks = new Set<string>();
  private readonly allBlocks = new Map<string, Set<string>>();
  private readonly hitFunctions = new Map<string, Set<string>>();
  private readonly allFunctions = new Map<string, Set<string>>();

  /** `files`: repository paths of the sources (matched against the compiled file's URL). */
  constructor(
    private readonly files: readonly string[],
    readonly batch = 128,
  ) {
    this.session.connect();
    this.post('Profiler.enable');
    this.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  }

  private post(method: string, params?: object): unknown {
    let out: unknown;
    let failure: Error | null = null;
    // A session on the main thread answers synchronously.
    this.session.post(method, params ?? {}, (err, res) => {
      if (err) failure = err;
      out = res;
    });
    if (failure) throw failure as Error;
    return out;
  }

  private fileOf(url: string): string | undefined {
    const path = url.replace(/\.js$/, '.ts');
    return this.files.find((f) => path.endsWith(`/${f}`));
  }

  take(): ReadonlySet<string> {
    const res = this.post('Profiler.takePreciseCoverage') as { result: readonly ScriptCoverage[] };
    const hit = new Set<string>();
    for (const script of res.result) {
      const file = this.fileOf(script.url);
      if (!file) continue;
      let all = this.allBlocks.get(file);
      if (!all) this.allBlocks.set(file, (all = new Set()));
      let fns = this.allFunctions.get(file);
      if (!fns) this.allFunctions.set(file, (fns = new Set()));
      let fnHit = this.hitFunctions.get(file);
      if (!fnHit) this.hitFunctions.set(file, (fnHit = new Set()));
      for (const fn of script.functions) {
        const head = fn.ranges[0];
        if (!head) continue;
        const fnKey = `${head.startOffset}`;
        fns.add(fnKey);
        if (head.count > 0) fnHit.add(fnKey);
        for (const r of fn.ranges) {
          const key = `${file}:${r.startOffset}:${r.endOffset}`;
          all.add(key);
          if (r.count > 0) {
            hit.add(key);
            this.hitBlocks.add(key);
          }
        }
      }
    }
    return hit;
  }

  summary(): CoverageSummary {
    this.take();
    return {
      files: this.files.map((file) => {
        const all = this.allBlocks.get(file) ?? new Set<string>();
        return {
          file,
          functionsHit: this.hitFunctions.get(file)?.size ?? 0,
          functions: this.allFunctions.get(file)?.size ?? 0,
          blocksHit: [...all].filter((k) => this.hitBlocks.has(k)).length,
          blocks: all.size,
        };
      }),
    };
  }

  stop(): void {
    this.post('Profiler.stopPreciseCoverage');
    this.post('Profiler.disable');
    this.session.disconnect();
  }
}
