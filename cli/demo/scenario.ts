// The demo's story: the control plane (CA, SIEM with its dashboard), three agents in front of
// local apps, devices with PUF and TPM evidence, normal traffic, then two attacks, printed as a
// timeline ordered by cause, and the commands to look further (each one works as printed).
import { writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { systemClock } from '../../common/clock.js';
import { createPrivateFile } from '../../common/private-files.js';
import { loadIdentity, type LoadedIdentity } from '../../common/identity-dir.js';
import { uriSans } from '../../common/x509.js';
import { FILES, initCa, parseServiceNames } from '../../ca/index.js';
import { enroll } from '../../client/index.js';
import { createPufProver, openPuf, provisionPuf } from '../../attestation/puf/index.js';
import { createTpmProver } from '../../attestation/tpm/index.js';
import { DashboardUsers, openDashboardDb, sqliteUserStore } from '../../siem/index.js';
import { EDGEWARD, sleep, tcpFrom, type Mesh, type Ports } from './supervisor.js';
import { demoTpm } from './tpm.js';
import { makeLocalWebCertificate } from './web-cert.js';

const TD = 'factory.example';
/** The service names the demo's CA declares: loopback, where everything listens. */
const DEMO_SERVICE_IPS = '127.0.0.0/8,::1';

/** GET on the SIEM's analyst API with the CA's admin identity. */
function siemGet<T>(url: string, admin: LoadedIdentity): Promise<T> {
  return new Promise((r, j) => {
    const req = request(
      url,
      {
        key: admin.keyPem,
        cert: admin.certPem,
        ca: admin.bundlePem,
        checkServerIdentity: (_h, c) =>
          uriSans(c.subjectaltname).includes(`spiffe://${TD}/svc/siem`)
            ? undefined
            : new Error('not the SIEM'),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            r(JSON.parse(Buffer.concat(chunks).toString()) as T);
          } catch (err) {
            j(err instanceof Error ? err : new Error(String(err)));
          }
        });
      },
    );
    req.on('error', j);
    req.end();
  });
}

function agentConfig(o: {
  dir: string;
  id: string;
  tokenFile: string;
  caUrl: string;
  fp: string;
  siemUrl: string;
  inbound: number;
  app: number;
  admin: number;
  outbound?: { listen: number; connect: number; expect: string };
}): string {
  return [
    `identity: { dir: ${JSON.stringify(o.dir)}, id: ${o.id} }`,
    `ca: { url: ${o.caUrl}, fingerprint: "${o.fp}", crlInterval: 5s }`,
    `enroll: { attest: token, tokenFile: ${JSON.stringify(o.tokenFile)} }`,
    `siem: { url: ${o.siemUrl}, flushInterval: 100ms }`,
    `admin: { listen: 127.0.0.1:${o.admin} }`,
    'inbound:',
    `  - { listen: 127.0.0.1:${o.inbound}, forward: 127.0.0.1:${o.app}, allow: ["spiffe://${TD}/device/*", "spiffe://${TD}/node/*"] }`,
    ...(o.outbound
      ? [
          'outbound:',
          `  - { listen: 127.0.0.1:${o.outbound.listen}, connect: 127.0.0.1:${o.outbound.connect}, expect: ${o.outbound.expect} }`,
        ]
      : []),
    '',
  ].join('\n');
}

interface AlertView {
  id: string;
  ruleId: string;
  title: string;
  level: string;
  type: string;
  time: number;
  groupBy: Record<string, string>;
}
interface DecisionView {
  id: string;
  revision: number;
  createdAt: number;
  scope: { type: string; value: string };
  action: string;
  reason: string;
}

/** Runs the story in `mesh` (its folder is fresh); with `once`, returns after the story. */
export async function runScenario(mesh: Mesh, ports: Ports, once: boolean): Promise<void> {
  const dir = mesh.dir;
  const out = mesh.out;
  // ---- the control plane ----
  const caDir = join(dir, 'ca');
  // The mesh CA may vouch for loopback addresses (where the demo's services listen) and no DNS
  // name: a browser that trusts its root still trusts it for nothing on the web.
  const init = await initCa({
    dataDir: caDir,
    trustDomain: TD,
    clock: systemClock,
    passphrase: undefined,
    serviceNames: parseServiceNames(undefined, DEMO_SERVICE_IPS),
  });
  mesh.step(`CA for ${TD} created; root fingerprint ${init.fingerprint}`);
  // Join tokens are made as an operator makes them (`edgeward ca token --out`), in 0600 files,
  // never on a command line (any local user reads those).
  const tokenFile = async (id: string, file: string): Promise<string> => {
    await mesh.run(['ca', 'token', '--data', caDir, '--id', id, '--ttl', '15m', '--out', file]);
    return file;
  };
  // The dashboard's browser certificate is a local web certificate, not the mesh CA's.
  const dash = makeLocalWebCertificate(join(dir, 'dashboard'), Date.now(), 7 * 24 * 3600_000);
  // A TPM device through swtpm when it is installed; the policy then trusts its TEST maker.
  const tpm = await demoTpm(dir, mesh);
  const policyArgs = tpm ? ['--attestation-policy', tpm.policyFile] : [];
  const caUrl = `https://127.0.0.1:${ports.ca}`;
  // The CA reports its own events to the SIEM; they wait in its spool until the SIEM is up.
  await mesh.start(
    'ca',
    [
      'ca',
      'serve',
      '--data',
      caDir,
      '--listen',
      `127.0.0.1:${ports.ca}`,
      '--siem',
      `https://127.0.0.1:${ports.siem}`,
      ...policyArgs,
    ],
    /root fingerprint/,
  );
  mesh.step(`CA serving on ${caUrl} (log: ${join(dir, 'ca.log')})`);
  const siemUrl = `https://127.0.0.1:${ports.siem}`;
  const siemDir = join(dir, 'siem');
  const siemToken = await tokenFile(`spiffe://${TD}/svc/siem`, join(dir, 'siem.token'));
  await mesh.start(
    'siem',
    [
      'siem',
      'serve',
      '--data',
      siemDir,
      '--listen',
      `127.0.0.1:${ports.siem}`,
      '--ca',
      caUrl,
      '--fingerprint',
      init.fingerprint,
      '--token-file',
      siemToken,
      '--dashboard',
      `127.0.0.1:${ports.dashboard}`,
      '--dashboard-cert',
      dash.certFile,
      '--dashboard-key',
      dash.keyFile,
    ],
    /dashboard on/,
  );
  mesh.step(`SIEM enrolled as spiffe://${TD}/svc/siem with a join token, serving on ${siemUrl}`);
  const dashUrl = `https://127.0.0.1:${ports.dashboard}`;
  const password = randomBytes(12).toString('base64url');
  const users = openDashboardDb(siemDir);
  try {
    await new DashboardUsers(sqliteUserStore(users)).add('analyst', 'analyst', password, Date.now());
  } finally {
    users.close();
  }
  const role = await dashboardLogin(ports.dashboard, dash.rootPem, 'analyst', password);
  mesh.step(
    `analysts' dashboard on ${dashUrl}: its certificate (localhost, 127.0.0.1) verified against the demo's local web root; login as analyst (${role}) OK`,
  );

  // ---- the edge: three agents in front of three local apps ----
  const nodes = [1, 2, 3].map((i) => `spiffe://${TD}/node/n${i}`);
  for (let i = 0; i < 3; i++) {
    await mesh.echoApp(ports.apps[i] as number);
    const name = `n${i + 1}`;
    const cfg = join(dir, `${name}.yaml`);
    writeFileSync(
      cfg,
      agentConfig({
        dir: join(dir, name),
        id: nodes[i] as string,
        tokenFile: await tokenFile(nodes[i] as string, join(dir, `${name}.token`)),
        caUrl,
        fp: init.fingerprint,
        siemUrl,
        inbound: ports.inbound[i] as number,
        app: ports.apps[i] as number,
        admin: ports.admin[i] as number,
        ...(i === 2
          ? { outbound: { listen: ports.outbound, connect: ports.inbound[0], expect: nodes[0] as string } }
          : {}),
      }),
    );
  }
  // Agents log to stderr; readiness is their admin /healthz.
  for (let i = 0; i < 3; i++)
    void mesh
      .start(`n${i + 1}`, ['agent', '--config', join(dir, `n${i + 1}.yaml`)], /$^/)
      .catch(() => undefined);
  await waitFor(
    async () => (await Promise.all(ports.admin.map((p) => healthy(p)))).every(Boolean),
    60_000,
    'agents healthy',
  );
  mesh.step(
    `3 agents enrolled and listening: mTLS on 127.0.0.1:${ports.inbound.join(', :')} (admin /metrics on :${ports.admin.join(', :')})`,
  );

  // ---- devices with a simulated PUF, provisioned at "manufacture", enrolled in the field ----
  const devices: LoadedIdentity[] = [];
  for (let i = 1; i <= 4; i++) {
    const id = `spiffe://${TD}/device/d${i}`;
    const { json } = provisionPuf({ id, puf: openPuf(`sim:demo-device-${i}`) });
    // Registered as an operator registers it: the record file (a secret: 0600) and `ca puf import`.
    const record = join(dir, `d${i}.puf.json`);
    createPrivateFile(record, `${JSON.stringify(json, null, 2)}\n`);
    await mesh.run(['ca', 'puf', 'import', '--data', caDir, record]);
    await enroll({
      ca: caUrl,
      fingerprint: init.fingerprint,
      id,
      prover: createPufProver({ puf: `sim:demo-device-${i},ber=0.12`, id }),
      out: join(dir, `d${i}`),
    });
    devices.push(loadIdentity(join(dir, `d${i}`)));
  }
  mesh.step('4 devices enrolled with PUF evidence (fuzzy extractor at 12 % bit errors)');
  if (tpm) {
    const id = `spiffe://${TD}/device/t1`;
    const prover = createTpmProver({ tcti: tpm.swtpm.tcti, ek: 'ecc', ak: 'ecc' });
    try {
      await enroll({ ca: caUrl, fingerprint: init.fingerprint, id, prover, out: join(dir, 't1') });
    } finally {
      await prover.close?.();
    }
    mesh.step(
      `device t1 enrolled with TPM evidence (swtpm: EK certificate from its TEST maker, credential activation, quote over golden PCRs)`,
    );
  }
  const admin = loadIdentity(join(caDir, 'admin'));
  const d1 = devices[0] as LoadedIdentity;

  // ---- normal traffic ----
  const live = await mesh.tlsConnect(d1, ports.inbound[0], '127.0.0.1');
  let cutAt = 0;
  live.on('close', () => (cutAt = Date.now()));
  const keepAlive = setInterval(() => live.writable && live.write('ping\n'), 250);
  mesh.step(`device d1 (serial ${d1.serial}) holds a live mTLS connection to n1 from 127.0.0.1`);
  await outboundRoundTrip(ports.outbound);
  mesh.step('n3 → n1 over the outbound sidecar: plain TCP on loopback, mTLS between agents: OK');

  // ---- the attack ----
  // From here on the SIEM is polled while things happen, and a poll can learn of an alert after a
  // later step: the timeline is held and printed, in order, once the last poll is in.
  const seen: Seen = { alerts: new Set(), decisions: new Map(), acks: new Map() };
  let polling = Promise.resolve();
  const watch = setInterval(() => {
    polling = polling.then(() => poll(mesh, siemUrl, admin, seen));
  }, 50);
  const attackAt = Date.now();
  mesh.hold();
  mesh.step('ATTACK 1: a clone of d1’s key and certificate connects to n2 from a second address, 127.0.0.2');
  const clone = await mesh.tlsConnect(d1, ports.inbound[1], '127.0.0.2').catch(() => undefined);
  await waitFor(async () => cutAt > 0, 20_000, 'the live connection of the cloned credential to be cut');
  // The cut goes into the timeline once the decision that caused it and its acknowledgements
  // are in, each at the time it happened.
  const followers = [...nodes, `spiffe://${TD}/svc/ca`];
  await waitFor(
    async () => appliedEverywhere(seen, 'serial', followers),
    20_000,
    'the decision behind the cut and its acknowledgements',
  );
  mesh.note(`d1’s live connection to n1 was cut, ${cutAt - attackAt} ms after the clone connected`, cutAt);
  clone?.destroy();
  clearInterval(keepAlive);

  mesh.step('ATTACK 2: a rogue host at 127.0.0.3 scans both nodes with TLS handshakes and no certificate');
  for (let i = 0; i < 30; i++) await probe(ports.inbound[i % 2] as number, '127.0.0.3');
  await waitFor(
    async () => appliedEverywhere(seen, 'ip', followers),
    20_000,
    'every agent to apply the decision against the scanner',
  );
  const d2 = devices[1] as LoadedIdentity;
  const fromScanner = await mesh.tlsConnect(d2, ports.inbound[0], '127.0.0.3').then(
    (s) => (s.destroy(), 'accepted'),
    () => 'refused',
  );
  const fromHome = await mesh.tlsConnect(d2, ports.inbound[0], '127.0.0.1').then(
    (s) => (s.destroy(), 'accepted'),
    () => 'refused',
  );
  mesh.step(
    `a valid device credential (d2) is now ${fromScanner} from 127.0.0.3 and ${fromHome} from 127.0.0.1`,
  );
  clearInterval(watch);
  await polling;
  await poll(mesh, siemUrl, admin, seen);
  mesh.release();

  out('');
  out('The mesh is running. Look further:');
  out(`  logs and state:   ${dir}  (<name>.log: JSON log lines; <name>.out: what each printed)`);
  out(`  dashboard:        ${dashUrl}  user analyst, password ${password}`);
  out(
    `                    (the browser must trust the demo's local web root ${dash.rootFile}, which vouches for localhost and the loopback addresses only; or accept the warning)`,
  );
  out(
    `  SIEM analyst API: curl --cacert ${join(caDir, 'admin', 'bundle.pem')} --cert ${join(caDir, 'admin', 'cert.pem')} --key ${join(caDir, 'admin', 'key.pem')} ${siemUrl}/v1/decisions`,
  );
  out(
    `  decisions:        node ${EDGEWARD} siem decisions list --siem ${siemUrl} --identity ${join(caDir, 'admin')}`,
  );
  out(`  identities:       node ${EDGEWARD} ca list --data ${caDir}`);
  out(`  agent metrics:    curl http://127.0.0.1:${ports.admin[0]}/metrics`);
  out(
    `  CRL:              curl -s --cacert ${join(caDir, FILES.rootCert)} ${caUrl}/v1/crl | openssl crl -inform DER -noout -text`,
  );
  out(`  audit chain:      node ${EDGEWARD} ca audit verify --data ${caDir}`);
  if (once) return;
  out('Ctrl-C stops it.');
  await new Promise<void>((r) => {
    process.once('SIGINT', r);
    process.once('SIGTERM', r);
  });
}

/** Logs in to the dashboard as a browser would: TLS checked for the host name against the root. */
function dashboardLogin(port: number, rootPem: string, name: string, password: string): Promise<string> {
  return new Promise((r, j) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        path: '/api/login',
        method: 'POST',
        ca: rootPem,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString();
          if (res.statusCode !== 200)
            return j(new Error(`dashboard login answered ${res.statusCode}: ${body}`));
          r(String((JSON.parse(body) as { role?: unknown }).role));
        });
      },
    );
    req.on('error', j);
    req.end(JSON.stringify({ name, password }));
  });
}

/** What the demo's polls of the SIEM have seen: alert ids, decisions by id, each follower's last ack. */
interface Seen {
  alerts: Set<string>;
  decisions: Map<string, { type: string; revision: number }>;
  acks: Map<string, number>;
}

/** Whether a decision on a `type` scope is in and every follower has acknowledged its revision. */
function appliedEverywhere(seen: Seen, type: string, followers: string[]): boolean {
  const d = [...seen.decisions.values()].find((x) => x.type === type);
  return d !== undefined && followers.every((n) => (seen.acks.get(n) ?? 0) >= d.revision);
}

async function poll(mesh: Mesh, siemUrl: string, admin: LoadedIdentity, seen: Seen): Promise<void> {
  try {
    const { alerts } = await siemGet<{ alerts: AlertView[] }>(`${siemUrl}/v1/alerts?limit=50`, admin);
    for (const al of [...alerts].reverse()) {
      if (seen.alerts.has(al.id) || al.type === 'detection') continue;
      seen.alerts.add(al.id);
      mesh.note(
        `ALERT [${al.level}] ${al.title} (${Object.entries(al.groupBy)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ')})`,
        al.time,
      );
    }
    const d = await siemGet<{ revision: number; active: DecisionView[] }>(`${siemUrl}/v1/decisions`, admin);
    for (const x of d.active) {
      if (seen.decisions.has(x.id)) continue;
      seen.decisions.set(x.id, { type: x.scope.type, revision: x.revision });
      mesh.note(
        `DECISION ${x.action} ${x.scope.type} ${x.scope.value} (revision ${x.revision}): ${x.reason}`,
        x.createdAt,
      );
    }
    const ag = await siemGet<{
      agents: Array<{ identity: string; acked: number | null; ackedAt: number | null }>;
    }>(`${siemUrl}/v1/agents`, admin);
    for (const x of ag.agents) {
      if (x.acked === null || (seen.acks.get(x.identity) ?? 0) >= x.acked) continue;
      seen.acks.set(x.identity, x.acked);
      mesh.note(`ACK ${x.identity} applied revision ${x.acked}`, x.ackedAt ?? Date.now());
    }
  } catch {
    // The next poll tries again.
  }
}

async function healthy(port: number): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/healthz`);
    return r.ok;
  } catch {
    return false;
  }
}

async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** One plain TCP round trip through n3's outbound listener to n1's app. */
function outboundRoundTrip(port: number): Promise<void> {
  return new Promise((r, j) => {
    const s = netConnect({ host: '127.0.0.1', port }, () => s.write('via outbound\n'));
    s.once('data', () => {
      s.destroy();
      r();
    });
    s.once('error', j);
    setTimeout(() => j(new Error('outbound round trip timed out')), 10_000).unref();
  });
}

/** A TLS handshake without a client certificate from `localAddress`: how far did it get? */
function probe(port: number, localAddress: string): Promise<'refused-handshake' | 'closed-before-handshake'> {
  return new Promise((r) => {
    let handshook = false;
    const s = connect({
      socket: tcpFrom(port, localAddress),
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    });
    s.once('secureConnect', () => {
      handshook = true;
      s.write('x');
    });
    const done = (): void => {
      s.destroy();
      r(handshook ? 'refused-handshake' : 'closed-before-handshake');
    };
    s.once('error', done);
    s.once('close', done);
    setTimeout(done, 3000).unref();
  });
}
