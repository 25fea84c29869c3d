// TPMS_ATTEST (Part 2, 10.12) for quotes, and TPML_PCR_SELECTION (Part 2, 10.9.7).
import { EdgewardError } from '../../../common/errors.js';
import { TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE } from './constants.js';
import { TpmReader, malformed, u16be, u32be } from './reader.js';

export interface PcrSelection {
  readonly hashAlg: number;
  /** Ascending PCR indices. */
  readonly pcrs: readonly number[];
}

export interface ClockInfo {
  readonly clock: bigint;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly safe: boolean;
}

export interface QuoteAttest {
  readonly magic: number;
  readonly type: number;
  readonly qualifiedSigner: Buffer;
  readonly extraData: Buffer;
  readonly clockInfo: ClockInfo;
  readonly firmwareVersion: bigint;
  readonly pcrSelect: readonly PcrSelection[];
  readonly pcrDigest: Buffer;
}

const MAX_PCR_BANKS = 16;
const MAX_SELECT_BYTES = 4; // PCR_SELECT_MAX for 24..32 PCRs

export function readPcrSelection(r: TpmReader): PcrSelection[] {
  const count = r.u32('pcrSelect.count');
  if (count > MAX_PCR_BANKS) throw malformed('TPML_PCR_SELECTION: too many banks', { count });
  const out: PcrSelection[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < count; i++) {
    const hashAlg = r.u16('pcrSelections.hash');
    const size = r.u8('pcrSelections.sizeofSelect');
    if (size > MAX_SELECT_BYTES) throw malformed('TPML_PCR_SELECTION: sizeofSelect too large', { size });
    const bits = r.bytes(size, 'pcrSelections.pcrSelect');
    if (seen.has(hashAlg)) throw malformed('TPML_PCR_SELECTION: bank listed twice', { hashAlg });
    seen.add(hashAlg);
    const pcrs: number[] = [];
    for (let byte = 0; byte < size; byte++) {
      for (let bit = 0; bit < 8; bit++) if (((bits[byte] ?? 0) >> bit) & 1) pcrs.push(byte * 8 + bit);
    }
    out.push({ hashAlg, pcrs });
  }
  return out;
}

export function parsePcrSelection(buf: Buffer): PcrSelection[] {
  const r = new TpmReader(buf, 'TPML_PCR_SELECTION');
  const sel = readPcrSelection(r);
  r.end();
  return sel;
}

export function encodePcrSelection(sel: readonly PcrSelection[]): Buffer {
  const parts: Buffer[] = [u32be(sel.length)];
  for (const s of sel) {
    const bits = Buffer.alloc(3);
    for (const p of s.pcrs) {
      if (!Number.isInteger(p) || p < 0 || p > 23) throw new TypeError(`PCR index out of range: ${p}`);
      bits[p >> 3] = (bits[p >> 3] ?? 0) | (1 << (p & 7));
    }
    parts.push(u16be(s.hashAlg), Buffer.from([3]), bits);
  }
  return Buffer.concat(parts);
}

/**
 * Parses a quote's TPMS_ATTEST. Magic and type are checked here because the rest of the layout
 * depends on the type; call this only on bytes whose signature already verified.
 */
export function parseQuoteAttest(buf: Buffer): QuoteAttest {
  const r = new TpmReader(buf, 'TPMS_ATTEST');
  const magic = r.u32('magic');
  if (magic !== TPM_GENERATED_VALUE) {
    throw new EdgewardError('ERR_ATT_TPM_QUOTE_MAGIC', undefined, { detail: { magic } });
  }
  const type = r.u16('type');
  if (type !== TPM_ST_ATTEST_QUOTE)
    throw new EdgewardError('ERR_ATT_TPM_QUOTE_TYPE', undefined, { detail: { type } });
  const qualifiedSigner = r.tpm2b('qualifiedSigner', 2 + 64);
  const extraData = r.tpm2b('extraData', 64);
  const clock = r.u64('clockInfo.clock');
  const resetCount = r.u32('clockInfo.resetCount');
  const restartCount = r.u32('clockInfo.restartCount');
  const safeByte = r.u8('clockInfo.safe');
  if (safeByte > 1) throw malformed('TPMS_ATTEST: clockInfo.safe is not a TPMI_YES_NO');
  const firmwareVersion = r.u64('firmwareVersion');
  const pcrSelect = readPcrSelection(r);
  const pcrDigest = r.tpm2b('pcrDigest', 64);
  r.end();
  return {
    magic,
    type,
    qualifiedSigner,
    extraData,
    clockInfo: { clock, resetCount, restartCount, safe: safeByte === 1 },
    firmwareVersion,
    pcrSelect,
    pcrDigest,
  };
}
