// JSON shapes of the `tpm` method on the wire (begin evidence, challenge, finish response) and
// their strict validation: own properties only, known keys only, bounded base64.
import { EdgewardError, type ErrorCode } from '../../common/errors.js';

export interface TpmEvidence {
  /** TPM2B_PUBLIC of the endorsement key. */
  readonly ekPublic: Buffer;
  /** DER EK certificate as read from the TPM's NV index; absent for allow-listed TPMs. */
  readonly ekCertificate?: Buffer;
  /** TPM2B_PUBLIC of the attestation key. */
  readonly akPublic: Buffer;
}

export interface TpmChallenge {
  readonly credentialBlob: Buffer;
  readonly encryptedSecret: Buffer;
  readonly nonce: Buffer;
  readonly pcrBank: string;
  readonly pcrs: readonly number[];
  readonly expiresAt: string;
}

export interface TpmResponse {
  readonly secret: Buffer;
  readonly quote: Buffer;
  readonly signature: Buffer;
  readonly pcrBank: string;
  readonly pcrValues: ReadonlyMap<number, Buffer>;
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

type Obj = Record<string, unknown>;

function obj(v: unknown, code: ErrorCode, what: string, allowed: readonly string[]): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new EdgewardError(code, `${what} must be an object`);
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k))
      throw new EdgewardError(code, `${what} has an unknown field`, { detail: { field: k } });
  }
  return v as Obj;
}

function b64(o: Obj, key: string, code: ErrorCode, maxBytes: number, optional = false): Buffer | undefined {
  const v = Object.hasOwn(o, key) ? o[key] : undefined;
  if (v === undefined && optional) return undefined;
  if (
    typeof v !== 'string' ||
    v.length === 0 ||
    v.length > Math.ceil(maxBytes / 3) * 4 ||
    v.length % 4 !== 0 ||
    !B64.test(v)
  ) {
    throw new EdgewardError(code, `${key} must be base64 of at most ${maxBytes} bytes`, {
      detail: { field: key },
    });
  }
  return Buffer.from(v, 'base64');
}

export function parseEvidence(v: unknown): TpmEvidence {
  const c = 'ERR_ATT_TPM_EVIDENCE_MALFORMED';
  const o = obj(v, c, 'evidence', ['ekPublic', 'ekCertificate', 'akPublic']);
  const ekCertificate = b64(o, 'ekCertificate', c, 8192, true);
  return {
    ekPublic: b64(o, 'ekPublic', c, 1024) as Buffer,
    akPublic: b64(o, 'akPublic', c, 1024) as Buffer,
    ...(ekCertificate ? { ekCertificate } : {}),
  };
}

export function encodeEvidence(e: TpmEvidence): Record<string, unknown> {
  return {
    ekPublic: e.ekPublic.toString('base64'),
    ...(e.ekCertificate ? { ekCertificate: e.ekCertificate.toString('base64') } : {}),
    akPublic: e.akPublic.toString('base64'),
  };
}

export function encodeChallenge(c: TpmChallenge): Record<string, unknown> {
  return {
    credentialBlob: c.credentialBlob.toString('base64'),
    encryptedSecret: c.encryptedSecret.toString('base64'),
    nonce: c.nonce.toString('base64'),
    pcrSelection: { bank: c.pcrBank, pcrs: [...c.pcrs] },
    expiresAt: c.expiresAt,
  };
}

function bankAndIndices(v: unknown, code: ErrorCode): { bank: string; pcrs: number[] } {
  const o = obj(v, code, 'pcrSelection', ['bank', 'pcrs']);
  const bank = o['bank'];
  const pcrs = o['pcrs'];
  if (bank !== 'sha256' && bank !== 'sha384' && bank !== 'sha512')
    throw new EdgewardError(code, 'unknown PCR bank');
  if (!Array.isArray(pcrs) || pcrs.length === 0 || pcrs.length > 24)
    throw new EdgewardError(code, 'pcrs must list 1..24 indices');
  const out: number[] = [];
  for (const p of pcrs) {
    if (!Number.isInteger(p) || (p as number) < 0 || (p as number) > 23 || out.includes(p as number)) {
      throw new EdgewardError(code, 'PCR indices must be distinct integers 0..23');
    }
    out.push(p as number);
  }
  return { bank, pcrs: out.sort((a, b) => a - b) };
}

/** Device side: the CA's challenge, checked as hostile input too. */
export function parseChallenge(v: unknown): TpmChallenge {
  const c = 'ERR_ATT_TPM_CHALLENGE_MALFORMED';
  const o = obj(v, c, 'challenge', [
    'credentialBlob',
    'encryptedSecret',
    'nonce',
    'pcrSelection',
    'expiresAt',
  ]);
  const sel = bankAndIndices(o['pcrSelection'], c);
  const nonce = b64(o, 'nonce', c, 64) as Buffer;
  if (nonce.length !== 16) throw new EdgewardError(c, 'nonce must be 16 bytes');
  return {
    credentialBlob: b64(o, 'credentialBlob', c, 1024) as Buffer,
    encryptedSecret: b64(o, 'encryptedSecret', c, 1024) as Buffer,
    nonce,
    pcrBank: sel.bank,
    pcrs: sel.pcrs,
    expiresAt: typeof o['expiresAt'] === 'string' ? o['expiresAt'] : '',
  };
}

export function encodeResponse(r: TpmResponse): Record<string, unknown> {
  const values: Record<string, string> = {};
  for (const [k, v] of [...r.pcrValues].sort((a, b) => a[0] - b[0])) values[String(k)] = v.toString('base64');
  return {
    secret: r.secret.toString('base64'),
    quote: r.quote.toString('base64'),
    signature: r.signature.toString('base64'),
    pcrs: { bank: r.pcrBank, values },
  };
}

export function parseResponse(v: unknown): TpmResponse {
  const c = 'ERR_ATT_TPM_RESPONSE_MALFORMED';
  const o = obj(v, c, 'response', ['secret', 'quote', 'signature', 'pcrs']);
  const p = obj(o['pcrs'], c, 'pcrs', ['bank', 'values']);
  const bank = p['bank'];
  if (bank !== 'sha256' && bank !== 'sha384' && bank !== 'sha512')
    throw new EdgewardError(c, 'unknown PCR bank');
  const vals = obj(
    p['values'],
    c,
    'pcrs.values',
    Array.from({ length: 24 }, (_, i) => String(i)),
  );
  const pcrValues = new Map<number, Buffer>();
  for (const k of Object.keys(vals)) pcrValues.set(Number(k), b64(vals, k, c, 64) as Buffer);
  return {
    secret: b64(o, 'secret', c, 64) as Buffer,
    quote: b64(o, 'quote', c, 1024) as Buffer,
    signature: b64(o, 'signature', c, 1024) as Buffer,
    pcrBank: bank,
    pcrValues,
  };
}
