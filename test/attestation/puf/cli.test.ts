import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runPufCommand } from '../../../attestation/puf/cli.js';
import { parsePufRecordText } from '../../../attestation/puf/record.js';
import { tempDir } from '../../helpers/tmp.js';

function io(): { out: string[]; err: string[]; io: { out: (l: string) => void; err: (l: string) => void } } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (l) => out.push(l), err: (l) => err.push(l) } };
}

describe('edgeward puf', () => {
  const dir = tempDir('edgeward-puf-cli-');

  it('provision writes an owner-only record that validates, and refuses to overwrite it', async () => {
    const file = join(dir, 'dev1.json');
    const args = [
      'provision',
      '--id',
      'spiffe://factory.example/device/d1',
      '--puf',
      'sim:cli-1',
      '--ber',
      '0.10',
      '--crps',
      '2',
      '--out',
      file,
    ];
    const a = io();
    expect(await runPufCommand(args, a.io)).toBe(0);
    const rec = parsePufRecordText(readFileSync(file, 'utf8'));
    expect(rec.id).toBe('spiffe://factory.example/device/d1');
    expect(rec.crps).toHaveLength(2);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(a.out.join('\n')).toContain(rec.publicKey.toString('hex'));
    const b = io();
    expect(await runPufCommand(args, b.io)).toBe(1);
    expect(b.err.join('\n')).toContain('refusing to overwrite');
  });

  it('reports bad input with a code or usage', async () => {
    const a = io();
    expect(
      await runPufCommand(
        [
          'provision',
          '--id',
          'spiffe://factory.example/device/d2',
          '--puf',
          'tpm:0',
          '--out',
          join(dir, 'x.json'),
        ],
        a.io,
      ),
    ).toBe(1);
    expect(a.err.join('\n')).toContain('ERR_ATT_PUF_SPEC_INVALID');
    const b = io();
    expect(
      await runPufCommand(['provision', '--id', 'bad', '--puf', 'sim:x', '--out', join(dir, 'y.json')], b.io),
    ).toBe(1);
    expect(b.err.join('\n')).toContain('ERR_ID_INVALID');
    const c = io();
    expect(await runPufCommand(['provision', '--puf', 'sim:x', '--bogus'], c.io)).toBe(2);
    expect(await runPufCommand(['nothing'], c.io)).toBe(2);
    expect(
      await runPufCommand(
        [
          'provision',
          '--id',
          'spiffe://factory.example/device/d3',
          '--puf',
          'sim:x,ber=0.1',
          '--ber',
          '0.2',
          '--out',
          join(dir, 'z.json'),
        ],
        c.io,
      ),
    ).toBe(2);
  });

  it('eval prints the figures for each bit error rate', async () => {
    const a = io();
    expect(
      await runPufCommand(
        [
          'eval',
          '--reads',
          '200',
          '--devices',
          '2',
          '--ber',
          '0.15',
          '--pipeline-reads',
          '3',
          '--hd-devices',
          '3',
        ],
        a.io,
      ),
    ).toBe(0);
    const text = a.out.join('\n');
    for (const s of [
      'BER 15 %',
      'measured failure',
      'analytic bound',
      'intra-device FHD',
      'inter-device FHD',
      'reconstruction     seed median',
      'Ed25519 key (tweetnacl)',
    ]) {
      expect(text).toContain(s);
    }
  });
});
