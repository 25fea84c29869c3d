// The command table: every `edgeward` command and subcommand, its options explained and an
// example. `--help` prints from it, the parsers read their options from it, and the help test
// walks it, so what a command accepts and what its help says cannot drift apart.
import type { CommandGroup, CommandSpec, OptionSpec } from './args.js';
import { CRL_REASONS } from './x509.js';

const data = (what: string): OptionSpec => ({ value: 'DIR', help: what, required: true });
const caData = data('the CA data folder (made by `edgeward ca init`)');
/** Where the CA's state lives when replicas share it; the keys stay in --data. */
const caStore: OptionSpec = {
  value: 'URL',
  help: 'postgres://USER@HOST:PORT/DB: the CA’s state on PostgreSQL, shared by replicas (default: SQLite in --data); a password comes from PGPASSWORD, never the URL',
};
/** Where the SIEM's state lives when replicas share it; the identity and keys stay in --data. */
const siemStore: OptionSpec = {
  value: 'URL',
  help: 'postgres://USER@HOST:PORT/DB: the SIEM’s events, alerts, decisions, users and sessions on PostgreSQL, shared by replicas (default: SQLite in --data); a password comes from PGPASSWORD, never the URL',
};
const TD = 'factory.example';

/** Attestation flags of `enroll` and `renew` (the registry's methods' options). */
const attest = {
  attest: { value: 'METHOD', help: 'how the device proves what it is: token, tpm or puf' },
  id: { value: 'SPIFFE_ID', help: `the identity, such as spiffe://${TD}/node/n1` },
  token: { value: 'TOKEN', help: 'never accepted on the command line', hidden: true },
  'token-file': {
    value: 'FILE',
    help: '--attest token: a file (mode 0600) holding the join token; or EDGEWARD_JOIN_TOKEN',
  },
  tcti: {
    value: 'TCTI',
    help: '--attest tpm: the TPM to use, such as device:/dev/tpmrm0 or swtpm:port=2321',
  },
  puf: { value: 'SPEC', help: '--attest puf: the PUF to read, such as sim:SEED for the simulator' },
  'puf-mode': {
    value: 'key|crp',
    help: '--attest puf: prove by the PUF-derived key (default) or by challenge-response',
  },
} as const satisfies Record<string, OptionSpec>;

const siemClient = {
  siem: { value: 'URL', help: 'the SIEM, such as https://127.0.0.1:8444', required: true },
  identity: {
    value: 'DIR',
    help: 'an identity folder of spiffe://TD/svc/admin (key.pem, cert.pem, bundle.pem); `ca init` makes one in DATA/admin',
    required: true,
  },
} as const satisfies Record<string, OptionSpec>;

export const GROUPS: readonly CommandGroup[] = [
  { path: 'ca', summary: 'the cloud CA: create it, serve it, make join tokens, revoke, list, audit' },
  { path: 'ca audit', summary: 'the CA’s hash-chained audit log' },
  { path: 'ca puf', summary: 'PUF devices registered with the CA' },
  { path: 'siem', summary: 'the SIEM: serve it, its dashboard users, and its analyst API' },
  { path: 'siem user', summary: 'dashboard users' },
  { path: 'siem decisions', summary: 'quarantine decisions: list, quarantine, lift (analyst API)' },
  { path: 'policy', summary: 'check policy files before deploying them; read reference PCRs' },
  { path: 'puf', summary: 'PUF devices: provision at manufacture, evaluate the fuzzy extractor' },
];

export const COMMANDS: readonly CommandSpec[] = [
  {
    path: 'ca init',
    summary:
      'Create a CA: a root and a name-constrained intermediate, the SQLite store, the audit log, and an admin identity (DATA/admin). Keys are encrypted with EDGEWARD_CA_PASSPHRASE when it is set.',
    options: {
      data: data('the folder to create the CA in (made 0700; must not hold a CA yet)'),
      store: caStore,
      'trust-domain': { value: 'TD', help: `the trust domain, such as ${TD}`, required: true },
      dns: {
        value: 'NAME[,NAME...]',
        help: 'DNS names (or *.suffix) service certificates may carry; fixed in the intermediate for good',
        multiple: true,
      },
      ip: {
        value: 'ADDR|CIDR[,...]',
        help: 'addresses or ranges service certificates may carry; fixed in the intermediate for good',
        multiple: true,
      },
    },
    examples: [
      `edgeward ca init --data /var/lib/edgeward/ca --trust-domain ${TD} --dns ca.${TD} --ip 10.0.0.0/8`,
    ],
  },
  {
    path: 'ca serve',
    summary: 'Run the CA’s HTTPS API: enrollment, renewal over mTLS, revocation, the CRL.',
    options: {
      data: caData,
      store: caStore,
      listen: { value: 'HOST:PORT', help: 'where to listen, such as 0.0.0.0:8443', required: true },
      'attestation-policy': {
        value: 'FILE',
        help: 'the attestation policy (EK roots, golden PCRs, methods per identity); without it, tpm is off',
      },
      'leaf-ttl': { value: 'DURATION', help: 'lifetime of issued leaves (default 24h)' },
      'crl-validity': {
        value: 'DURATION',
        help: 'how far ahead the CRL’s nextUpdate is, 5s to 30d (default 1h; re-signed at half of it)',
      },
      durability: { value: 'normal|full', help: 'SQLite synchronous mode (default normal)' },
      'rate-ip': { value: 'N', help: 'requests per second per client address' },
      'rate-identity': { value: 'N', help: 'renewals per minute per identity' },
      'rate-enroll': { value: 'N', help: 'enrollment begins per minute per source' },
      'key-types': { value: 'LIST', help: 'accepted CSR keys: ec-p256, ec-p384, rsa (default ec-p256)' },
      workers: { value: 'N', help: 'worker processes sharing the socket, 1 to 64 (default 1)' },
      siem: {
        value: 'URL',
        help: 'the SIEM to report to and follow decisions from; repeat it for each SIEM replica',
        multiple: true,
      },
    },
    examples: [
      'edgeward ca serve --data /var/lib/edgeward/ca --listen 0.0.0.0:8443 --siem https://siem:8444',
    ],
  },
  {
    path: 'ca token',
    summary: 'Make a one-time join token for an identity; printed, or written to a new 0600 file.',
    options: {
      data: caData,
      store: caStore,
      id: { value: 'SPIFFE_ID', help: 'the identity the token enrolls', required: true },
      ttl: { value: 'DURATION', help: 'how long the token is valid, 1m to 7d (default 15m)' },
      out: { value: 'FILE', help: 'write the token to this new file (mode 0600) instead of printing it' },
    },
    examples: [`edgeward ca token --data /var/lib/edgeward/ca --id spiffe://${TD}/node/n1 --out n1.token`],
  },
  {
    path: 'ca revoke',
    summary: 'Revoke one certificate (--serial) or every certificate of an identity (--id).',
    options: {
      data: caData,
      store: caStore,
      serial: { value: 'HEX', help: 'the serial of the certificate to revoke' },
      id: { value: 'SPIFFE_ID', help: 'revoke every live certificate of this identity' },
      reason: { value: 'REASON', help: `one of ${Object.keys(CRL_REASONS).join(', ')}`, required: true },
    },
    examples: [
      `edgeward ca revoke --data /var/lib/edgeward/ca --id spiffe://${TD}/node/n1 --reason keyCompromise`,
    ],
  },
  {
    path: 'ca release',
    summary:
      'Release the hardware bindings of an identity (so it may enroll with other hardware), or with --hold its renewal hold.',
    options: {
      data: caData,
      store: caStore,
      id: { value: 'SPIFFE_ID', help: 'the identity to release', required: true },
      hold: { help: 'release the renewal hold a quarantine left, not the bindings' },
    },
    examples: [`edgeward ca release --data /var/lib/edgeward/ca --id spiffe://${TD}/device/d1 --hold`],
  },
  {
    path: 'ca list',
    summary:
      'List the identities the CA knows: method, certificates by state (valid, expired, revoked), hardware bindings, standing (renewal hold, revoked).',
    options: { data: caData, store: caStore },
    examples: ['edgeward ca list --data /var/lib/edgeward/ca'],
  },
  {
    path: 'ca show',
    summary:
      'Show one identity: every certificate with its state and dates, hardware bindings, renewal holds.',
    options: { data: caData, store: caStore },
    positionals: { usage: 'SPIFFE_ID', help: 'the identity to show', min: 1 },
    examples: [`edgeward ca show --data /var/lib/edgeward/ca spiffe://${TD}/device/d1`],
  },
  {
    path: 'ca audit verify',
    summary: 'Verify the audit log’s hash chain; exit 1 when it is broken.',
    options: { data: caData, store: caStore },
    examples: ['edgeward ca audit verify --data /var/lib/edgeward/ca'],
  },
  {
    path: 'ca puf import',
    summary: 'Register a provisioned PUF device (its record from `edgeward puf provision`).',
    options: { data: caData, store: caStore },
    positionals: { usage: 'FILE', help: 'the registration record (JSON)', min: 1 },
    examples: ['edgeward ca puf import --data /var/lib/edgeward/ca d1.json'],
  },
  {
    path: 'enroll',
    summary: 'Enroll this device or node with the CA: prove what it is, get an identity folder.',
    options: {
      ca: { value: 'URL', help: 'the CA, such as https://ca:8443', required: true },
      fingerprint: {
        value: 'HEX',
        help: 'the SHA-256 fingerprint of the CA’s root (printed by `ca init`)',
        required: true,
      },
      ...attest,
      out: {
        value: 'DIR',
        help: 'the identity folder to write (key.pem, cert.pem, bundle.pem)',
        required: true,
      },
    },
    notes: ['The join token is never given on the command line: --token-file FILE or EDGEWARD_JOIN_TOKEN.'],
    examples: [
      `edgeward enroll --ca https://ca:8443 --fingerprint 3f…a1 --id spiffe://${TD}/node/n1 --attest token --token-file n1.token --out /var/lib/edgeward/n1`,
    ],
  },
  {
    path: 'renew',
    summary: 'Renew an identity over mTLS (a TPM or PUF identity proves its hardware again).',
    options: {
      ca: {
        value: 'URL',
        help: 'the CA, such as https://ca:8443; repeat it for each CA replica',
        required: true,
        multiple: true,
      },
      dir: { value: 'DIR', help: 'the identity folder to renew in place', required: true },
      ...attest,
    },
    examples: ['edgeward renew --ca https://ca:8443 --dir /var/lib/edgeward/n1'],
  },
  {
    path: 'siem serve',
    summary:
      'Run the SIEM: event ingest, correlation, playbooks, the signed decision stream, and optionally the dashboard. It enrolls its own identity on first start.',
    options: {
      data: data('the SIEM data folder'),
      store: siemStore,
      listen: { value: 'HOST:PORT', help: 'where the mTLS API listens', required: true },
      ca: { value: 'URL', help: 'the CA; repeat it for each CA replica', required: true, multiple: true },
      fingerprint: { value: 'HEX', help: 'the CA root’s SHA-256 fingerprint', required: true },
      token: { value: 'TOKEN', help: 'never accepted on the command line', hidden: true },
      'token-file': { value: 'FILE', help: 'the join token for the first start (or EDGEWARD_JOIN_TOKEN)' },
      'trust-domain': { value: 'TD', help: 'the trust domain (default: the CA’s)' },
      rules: { value: 'DIR', help: 'detection and correlation rules (default policies/default/rules)' },
      playbooks: { value: 'DIR', help: 'response playbooks (default policies/default/playbooks)' },
      'reporter-policy': { value: 'FILE', help: 'who may report which events (default policies/default)' },
      'crl-interval': { value: 'DURATION', help: 'how often to fetch the CA’s CRL, 1s to 24h (default 5s)' },
      'retention-days': { value: 'N', help: 'days of events to keep' },
      'revoke-rules': { value: 'ID,ID', help: 'rules whose alerts also revoke the certificate at the CA' },
      durability: { value: 'full|normal', help: 'SQLite synchronous mode (PostgreSQL commits are durable)' },
      dashboard: { value: 'HOST:PORT', help: 'also serve the analysts’ dashboard here' },
      'dashboard-cert': { value: 'FILE', help: 'the dashboard’s host-name certificate for browsers (PEM)' },
      'dashboard-key': { value: 'FILE', help: 'its private key (PEM)' },
      bus: {
        value: 'URL,URL',
        help: 'NATS JetStream servers (nats://HOST:PORT or tls://HOST:PORT): ingest and correlation through the bus; over tls:// the SIEM presents its mesh certificate and expects the server to be spiffe://TD/svc/nats',
      },
      'bus-token-file': {
        value: 'FILE',
        help: 'the bus token (or EDGEWARD_BUS_TOKEN), if the server asks for one',
      },
      'bus-prefix': { value: 'NAME', help: 'names the streams and subjects on the bus (default edgeward)' },
      'bus-shards': { value: 'N', help: 'correlation shards, the same for every replica (default 4)' },
      'bus-group': {
        value: 'NAME',
        help: 'replicas sharing one store share a group; each SQLite replica its own (default siem)',
      },
      correlate: {
        value: 'all|none|K,K',
        help: 'the shards this replica stands ready to correlate (default all)',
      },
    },
    examples: [
      'edgeward siem serve --data /var/lib/edgeward/siem --listen 0.0.0.0:8444 --ca https://ca:8443 --fingerprint 3f…a1 --token-file siem.token',
      'edgeward siem serve --data /var/lib/edgeward/siem --listen 0.0.0.0:8444 --ca https://ca:8443 --fingerprint 3f…a1 --bus nats://10.0.0.5:4222,nats://10.0.0.6:4222',
      'edgeward siem serve --data /var/lib/edgeward/siem --store postgres://edgeward@db:5432/siem --listen 0.0.0.0:8444 --ca https://ca:8443 --fingerprint 3f…a1',
    ],
  },
  {
    path: 'siem user add',
    summary:
      'Add a dashboard user. The password comes from a prompt without echo on a terminal, else EDGEWARD_PASSWORD or the first line of standard input.',
    options: {
      data: data('the SIEM data folder'),
      store: siemStore,
      name: { value: 'NAME', help: 'the user name', required: true },
      role: { value: 'viewer|analyst|admin', help: 'what the user may do', required: true },
    },
    examples: [
      'edgeward siem user add --data /var/lib/edgeward/siem --name alice --role analyst',
      'edgeward siem user add --data /var/lib/edgeward/siem --store postgres://edgeward@db:5432/siem --name alice --role analyst',
    ],
  },
  {
    path: 'siem decisions list',
    summary: 'List the SIEM’s active decisions and those waiting for approval (GET /v1/decisions).',
    options: { ...siemClient, json: { help: 'print the API’s JSON answer instead of a table' } },
    examples: [
      'edgeward siem decisions list --siem https://127.0.0.1:8444 --identity /var/lib/edgeward/ca/admin',
    ],
  },
  {
    path: 'siem decisions quarantine',
    summary: 'Quarantine (or isolate) a scope now, signed and pushed to every agent (POST /v1/decisions).',
    options: {
      ...siemClient,
      scope: {
        value: 'TYPE=VALUE',
        help: 'what to quarantine: identity=SPIFFE_ID or pattern, node=SPIFFE_ID, serial=HEX, spki=HEX, ip=ADDR, cidr=RANGE',
        required: true,
      },
      ttl: { value: 'DURATION', help: 'how long it lasts, 1s to 365d, such as 1h', required: true },
      reason: {
        value: 'TEXT',
        help: 'why (kept with the decision, shown to whoever is refused)',
        required: true,
      },
      action: {
        value: 'quarantine|isolate',
        help: 'quarantine refuses and cuts its connections; isolate also outbound (default quarantine)',
      },
      revoke: { help: 'also revoke the scope’s certificates at the CA' },
      json: { help: 'print the API’s JSON answer' },
    },
    examples: [
      `edgeward siem decisions quarantine --siem https://127.0.0.1:8444 --identity /var/lib/edgeward/ca/admin --scope identity=spiffe://${TD}/device/d1 --ttl 1h --reason "cloned credential"`,
    ],
  },
  {
    path: 'siem decisions lift',
    summary: 'Lift a decision before it expires (POST /v1/decisions/ID/lift).',
    options: { ...siemClient, json: { help: 'print the API’s JSON answer' } },
    positionals: { usage: 'ID', help: 'the decision to lift (from `siem decisions list`)', min: 1 },
    examples: [
      'edgeward siem decisions lift --siem https://127.0.0.1:8444 --identity /var/lib/edgeward/ca/admin 5b0e9a52-6f0e-4a63-9a55-0a7c2f1d3e44',
    ],
  },
  {
    path: 'siem agents',
    summary:
      'List who follows the decision stream: connected or not, the revision each acknowledged (GET /v1/agents).',
    options: { ...siemClient, json: { help: 'print the API’s JSON answer instead of a table' } },
    examples: ['edgeward siem agents --siem https://127.0.0.1:8444 --identity /var/lib/edgeward/ca/admin'],
  },
  {
    path: 'siem alerts',
    summary: 'List the SIEM’s alerts, newest first (GET /v1/alerts).',
    options: {
      ...siemClient,
      since: {
        value: 'TIME',
        help: 'only alerts from then on: an ISO time, epoch ms, or an age such as 15m',
      },
      rule: { value: 'ID', help: 'only alerts of this rule' },
      limit: { value: 'N', help: 'at most N alerts' },
      json: { help: 'print the API’s JSON answer instead of a table' },
    },
    examples: [
      'edgeward siem alerts --siem https://127.0.0.1:8444 --identity /var/lib/edgeward/ca/admin --since 1h',
    ],
  },
  {
    path: 'agent',
    summary:
      'Run the edge agent (mTLS sidecar with live enforcement), or with --check only validate its configuration.',
    options: {
      config: { value: 'FILE', help: 'the agent configuration (YAML)', required: true, short: 'c' },
      check: { help: 'validate the configuration, print what it configures, and exit' },
    },
    notes: ['SIGHUP reloads the configuration; a bad one is refused and the old one keeps running.'],
    examples: [
      'edgeward agent --config /etc/edgeward/agent.yaml',
      'edgeward agent --check --config agent.yaml',
    ],
  },
  {
    path: 'puf provision',
    summary: 'Provision a PUF device at manufacture: its key and challenge-response record (a secret, 0600).',
    options: {
      id: { value: 'SPIFFE_ID', help: 'the device identity', required: true },
      puf: { value: 'SPEC', help: 'the PUF, such as sim:SEED[,bias=X] for the simulator', required: true },
      ber: { value: 'RATE', help: 'the simulator’s bit error rate, such as 0.10' },
      crps: { value: 'N', help: 'challenge-response pairs to record, 0 to 1024 (default 32)' },
      out: { value: 'FILE', help: 'the record to write (new file, mode 0600)', required: true },
    },
    examples: [`edgeward puf provision --id spiffe://${TD}/device/d1 --puf sim:seed-1 --out d1.json`],
  },
  {
    path: 'puf eval',
    summary: 'Evaluate the fuzzy extractor: failure rates and Hamming distances on simulated devices.',
    options: {
      reads: { value: 'N', help: 'reads in all (default 3000000)' },
      devices: { value: 'N', help: 'simulated devices (default 1000)' },
      ber: { value: 'RATE,...', help: 'bit error rates to evaluate (default 0.05,0.10,0.15)' },
      'pipeline-reads': { value: 'N', help: 'reads through the whole pipeline (default 2000)' },
      'hd-devices': { value: 'N', help: 'devices for the Hamming distance figures (default 40)' },
    },
    examples: ['edgeward puf eval --reads 300000 --devices 100'],
  },
  {
    path: 'policy check',
    summary:
      'Validate policy files (attestation policies, rules with their embedded tests, playbooks, reporter policies, agent configurations); a folder checks every .yaml in it.',
    options: {},
    positionals: { usage: 'FILE|DIR...', help: 'the files or folders to check', min: 1 },
    examples: ['edgeward policy check policies/default/rules policies/default/playbooks/network.yaml'],
  },
  {
    path: 'policy pcrs',
    summary: 'Read a reference device’s PCRs and print them as the attestation policy’s `tpm` section.',
    options: {
      tcti: { value: 'TCTI', help: 'the TPM to read, such as device:/dev/tpmrm0', required: true },
      bank: { value: 'sha256|sha384|sha512', help: 'the PCR bank (default sha256)' },
      pcrs: { value: 'LIST', help: 'the PCR indices, such as 0,1,7 (default 0 to 7)' },
    },
    examples: ['edgeward policy pcrs --tcti device:/dev/tpmrm0 --pcrs 0,2,4,7'],
  },
  {
    path: 'demo',
    summary:
      'Run the whole mesh on this machine (CA, SIEM with dashboard, three agents, PUF and TPM devices), then an attack, printing the timeline.',
    options: {
      data: { value: 'DIR', help: 'the demo’s folder, remade at every run (default .edgeward/demo)' },
      'port-base': { value: 'N', help: 'the first of the ports the demo uses, 1024 to 65000 (default 8443)' },
      once: { help: 'stop after the story instead of running until Ctrl-C' },
    },
    examples: ['edgeward demo --data /tmp/edgeward-demo --port-base 9443'],
  },
];

/** The command at this path; our own misuse (a path not in the table) is a TypeError. */
export function command(path: string): CommandSpec {
  const c = COMMANDS.find((x) => x.path === path);
  if (!c) throw new TypeError(`no command ${path} in the table`);
  return c;
}
