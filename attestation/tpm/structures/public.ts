// TPM2B_PUBLIC / TPMT_PUBLIC for RSA and ECC keys (Part 2, 12.2), and the node:crypto public key
// they carry. Keyed-hash and symmetric objects are refused: no EK or AK is one.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { EdgewardError } from '../../../common/errors.js';
import { CURVES, TPM_ALG } from './constants.js';
import { TpmReader, malformed } from './reader.js';

export interface SymDef {
  readonly algorithm: number;
  readonly keyBits: number;
  readonly mode: number;
}

export interface Scheme {
  readonly scheme: number;
  readonly hashAlg: number;
}

export interface RsaPublic {
  readonly type: 'rsa';
  readonly nameAlg: number;
  readonly objectAttributes: number;
  readonly authPolicy: Buffer;
  readonly symmetric: SymDef;
  readonly scheme: Scheme;
  readonly keyBits: number;
  /** 0 in the structure means the default 65537; normalised here. */
  readonly exponent: number;
  readonly modulus: Buffer;
  /** The exact TPMT_PUBLIC bytes, which the object's name hashes. */
  readonly raw: Buffer;
}

export interface EccPublic {
  readonly type: 'ecc';
  readonly nameAlg: number;
  readonly objectAttributes: number;
  readonly authPolicy: Buffer;
  readonly symmetric: SymDef;
  readonly scheme: Scheme;
  readonly curveId: number;
  readonly kdf: Scheme;
  readonly x: Buffer;
  readonly y: Buffer;
  readonly raw: Buffer;
}

export type TpmPublic = RsaPublic | EccPublic;

const NULL_SCHEME: Scheme = { scheme: TPM_ALG.NULL, hashAlg: TPM_ALG.NULL };

function readSymDef(r: TpmReader): SymDef {
  const algorithm = r.u16('symmetric.algorithm');
  if (algorithm === TPM_ALG.NULL) return { algorithm, keyBits: 0, mode: TPM_ALG.NULL };
  if (algorithm !== TPM_ALG.AES) {
    throw new EdgewardError('ERR_ATT_TPM_UNSUPPORTED_ALG', 'only AES symmetric definitions are supported', {
      detail: { algorithm },
    });
  }
  return { algorithm, keyBits: r.u16('symmetric.keyBits'), mode: r.u16('symmetric.mode') };
}

function readRsaScheme(r: TpmReader): Scheme {
  const scheme = r.u16('scheme');
  if (scheme === TPM_ALG.NULL || scheme === TPM_ALG.RSAES) return { scheme, hashAlg: TPM_ALG.NULL };
  if (scheme === TPM_ALG.RSASSA || scheme === TPM_ALG.RSAPSS || scheme === TPM_ALG.OAEP) {
    return { scheme, hashAlg: r.u16('scheme.hashAlg') };
  }
  throw new EdgewardError('ERR_ATT_TPM_UNSUPPORTED_ALG', 'unsupported RSA scheme', { detail: { scheme } });
}

function readEccScheme(r: TpmReader): Scheme {
  const scheme = r.u16('scheme');
  if (scheme === TPM_ALG.NULL) return NULL_SCHEME;
  if (scheme === TPM_ALG.ECDSA || scheme === TPM_ALG.ECDH)
    return { scheme, hashAlg: r.u16('scheme.hashAlg') };
  // ECDAA and others carry extra fields and are not used for EKs or AKs here.
  throw new EdgewardError('ERR_ATT_TPM_UNSUPPORTED_ALG', 'unsupported ECC scheme', { detail: { scheme } });
}

function readKdf(r: TpmReader): Scheme {
  const scheme = r.u16('kdf.scheme');
  if (scheme === TPM_ALG.NULL) return NULL_SCHEME;
  return { scheme, hashAlg: r.u16('kdf.hashAlg') };
}

/** Parses a TPMT_PUBLIC that must fill `buf` exactly. */
export function parseTpmtPublic(buf: Buffer): TpmPublic {
  const r = new TpmReader(buf, 'TPMT_PUBLIC');
  const type = r.u16('type');
  const nameAlg = r.u16('nameAlg');
  const objectAttributes = r.u32('objectAttributes');
  const authPolicy = r.tpm2b('authPolicy', 64);
  if (type === TPM_ALG.RSA) {
    const symmetric = readSymDef(r);
    const scheme = readRsaScheme(r);
    const keyBits = r.u16('keyBits');
    const exp = r.u32('exponent');
    const modulus = r.tpm2b('unique.rsa', 512);
    r.end();
    if (modulus.length * 8 !== keyBits) throw malformed('TPMT_PUBLIC: modulus size differs from keyBits');
    return {
      type: 'rsa',
      nameAlg,
      objectAttributes,
      authPolicy,
      symmetric,
      scheme,
      keyBits,
      exponent: exp === 0 ? 65537 : exp,
      modulus,
      raw: buf,
    };
  }
  if (type === TPM_ALG.ECC) {
    const symmetric = readSymDef(r);
    const scheme = readEccScheme(r);
    const curveId = r.u16('curveID');
    const kdf = readKdf(r);
    const x = r.tpm2b('unique.ecc.x', 128);
    const y = r.tpm2b('unique.ecc.y', 128);
    r.end();
    return {
      type: 'ecc',
      nameAlg,
      objectAttributes,
      authPolicy,
      symmetric,
      scheme,
      curveId,
      kdf,
      x,
      y,
      raw: buf,
    };
  }
  throw new EdgewardError('ERR_ATT_TPM_UNSUPPORTED_ALG', 'only RSA and ECC keys are supported', {
    detail: { type },
  });
}

/** Parses a TPM2B_PUBLIC (u16 size, then a TPMT_PUBLIC of exactly that size, nothing after). */
export function parseTpm2bPublic(buf: Buffer): TpmPublic {
  const r = new TpmReader(buf, 'TPM2B_PUBLIC');
  const inner = r.tpm2b('publicArea');
  r.end();
  if (inner.length === 0) throw malformed('TPM2B_PUBLIC: empty');
  return parseTpmtPublic(Buffer.from(inner));
}

function b64url(b: Buffer): string {
  return b.toString('base64url');
}

/** The key as a node:crypto KeyObject; refuses curves and sizes we do not support. */
export function publicKeyOf(pub: TpmPublic): KeyObject {
  try {
    if (pub.type === 'rsa') {
      if (pub.keyBits < 2048 || pub.keyBits > 4096) {
        throw new EdgewardError('ERR_ATT_TPM_UNSUPPORTED_ALG', 'RSA keys must have 2048 to 4096 bits', {
          detail: { keyBits: pub.keyBits },
        });
      }
      const e = Buffer.alloc(4);
      e.writeUInt32BE(pub.exponent);
      let i = 0;
      while (i < 3 && e[i] === 0) i++;
      return createPublicKey({
        key: { kty: 'RSA', n: b64url(pub.modulus), e: b64url(e.subarray(i)) },
        format: 'jwk',
      });
    }
    const curve = CURVES.get(pub.curveId);
    if (!curve) {
      throw new EdgewardError('ERR_ATT_TPM_UNSUPPORTED_ALG', 'unsupported ECC curve', {
        detail: { curveId: pub.curveId },
      });
    }
    if (pub.x.length !== curve.size || pub.y.length !== curve.size) {
      throw malformed('TPMT_PUBLIC: ECC point coordinates of the wrong size');
    }
    return createPublicKey({
      key: { kty: 'EC', crv: curve.jwk, x: b64url(pub.x), y: b64url(pub.y) },
      format: 'jwk',
    });
  } catch (err) {
    if (err instanceof EdgewardError) throw err;
    // node:crypto refuses points off the curve and similar: hostile input, not our bug.
    throw malformed('TPMT_PUBLIC: not a valid public key', { cause: String(err) });
  }
}

export function spkiDerOf(pub: TpmPublic): Buffer {
  return publicKeyOf(pub).export({ format: 'der', type: 'spki' });
}
