// The one serial form every comparison uses (CRL, decisions, events, CA store, enforcement).
import { describe, expect, it } from 'vitest';
import { isCanonicalSerial, normalizeSerial } from '../../common/x509.js';

describe('normalizeSerial', () => {
  it('writes lower-case hex without colons or leading zeros', () => {
    for (const [given, want] of [
      ['4f1a', '4f1a'],
      ['4F1A', '4f1a'],
      ['00:4F:1A', '4f1a'],
      ['004f1a', '4f1a'],
      ['0', '0'],
      ['0000', '0'],
      ['AB:CD:EF', 'abcdef'],
    ]) {
      expect(normalizeSerial(given as string), given).toBe(want);
      expect(isCanonicalSerial(given), given).toBe(given === want);
    }
  });

  it('refuses what is not a serial with ERR_SERIAL_INVALID', () => {
    for (const bad of ['', 'xyz', '4f 1a', ':4f', '4f:', '4f::1a', '0x4f', 'a'.repeat(65), '1'.repeat(200)])
      expect(() => normalizeSerial(bad), bad).toThrow(
        expect.objectContaining({ code: 'ERR_SERIAL_INVALID' }),
      );
    // Leading zeros do not count towards the 64 digits.
    expect(normalizeSerial(`00${'a'.repeat(64)}`)).toBe('a'.repeat(64));
  });
});
