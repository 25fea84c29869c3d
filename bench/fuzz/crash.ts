// The kill step of the crash suites: a child process (this script with `args`) writes and prints
// one number per acknowledged write; it is killed with SIGKILL at a random point 10–200 ms after
// its first acknowledgement.
import { spawn } from 'node:child_process';

/** Runs the child until its kill; the highest number it acknowledged, or `before` if higher. */
export async function killWhileWriting(
  script: string,
  args: readonly string[],
  before: number,
): Promise<number> {
  let acknowledged = before;
  const p = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  p.stdout.setEncoding('utf8');
  p.stdout.on('data', (d: string) => {
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) acknowledged = Math.max(acknowledged, Number(l));
  });
  await new Promise<void>((resolve) => {
    p.stdout.once('data', () => setTimeout(() => p.kill('SIGKILL'), 10 + Math.floor(Math.random() * 190)));
    p.once('exit', () => resolve());
  });
  return acknowledged;
}

/** The kill count a crash suite is run with (its first argument, 50 when absent); exits 2 on a bad one. */
export function killCountArg(arg: string | undefined, name: string): number {
  const n = Number(arg ?? 50);
  if (!Number.isSafeInteger(n) || n < 1) {
    console.error(`${name}: the kill count must be a positive integer (got ${JSON.stringify(arg)})`);
    process.exit(2);
  }
  return n;
}
