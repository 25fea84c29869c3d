// `edgeward demo` (npm start): the mesh on this machine with embedded defaults. It creates a
// data folder under .edgeward/demo on first run, starts the CA, enrolls a demo node with a join
// token, renews it over mTLS, and keeps serving until Ctrl-C.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { systemClock } from '../common/clock.js';
import { createLogger } from '../common/log.js';
import { FILES } from '../ca/authority.js';
import { initCa } from '../ca/init.js';
import { passphraseFromEnv } from '../ca/keys.js';
import { newJoinToken } from '../ca/methods/token.js';
import { createTokenProver } from '../ca/methods/token.js';
import { startCaServer } from '../ca/server.js';
import { enroll } from '../agent/enroll.js';
import { renew } from '../agent/renew.js';
import { parse, optional } from './args.js';

const TD = 'factory.example';

export async function runDemo(argv: string[], out: (s: string) => void): Promise<number> {
  const a = parse(
    argv,
    { data: { type: 'string' }, port: { type: 'string' }, once: { type: 'boolean' } },
    'edgeward demo [--data DIR] [--port N] [--once]',
  );
  const dataDir = resolve(optional(a.data) ?? '.edgeward/demo');
  const caDir = join(dataDir, 'ca');
  const step = (s: string): void => out(`[${new Date().toISOString().slice(11, 23)}] ${s}`);
  if (!existsSync(join(caDir, FILES.db))) {
    const r = initCa({
      dataDir: caDir,
      trustDomain: TD,
      clock: systemClock,
      passphrase: passphraseFromEnv(),
    });
    step(`initialised a CA for ${TD} in ${caDir}`);
    step(`root fingerprint ${r.fingerprint}`);
  }
  const log = createLogger('ca', process.env['EDGEWARD_LOG_LEVEL'] ?? 'warn');
  const ca = await startCaServer({
    dataDir: caDir,
    host: '127.0.0.1',
    port: Number(optional(a.port) ?? 8443),
    log,
  });
  step(`CA listening on ${ca.url}`);

  const id = `spiffe://${TD}/node/demo-1`;
  const { token, hash } = newJoinToken();
  const now = systemClock.now();
  ca.store.createToken({ hash, identity: id, createdAt: now, expiresAt: now + 15 * 60_000 }, now);
  step(`made a one-time join token for ${id}`);
  const nodeDir = join(dataDir, 'node-demo-1');
  await enroll({
    ca: ca.url,
    fingerprint: ca.fingerprint,
    id,
    prover: createTokenProver(token),
    out: nodeDir,
    print: (s) => step(`enroll: ${s}`),
  });
  await renew({ ca: ca.url, dir: nodeDir, print: (s) => step(`renew: ${s}`) });

  out('');
  out('The mesh is running. Try:');
  out(`  curl --cacert ${join(caDir, FILES.rootCert)} ${ca.url}/healthz`);
  out(
    `  curl -s --cacert ${join(caDir, FILES.rootCert)} ${ca.url}/v1/crl | openssl crl -inform DER -noout -text`,
  );
  out(`  node dist/cli/edgeward.js ca token --data ${caDir} --id spiffe://${TD}/node/n2`);
  out(`  node dist/cli/edgeward.js ca audit verify --data ${caDir}`);
  out('Ctrl-C stops it.');
  if (a.once === true) {
    await ca.close();
    return 0;
  }
  await new Promise<void>((res) => {
    process.once('SIGINT', res);
    process.once('SIGTERM', res);
  });
  await ca.close();
  return 0;
}
