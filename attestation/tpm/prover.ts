// The device side of the `tpm` method, driving a TPM through tpm2-tools: reads the EK and its
// certificate, creates an attestation key (ECC P-256 unless told otherwise) under the EK, then
// activates the CA's credential and quotes the requested PCRs over the nonce/CSR-key binding.
// Without a resource manager nothing flushes for us, so every command is followed by a flush of
// transient objects, and policy sessions are flushed as soon as they are used.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CsrKey, Prover } from '../method.js';
import { EdgewardError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { qualifyingData } from './binding.js';
import { readTlv } from '../../common/der.js';
import { toTpm2ToolsCredentialFile } from './make-credential.js';
import { TPMA_OBJECT } from './structures/constants.js';
import { parseTpm2bPublic } from './structures/public.js';
import { createToolRunner, type ToolRunner } from './tools.js';
import { encodeEvidence, encodeResponse, parseChallenge } from './wire.js';

export interface TpmProverOptions {
  /** e.g. `swtpm:host=127.0.0.1,port=2321` or `device:/dev/tpmrm0`. */
  readonly tcti: string;
  readonly log?: Logger;
  /** Step-by-step progress for the operator (the CLI prints these). */
  readonly print?: (line: string) => void;
  /** Which EK to use: `auto` takes the ECC EK when the TPM holds an ECC EK certificate. */
  readonly ek?: 'auto' | 'rsa' | 'ecc';
  /** AK algorithm; ECC P-256 is preferred (faster to create, smaller quotes). */
  readonly ak?: 'ecc' | 'rsa';
  /** A persistent EK handle to use instead of searching the standard ones (e.g. 0x81010002). */
  readonly ekHandle?: string;
}

/** Where TCG EK Credential Profile 2.x keeps EKs and their certificates. */
const EK_SLOTS = {
  rsa: [{ handle: '0x81010001', cert: '0x1c00002', template: 'rsa' }],
  ecc: [
    { handle: '0x81010002', cert: '0x1c0000a', template: 'ecc' }, // NIST P-256, template L-2
    { handle: '0x81010016', cert: '0x1c00016', template: null }, // NIST P-384, template H-3
  ],
} as const;

export const AK_ATTRIBUTES = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign';

interface EkInfo {
  /** A persistent handle or a context file name in the work folder. */
  readonly ref: string;
  readonly pub: Buffer;
  readonly needsPolicy: boolean;
  readonly certIndex: string | undefined;
}

/** The DER certificate inside an NV read, without the zero padding some TPMs append. */
function trimDer(nv: Buffer): Buffer | undefined {
  try {
    const { tlv, next } = readTlv(nv, 0);
    return tlv.tag === 0x30 ? nv.subarray(0, next) : undefined;
  } catch {
    return undefined;
  }
}

export async function readPcrValues(
  tools: ToolRunner,
  dir: string,
  bank: string,
  pcrs: readonly number[],
): Promise<Map<number, Buffer>> {
  const out = join(dir, 'pcrs.bin');
  await tools.run('tpm2_pcrread', [`${bank}:${pcrs.join(',')}`, '-o', out, '-F', 'values']);
  return splitPcrValues(await readFile(out), bank, pcrs);
}

function splitPcrValues(raw: Buffer, bank: string, pcrs: readonly number[]): Map<number, Buffer> {
  const size = { sha256: 32, sha384: 48, sha512: 64 }[bank] ?? 0;
  const sorted = [...pcrs].sort((a, b) => a - b);
  if (size === 0 || raw.length !== size * sorted.length) {
    throw new EdgewardError(
      'ERR_ATT_TPM_TOOL_FAILED',
      `unexpected PCR output: ${raw.length} bytes for ${sorted.length} ${bank} PCRs`,
    );
  }
  return new Map(sorted.map((p, i) => [p, Buffer.from(raw.subarray(i * size, (i + 1) * size))]));
}

export function createTpmProver(options: TpmProverOptions): Prover {
  const print = options.print ?? (() => undefined);
  let dir: string | undefined;
  let tools: ToolRunner | undefined;
  let ek: EkInfo | undefined;

  async function setup(): Promise<{ dir: string; tools: ToolRunner }> {
    if (!dir || !tools) {
      dir = await mkdtemp(join(tmpdir(), 'edgeward-tpm-'));
      tools = createToolRunner({
        tcti: options.tcti,
        cwd: dir,
        ...(options.log ? { log: options.log } : {}),
      });
    }
    return { dir, tools };
  }

  /** Runs one command, then flushes whatever transient objects it left loaded. */
  async function cmd(tool: string, args: readonly string[]): Promise<string> {
    const { tools: t } = await setup();
    try {
      return await t.run(tool, args);
    } finally {
      await t.run('tpm2_flushcontext', ['-t']).catch(() => undefined);
    }
  }

  /** Runs a command that needs the EK's authorization: a PolicySecret(endorsement) session if its template demands one. */
  async function withEkAuth(tool: string, args: readonly string[], flag: string): Promise<string> {
    if (!ek?.needsPolicy) return cmd(tool, args);
    const { tools: t } = await setup();
    await t.run('tpm2_startauthsession', ['--policy-session', '-S', 'ek-session.ctx']);
    try {
      await t.run('tpm2_policysecret', ['-S', 'ek-session.ctx', '-c', 'e']);
      return await cmd(tool, [...args, flag, 'session:ek-session.ctx']);
    } finally {
      await t.run('tpm2_flushcontext', ['ek-session.ctx']).catch(() => undefined);
    }
  }

  async function listNv(): Promise<Set<string>> {
    const out = await cmd('tpm2_nvreadpublic', []);
    return new Set([...out.matchAll(/^(0x[0-9a-fA-F]+):/gm)].map((m) => (m[1] ?? '').toLowerCase()));
  }

  async function loadEk(ref: string, pubFile: string, certIndex: string | undefined): Promise<EkInfo> {
    const pub = await readFile(join(dir as string, pubFile));
    const parsed = parseTpm2bPublic(pub);
    return { ref, pub, needsPolicy: (parsed.objectAttributes & TPMA_OBJECT.userWithAuth) === 0, certIndex };
  }

  async function findEk(): Promise<EkInfo> {
    const nv = await listNv();
    if (options.ekHandle !== undefined) {
      if (!/^0x81[0-9a-fA-F]{6}$/.test(options.ekHandle))
        throw new TypeError('ekHandle must be a persistent handle 0x81xxxxxx');
      const handle = options.ekHandle.toLowerCase();
      await cmd('tpm2_readpublic', ['-c', handle, '-o', 'ek-given.pub']);
      const cert = [...EK_SLOTS.rsa, ...EK_SLOTS.ecc].find((s) => s.handle === handle)?.cert;
      return loadEk(handle, 'ek-given.pub', cert && nv.has(cert) ? cert : undefined);
    }
    const want = options.ek ?? 'auto';
    const hasEccCert = EK_SLOTS.ecc.some((s) => nv.has(s.cert));
    const order: ('rsa' | 'ecc')[] =
      want === 'rsa' ? ['rsa'] : want === 'ecc' ? ['ecc'] : hasEccCert ? ['ecc', 'rsa'] : ['rsa', 'ecc'];
    // EKs with a certificate first: the CA can check those without an allow-list entry.
    const slots = order
      .flatMap((alg) => EK_SLOTS[alg].map((slot) => ({ alg, slot, hasCert: nv.has(slot.cert) })))
      .sort((a, b) => Number(b.hasCert) - Number(a.hasCert));
    for (const { alg, slot, hasCert } of slots) {
      const pubFile = `ek-${slot.handle}.pub`;
      const persisted = await cmd('tpm2_readpublic', ['-c', slot.handle, '-o', pubFile]).then(
        () => true,
        () => false,
      );
      if (persisted) return loadEk(slot.handle, pubFile, hasCert ? slot.cert : undefined);
      if (slot.template && hasCert) {
        print(`creating the ${alg.toUpperCase()} endorsement key from its standard template`);
        await cmd('tpm2_createek', ['-G', slot.template, '-c', `ek-${alg}.ctx`, '-u', pubFile]);
        return loadEk(`ek-${alg}.ctx`, pubFile, slot.cert);
      }
    }
    const alg = order[0] ?? 'rsa';
    print(
      `no EK certificate on this TPM; creating the ${alg.toUpperCase()} endorsement key (the CA must allow-list it)`,
    );
    await cmd('tpm2_createek', ['-G', alg, '-c', `ek-${alg}.ctx`, '-u', `ek-${alg}.pub`]);
    return loadEk(`ek-${alg}.ctx`, `ek-${alg}.pub`, undefined);
  }

  return {
    method: 'tpm',

    async evidence() {
      const { dir: d } = await setup();
      print(`talking to the TPM at ${options.tcti}`);
      ek = await findEk();
      print(
        `endorsement key: ${ek.ref}${ek.certIndex ? `, certificate in NV ${ek.certIndex}` : ', no certificate'}`,
      );
      let ekCertificate: Buffer | undefined;
      if (ek.certIndex) {
        await cmd('tpm2_nvread', [ek.certIndex, '-C', 'o', '-o', 'ek.crt']);
        ekCertificate = trimDer(await readFile(join(d, 'ek.crt')));
        if (!ekCertificate) print('warning: the EK certificate in NV is not DER; sending none');
      }
      const akAlg = options.ak ?? 'ecc';
      print(`creating an ${akAlg === 'ecc' ? 'ECC P-256' : 'RSA 2048'} attestation key under the EK`);
      const spec = akAlg === 'ecc' ? 'ecc256:ecdsa-sha256:null' : 'rsa2048:rsassa-sha256:null';
      await withEkAuth(
        'tpm2_create',
        ['-C', ek.ref, '-G', spec, '-g', 'sha256', '-a', AK_ATTRIBUTES, '-u', 'ak.pub', '-r', 'ak.priv'],
        '-P',
      );
      await withEkAuth('tpm2_load', ['-C', ek.ref, '-u', 'ak.pub', '-r', 'ak.priv', '-c', 'ak.ctx'], '-P');
      const akPublic = await readFile(join(d, 'ak.pub'));
      return encodeEvidence({ ekPublic: ek.pub, akPublic, ...(ekCertificate ? { ekCertificate } : {}) });
    },

    async respond(challenge: Record<string, unknown>, csr: CsrKey) {
      if (!ek) throw new TypeError('tpm prover: respond() before evidence()');
      const { dir: d } = await setup();
      const c = parseChallenge(challenge);
      print('activating the CA credential (proves the AK and the EK share this TPM)');
      await writeFile(
        join(d, 'cred.bin'),
        toTpm2ToolsCredentialFile({ credentialBlob: c.credentialBlob, encryptedSecret: c.encryptedSecret }),
      );
      await rm(join(d, 'secret.bin'), { force: true });
      await withEkAuth(
        'tpm2_activatecredential',
        ['-c', 'ak.ctx', '-C', ek.ref, '-i', 'cred.bin', '-o', 'secret.bin'],
        '-P',
      );
      const secret = await readFile(join(d, 'secret.bin'));
      print(`quoting PCRs ${c.pcrBank}:${c.pcrs.join(',')} over the CA nonce and the CSR key`);
      const q = qualifyingData(c.nonce, csr.spkiSha256).toString('hex');
      await cmd('tpm2_quote', [
        '-c', 'ak.ctx', '-l', `${c.pcrBank}:${c.pcrs.join(',')}`, '-q', q, '-g', 'sha256',
        '-m', 'quote.msg', '-s', 'quote.sig', '-o', 'quote.pcrs', '-F', 'values',
      ]); // prettier-ignore
      const [quote, signature, pcrRaw] = await Promise.all(
        ['quote.msg', 'quote.sig', 'quote.pcrs'].map((f) => readFile(join(d, f))),
      );
      return encodeResponse({
        secret,
        quote: quote as Buffer,
        signature: signature as Buffer,
        pcrBank: c.pcrBank,
        pcrValues: splitPcrValues(pcrRaw as Buffer, c.pcrBank, c.pcrs),
      });
    },

    async close() {
      if (tools) await tools.run('tpm2_flushcontext', ['-t']).catch(() => undefined);
      if (dir) await rm(dir, { recursive: true, force: true });
      dir = undefined;
      tools = undefined;
      ek = undefined;
    },
  };
}
