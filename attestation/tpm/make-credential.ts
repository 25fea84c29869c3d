// TPM2_MakeCredential done in software (Part 1, 24 "Credential Protection"; Part 3, 12.6): only the
// TPM holding the EK's private key and an object with name `objectName` can recover `secret`.
// RSA EKs: seed encrypted with OAEP (label "IDENTITY\0"); ECC EKs: ECDH with an ephemeral key
// and KDFe. Then KDFa derives the AES-CFB key ("STORAGE") and the integrity HMAC key ("INTEGRITY").
import {
  constants,
  createCipheriv,
  createECDH,
  createHmac,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { EdgewardError } from '../../common/errors.js';
import { hashInfo } from './names.js';
import { kdfa, kdfe } from './kdf.js';
import { CURVES } from './structures/constants.js';
import { publicKeyOf, type TpmPublic } from './structures/public.js';
import { tpm2b } from './structures/reader.js';

export interface Credential {
  /** TPM2B_ID_OBJECT, size prefix included (what tpm2_makecredential writes after its header). */
  readonly credentialBlob: Buffer;
  /** TPM2B_ENCRYPTED_SECRET, size prefix included. */
  readonly encryptedSecret: Buffer;
}

const IDENTITY = 'IDENTITY';

/** The deterministic half: wraps `secret` for `objectName` under an already agreed `seed`. */
export function credentialFromSeed(ek: TpmPublic, objectName: Buffer, secret: Buffer, seed: Buffer): Buffer {
  const h = hashInfo(ek.nameAlg, 'EK nameAlg');
  if (secret.length === 0 || secret.length > h.size) {
    throw new TypeError(`credential secret must be 1..${h.size} bytes`);
  }
  const keyBits = ek.symmetric.keyBits;
  const symKey = kdfa(h.name, seed, 'STORAGE', objectName, Buffer.alloc(0), keyBits);
  const cipher = createCipheriv(`aes-${keyBits}-cfb`, symKey, Buffer.alloc(16));
  const encIdentity = Buffer.concat([cipher.update(tpm2b(secret)), cipher.final()]);
  const hmacKey = kdfa(h.name, seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), h.size * 8);
  const outerHmac = createHmac(h.name, hmacKey).update(encIdentity).update(objectName).digest();
  return tpm2b(Buffer.concat([tpm2b(outerHmac), encIdentity]));
}

export function makeCredential(
  ek: TpmPublic,
  objectName: Buffer,
  secret: Buffer,
  ekKey?: KeyObject,
): Credential {
  const h = hashInfo(ek.nameAlg, 'EK nameAlg');
  if (ek.type === 'rsa') {
    const seed = randomBytes(h.size);
    const label = Buffer.from(`${IDENTITY}\0`, 'latin1');
    const enc = publicEncrypt(
      {
        key: ekKey ?? publicKeyOf(ek),
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: h.name,
        oaepLabel: label,
      },
      seed,
    );
    return { credentialBlob: credentialFromSeed(ek, objectName, secret, seed), encryptedSecret: tpm2b(enc) };
  }
  const curve = CURVES.get(ek.curveId);
  if (!curve)
    throw new EdgewardError('ERR_ATT_TPM_UNSUPPORTED_ALG', 'unsupported EK curve', {
      detail: { curveId: ek.curveId },
    });
  const ecdh = createECDH(curve.node);
  ecdh.generateKeys();
  const ephemeral = ecdh.getPublicKey(); // 04 || x || y
  const ex = ephemeral.subarray(1, 1 + curve.size);
  const ey = ephemeral.subarray(1 + curve.size);
  let z: Buffer;
  try {
    z = ecdh.computeSecret(Buffer.concat([Buffer.from([4]), ek.x, ek.y]));
  } catch (err) {
    throw new EdgewardError('ERR_ATT_TPM_STRUCTURE_MALFORMED', 'EK point is not on its curve', {
      cause: err,
    });
  }
  const seed = kdfe(h.name, z, IDENTITY, ex, ek.x, h.size * 8);
  const point = Buffer.concat([tpm2b(ex), tpm2b(ey)]);
  return { credentialBlob: credentialFromSeed(ek, objectName, secret, seed), encryptedSecret: tpm2b(point) };
}

/**
 * The file format tpm2_makecredential writes and tpm2_activatecredential reads: magic 0xBADCC0DE,
 * version 1, then TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET.
 */
export function toTpm2ToolsCredentialFile(c: Credential): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(0xbadcc0de, 0);
  header.writeUInt32BE(1, 4);
  return Buffer.concat([header, c.credentialBlob, c.encryptedSecret]);
}
