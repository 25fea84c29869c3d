// The prover's failure modes a device operator meets first: tpm2-tools missing, TPM unreachable,
// and a hostile challenge. (Its happy path runs against swtpm in swtpm.test.ts.)
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createTpmProver } from '../../../attestation/tpm/index.js';
import { codeOf, csrKey } from './fixtures.js';

const savedPath = process.env['PATH'];
afterEach(() => {
  process.env['PATH'] = savedPath;
});

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const a = s.address();
  await new Promise((r) => s.close(r));
  return typeof a === 'object' && a ? a.port : 1;
}

describe('tpm prover', () => {
  it('says clearly when tpm2-tools are missing (ERR_ATT_TPM_TOOLS_MISSING)', async () => {
    process.env['PATH'] = '/nonexistent';
    const p = createTpmProver({ tcti: 'swtpm:host=127.0.0.1,port=1' });
    try {
      expect(await codeOf(p.evidence())).toBe('ERR_ATT_TPM_TOOLS_MISSING');
    } finally {
      await p.close?.();
    }
  });

  it('says clearly when the TPM cannot be reached (ERR_ATT_TPM_UNREACHABLE)', async () => {
    const lines: string[] = [];
    const p = createTpmProver({
      tcti: `swtpm:host=127.0.0.1,port=${await closedPort()}`,
      print: (l) => lines.push(l),
    });
    try {
      expect(await codeOf(p.evidence())).toBe('ERR_ATT_TPM_UNREACHABLE');
      expect(lines[0]).toMatch(/^talking to the TPM at swtpm:host=127\.0\.0\.1/);
    } finally {
      await p.close?.();
    }
  });

  it('refuses to respond before evidence (a programming error, TypeError)', async () => {
    const p = createTpmProver({ tcti: 'swtpm:host=127.0.0.1,port=1' });
    await expect(p.respond({}, csrKey())).rejects.toThrow(TypeError);
  });
});
