// Shared pieces of the benchmarks: a bounded closed-loop load generator over keep-alive HTTPS,
// percentiles, and child processes that are always cleaned up.
import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest, type Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, type Agent } from 'node:https';

export interface LoadResult {
  readonly ops: number;
  readonly errors: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly p50ms: number;
  readonly p99ms: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

export interface Target {
  readonly url: string;
  /** An https.Agent for https:// URLs, an http.Agent for http:// (the peer may speak plain HTTP). */
  readonly agent: Agent | HttpAgent;
  /** Returns the body of the i-th request. */
  readonly body: (i: number) => Buffer;
  readonly ok: (status: number, body: Buffer) => boolean;
}

function once(t: Target, i: number): Promise<boolean> {
  const body = t.body(i);
  return new Promise((resolve) => {
    const request = t.url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = request(
      t.url,
      {
        method: 'POST',
        agent: t.agent,
        headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(t.ok(res.statusCode ?? 0, Buffer.concat(chunks))));
      },
    );
    req.on('error', () => resolve(false));
    req.end(body);
  });
}

/** Runs `concurrency` closed loops against the targets (round-robin) for `seconds`. */
export async function load(
  targets: readonly Target[],
  concurrency: number,
  seconds: number,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let i = 0;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      const t = targets[w % targets.length] as Target;
      while (performance.now() < end) {
        const t0 = performance.now();
        const ok = await once(t, i++);
        if (ok) latencies.push(performance.now() - t0);
        else errors++;
      }
    }),
  );
  const took = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    ops: latencies.length,
    errors,
    seconds: took,
    perSecond: latencies.length / took,
    p50ms: percentile(latencies, 50),
    p99ms: percentile(latencies, 99),
  };
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** Starts a process and resolves, with what it printed so far, when its output matches `ready`. */
export function startProcess(
  cmd: string,
  args: string[],
  ready: RegExp,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ proc: ChildProcess; output: string }> {
  const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(p);
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (c: Buffer): void => {
      out += c.toString();
      if (ready.test(out)) resolve({ proc: p, output: out });
    };
    p.stdout?.on('data', onData);
    p.stderr?.on('data', onData);
    p.on('error', (err) => reject(new Error(`${cmd}: ${err.message}`)));
    p.on('exit', (code) => reject(new Error(`${cmd} exited with ${code}: ${out}`)));
    setTimeout(() => reject(new Error(`${cmd} not ready after 30 s: ${out}`)), 30_000).unref();
  });
}

export function stopProcess(p: ChildProcess): Promise<void> {
  children.delete(p);
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGTERM');
  });
}

export function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}
