// EK certificate chains from a TEST manufacturer made with openssl: the TCG shapes we must accept
// (critical SAN directoryName, EKU 2.23.133.8.1) and what we must refuse.
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { verifyEkChain, type EkTrustAnchors } from '../../../attestation/tpm/index.js';
import { children, parseDer } from '../../../common/der.js';
import { EdgewardError } from '../../../common/errors.js';
import { openssl } from '../../helpers/openssl.js';
import { createTestManufacturer, type TestManufacturer } from '../../helpers/swtpm.js';
import { tempDir } from '../../helpers/tmp.js';

let maker: TestManufacturer;
let other: TestManufacturer;
let anchors: EkTrustAnchors;
const dir = tempDir('edgeward-ekchain-');
let serial = 100;

const TCG = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,keyEncipherment',
  'extendedKeyUsage=2.23.133.8.1',
  'subjectAltName=critical,dirName:tcg_dn',
  '[tcg_dn]',
  // openssl strips a leading "N." from DN field names (it numbers repeated fields)
  '1.2.23.133.2.1=id:00001014',
  '2.2.23.133.2.2=swtpm',
  '3.2.23.133.2.3=id:20191023',
];

function issue(m: TestManufacturer, ext: string[], days = 30): Buffer {
  const n = serial++;
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, `${n}.key`),
    '-out', join(dir, `${n}.csr`), '-subj', '/CN=ek']); // prettier-ignore
  writeFileSync(join(dir, `${n}.ext`), `${ext.join('\n')}\n`);
  openssl(['x509', '-req', '-in', join(dir, `${n}.csr`), '-CA', m.intermediateFile, '-CAkey', join(m.dir, 'signkey.pem'),
    '-set_serial', String(n), '-days', String(days), '-extfile', join(dir, `${n}.ext`), '-outform', 'DER', '-out', join(dir, `${n}.der`)]); // prettier-ignore
  return readFileSync(join(dir, `${n}.der`));
}

function codeAndReason(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    if (err instanceof EdgewardError)
      return `${err.code}${typeof err.detail?.['reason'] === 'string' ? `: ${err.detail['reason']}` : ''}`;
    return `uncoded ${String(err)}`;
  }
  return 'ok';
}

beforeAll(async () => {
  [maker, other] = await Promise.all([
    createTestManufacturer('Test Vendor A', join(dir, 'a')),
    createTestManufacturer('Test Vendor B', join(dir, 'b')),
  ]);
  anchors = {
    roots: [new X509Certificate(maker.rootPem)],
    intermediates: [new X509Certificate(maker.intermediatePem)],
  };
});

describe('verifyEkChain', () => {
  it('accepts a TCG-shaped EK certificate through the manufacturer intermediate', () => {
    const res = verifyEkChain(issue(maker, TCG), anchors, Date.now());
    expect(res.chain).toEqual(['CN=ek', 'CN=Test Vendor A EK CA', 'CN=Test Vendor A Root CA']);
  });

  it('accepts the intermediate itself as a trust anchor', () => {
    const only = { roots: [new X509Certificate(maker.intermediatePem)], intermediates: [] };
    expect(codeAndReason(() => verifyEkChain(issue(maker, TCG), only, Date.now()))).toBe('ok');
  });

  it('refuses another manufacturer, a missing intermediate, and time outside validity', () => {
    // Issue first, then take the time: openssl's notBefore is the current second.
    const [fromOther, good, shortLived] = [issue(other, TCG), issue(maker, TCG), issue(maker, TCG, 1)];
    const now = Date.now();
    expect(codeAndReason(() => verifyEkChain(fromOther, anchors, now))).toBe(
      'ERR_ATT_TPM_EK_UNTRUSTED: no path to a trusted manufacturer root',
    );
    const rootOnly = { roots: anchors.roots, intermediates: [] };
    expect(codeAndReason(() => verifyEkChain(good, rootOnly, now))).toBe(
      'ERR_ATT_TPM_EK_UNTRUSTED: no path to a trusted manufacturer root',
    );
    expect(codeAndReason(() => verifyEkChain(shortLived, anchors, now + 3 * 86_400_000))).toBe(
      'ERR_ATT_TPM_EK_UNTRUSTED: EK certificate outside its validity period',
    );
  });

  it('refuses an unknown critical extension, a non-EK EKU and a CA certificate', () => {
    const critical = issue(maker, ['1.2.3.4=critical,DER:0500', ...TCG]);
    const serverAuth = issue(
      maker,
      TCG.map((l) => (l.startsWith('extendedKeyUsage') ? 'extendedKeyUsage=serverAuth' : l)),
    );
    const ca = issue(
      maker,
      TCG.map((l) => (l.startsWith('basicConstraints') ? 'basicConstraints=critical,CA:TRUE' : l)),
    );
    const now = Date.now();
    expect(codeAndReason(() => verifyEkChain(critical, anchors, now))).toBe(
      'ERR_ATT_TPM_EK_UNTRUSTED: unknown critical extension',
    );
    expect(codeAndReason(() => verifyEkChain(serverAuth, anchors, now))).toBe(
      'ERR_ATT_TPM_EK_UNTRUSTED: EKU is not the TCG EK certificate EKU',
    );
    expect(codeAndReason(() => verifyEkChain(ca, anchors, now))).toBe(
      'ERR_ATT_TPM_EK_UNTRUSTED: EK certificate is a CA certificate',
    );
  });

  it('refuses garbage and trailing bytes as ERR_ATT_TPM_EK_CERT_MALFORMED', () => {
    const good = issue(maker, TCG);
    expect(codeAndReason(() => verifyEkChain(Buffer.from('not a certificate'), anchors, Date.now()))).toBe(
      'ERR_ATT_TPM_EK_CERT_MALFORMED',
    );
    expect(
      codeAndReason(() => verifyEkChain(Buffer.concat([good, Buffer.from([0])]), anchors, Date.now())),
    ).toMatch(/^ERR_ATT_TPM_EK_CERT_MALFORMED/);
  });
  it('refuses a non-minimal length inside the certificate (the strict DER reader), not only outside', () => {
    const good = issue(maker, TCG);
    // The extensions' [3] wrapper, re-encoded with one more length byte than DER allows.
    const tbs = children(parseDer(good, 0x30))[0]!;
    const extensions = children(tbs).find((t) => t.tag === 0xa3)!;
    const at = extensions.raw.byteOffset - good.byteOffset;
    const len = good[at + 1]!;
    expect(len & 0x80).toBe(0x80);
    const n = len & 0x7f;
    const padded = Buffer.concat([
      good.subarray(0, at),
      Buffer.from([0xa3, 0x80 | (n + 1), 0x00]),
      good.subarray(at + 2),
    ]);
    // Keep the outer lengths true: certificate and tbsCertificate both grow by one byte.
    for (const off of [0, 4]) {
      expect(padded[off + 1]).toBe(0x82);
      padded.writeUInt16BE(padded.readUInt16BE(off + 2) + 1, off + 2);
    }
    const err = (() => {
      try {
        verifyEkChain(padded, anchors, Date.now());
      } catch (e) {
        return e as EdgewardError;
      }
      return undefined;
    })();
    // OpenSSL parses this certificate; the strict reader is what refuses it.
    expect(new X509Certificate(padded).subject).toBe('CN=ek');
    expect(err).toMatchObject({
      code: 'ERR_ATT_TPM_EK_CERT_MALFORMED',
      message: 'EK certificate: non-minimal length',
    });
  });
});
