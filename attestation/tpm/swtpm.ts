// A real software TPM for the demo, the benchmarks and the tests: swtpm on a free 127.0.0.1 port
// with a fresh state folder, its EK certificates issued by a TEST manufacturer CA made here
// (openssl, ECDSA P-256), through swtpm_setup --config and swtpm_localca's config/options files.
// Missing tools fail loudly. Not for production devices: their TPM and its vendor's CA are real.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function tool(cmd: string, args: string[], cwd?: string): Promise<string> {
  try {
    const r = await run(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 22 });
    return r.stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string; stdout?: string };
    if (e.code === 'ENOENT') {
      throw new Error(`${cmd} is not installed: apt-get install -y swtpm swtpm-tools tpm2-tools openssl`);
    }
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

export interface TestManufacturer {
  readonly dir: string;
  readonly rootPem: string;
  readonly intermediatePem: string;
  readonly rootFile: string;
  readonly intermediateFile: string;
  /** swtpm_setup configuration that issues EK and platform certificates from this CA. */
  readonly setupConfig: string;
}

/** A TEST TPM manufacturer: root CA -> EK-issuing intermediate, as real vendors have. */
export async function createTestManufacturer(
  name = 'Edgeward TEST TPM Manufacturer',
  dir?: string,
): Promise<TestManufacturer> {
  const d = dir ?? mkdtempSync(join(tmpdir(), 'edgeward-tpmca-'));
  mkdirSync(d, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await tool('openssl', ['req', '-x509', '-new', ...ec, '-keyout', 'root.key', '-out', 'root.pem', '-days', '3650',
    '-subj', `/CN=${name} Root CA`, '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], d); // prettier-ignore
  await tool(
    'openssl',
    ['req', '-new', ...ec, '-keyout', 'signkey.pem', '-out', 'int.csr', '-subj', `/CN=${name} EK CA`],
    d,
  );
  writeFileSync(
    join(d, 'int.ext'),
    'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
  );
  await tool('openssl', ['x509', '-req', '-in', 'int.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-set_serial', '2',
    '-out', 'issuercert.pem', '-days', '3650', '-extfile', 'int.ext'], d); // prettier-ignore
  writeFileSync(join(d, 'certserial'), '10\n');
  writeFileSync(
    join(d, 'swtpm-localca.conf'),
    `statedir = ${d}\nsigningkey = ${join(d, 'signkey.pem')}\nissuercert = ${join(d, 'issuercert.pem')}\ncertserial = ${join(d, 'certserial')}\n`,
  );
  writeFileSync(
    join(d, 'swtpm-localca.options'),
    '--platform-manufacturer EdgewardTest\n--platform-version 2.1\n--platform-model swtpm\n',
  );
  const setupConfig = join(d, 'swtpm_setup.conf');
  writeFileSync(
    setupConfig,
    `create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = ${join(d, 'swtpm-localca.conf')}\n` +
      `create_certs_tool_options = ${join(d, 'swtpm-localca.options')}\nactive_pcr_banks = sha256\n`,
  );
  return {
    dir: d,
    rootFile: join(d, 'root.pem'),
    intermediateFile: join(d, 'issuercert.pem'),
    rootPem: readFileSync(join(d, 'root.pem'), 'utf8'),
    intermediatePem: readFileSync(join(d, 'issuercert.pem'), 'utf8'),
    setupConfig,
  };
}

export interface Swtpm {
  readonly tcti: string;
  readonly port: number;
  readonly stateDir: string;
  /** DER EK certificates written by swtpm_setup. */
  readonly ekCertRsa: Buffer;
  readonly ekCertEcc: Buffer;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect({ port, host: '127.0.0.1' });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/**
 * Manufactures a fresh TPM (EK + certificates) in a new folder under `parent` (the system's
 * temporary folder by default) and serves it on 127.0.0.1; stop() removes everything.
 */
export async function startSwtpm(manufacturer: TestManufacturer, parent?: string): Promise<Swtpm> {
  const dir = mkdtempSync(join(parent ?? tmpdir(), 'edgeward-swtpm-'));
  const stateDir = join(dir, 'state');
  const certDir = join(dir, 'certs');
  mkdirSync(stateDir);
  mkdirSync(certDir);
  await tool('swtpm_setup', ['--tpm2', '--tpmstate', stateDir, '--create-ek-cert', '--create-platform-cert',
    '--config', manufacturer.setupConfig, '--write-ek-cert-files', certDir, '--pcr-banks', 'sha256',
    '--logfile', join(dir, 'setup.log'), '--overwrite']); // prettier-ignore
  for (let attempt = 0; ; attempt++) {
    // The swtpm TCTI of tpm2-tss talks to the control channel on port + 1.
    const port = await freePort();
    const ctrl = port + 1;
    const child: ChildProcess = spawn(
      'swtpm',
      ['socket', '--tpm2', '--tpmstate', `dir=${stateDir}`,
        '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${ctrl},bindaddr=127.0.0.1`,
        '--flags', 'not-need-init,startup-clear'], // prettier-ignore
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let exited = false;
    child.once('exit', () => {
      exited = true;
    });
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    let ready = false;
    for (let i = 0; i < 100 && !exited; i++) {
      if (await canConnect(port)) {
        ready = true;
        break;
      }
      const err = await Promise.race([
        spawnError,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 20)),
      ]);
      if (err) throw new Error(`swtpm could not start (apt-get install -y swtpm): ${err.message}`);
    }
    if (!ready) {
      child.kill('SIGKILL');
      if (attempt < 3) continue; // port taken between probing and binding: try others
      throw new Error(`swtpm did not listen on 127.0.0.1:${port}`);
    }
    // swtpm cannot follow its parent: a watchdog shell reads a pipe from this process and kills
    // it when the pipe closes, that is when this process ends, however it ends.
    const watchdog = spawn('sh', ['-c', `read _; kill ${String(child.pid)} 2>/dev/null`], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    watchdog.unref();
    (watchdog.stdin as unknown as { unref(): void }).unref();
    return {
      tcti: `swtpm:host=127.0.0.1,port=${port}`,
      port,
      stateDir,
      ekCertRsa: readFileSync(join(certDir, 'ek-rsa2048.crt')),
      ekCertEcc: readFileSync(join(certDir, 'ek-secp384r1.crt')),
      async stop() {
        watchdog.kill();
        if (!exited) {
          const done = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          await done;
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

/**
 * An attestation policy (YAML, `ca serve --attestation-policy`) that trusts this maker's EK
 * certificates, with identity rules in order; rules with `pcrs` carry the golden values read
 * from a reference TPM (`readReferencePcrs` output).
 */
export function policyTrustingMaker(
  maker: TestManufacturer,
  rules: ReadonlyArray<{
    readonly pattern: string;
    readonly methods: readonly string[];
    readonly pcrs?: string;
  }>,
): string {
  return [
    'version: 1',
    'ek:',
    `  roots: [{ file: ${JSON.stringify(maker.rootFile)} }]`,
    `  intermediates: [{ file: ${JSON.stringify(maker.intermediateFile)} }]`,
    'identities:',
    ...rules.flatMap((r) => [
      `  - pattern: ${r.pattern}`,
      `    methods: [${r.methods.join(', ')}]`,
      ...(r.pcrs ?? '')
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => `    ${l}`),
    ]),
    '',
  ].join('\n');
}
