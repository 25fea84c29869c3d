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
