// The on-disk spool: bounded, ordered, and an acknowledged event survives kill -9 of its writer.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Spool } from '../../client/spool.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'edgeward-spool-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('spool', () => {
  it('keeps order, acks by sequence and refuses beyond its bounds', () => {
    const s = new Spool(join(dir, 'bounded.sqlite'), { maxEvents: 3, maxBytes: 1_000_000 });
    expect(s.append(['a', 'b'])).toBe(2);
    expect(s.append(['c', 'd'])).toBe(1);
    expect(s.dropped).toBe(1);
    const rows = s.peek(10);
    expect(rows.map((r) => r.body)).toEqual(['a', 'b', 'c']);
    s.ack(rows[1]!.seq);
    expect(s.peek(10).map((r) => r.body)).toEqual(['c']);
    expect(s.append(['e'])).toBe(1);
    s.close();
    const again = new Spool(join(dir, 'bounded.sqlite'), { maxEvents: 3, maxBytes: 1_000_000 });
    expect(again.peek(10).map((r) => r.body)).toEqual(['c', 'e']);
    again.close();
  });

  it('refuses by bytes too', () => {
    const s = new Spool(join(dir, 'bytes.sqlite'), { maxEvents: 1000, maxBytes: 10 });
    expect(s.append(['12345', '123456'])).toBe(1);
    s.close();
  });

  it('an unopenable spool is ERR_AGENT_SPOOL', async () => {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'a-file'), 'x');
    expect(
      () => new Spool(join(dir, 'a-file', 'sub', 'spool.sqlite'), { maxEvents: 1, maxBytes: 1 }),
    ).toThrow(expect.objectContaining({ code: 'ERR_AGENT_SPOOL' }));
  });

  it('kill -9 of the writer loses no acknowledged event, and order is kept', async () => {
    const file = join(dir, 'crash.sqlite');
    const child = spawn(
      process.execPath,
      ['--import', './test/helpers/ts-loader.mjs', 'test/client/fixtures/spool-child.ts', file],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let acked = -1;
    let buf = '';
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`child produced nothing: ${stderr}`)), 30_000);
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const l of lines) acked = Math.max(acked, Number(l));
        if (acked >= 300) {
          clearTimeout(t);
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.once('exit', () => {
        clearTimeout(t);
        if (acked < 300) reject(new Error(`child exited early: ${stderr}`));
      });
    });
    await new Promise((r) => child.once('close', r));
    const s = new Spool(file, { maxEvents: 1_000_000, maxBytes: 1024 ** 3 });
    const rows = s.peek(1_000_000);
    s.close();
    const seqs = rows.map((r) => Number((JSON.parse(r.body) as Record<string, string>)['event.reason']));
    expect(seqs.length).toBeGreaterThan(acked);
    // Every acknowledged event is there, in order, with nothing missing in between.
    expect(seqs.slice(0, acked + 1)).toEqual(Array.from({ length: acked + 1 }, (_, i) => i));
  });
});
