// The analysts' dashboard in a real headless Chromium (Debian's, driven by playwright-core)
// against a real SIEM and CA: login, a live alert, event fields carrying script and markup shown
// as text, quarantine from the page making a real `edgeward agent` process (following the SIEM's
// decision stream) cut the quarantined device's live mTLS connection, the agent's acknowledgement
// on the page, the lift letting the device connect again, and a viewer refused by the server.
// Screenshots go to test-artifacts/.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log.js';
import {
  openDashboardDb,
  Inventory,
  startDashboard,
  type RunningDashboard,
  UserStore,
  type RunningSiem,
  createDashboardApi,
} from '../../siem/index.js';
import { echoServer, mtlsClient, type ClientResult } from '../agent/fixtures/harness.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { EDGEWARD, stop } from '../helpers/cli.js';
import { freePortRange } from '../helpers/ports.js';
import { tempDir } from '../helpers/tmp.js';
import {
  call,
  enrollAs,
  enrollSiemIdentity,
  startTestSiem,
  waitFor,
  type Creds,
} from '../siem/service/setup.js';

const TD = 'factory.example';
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts');
const XSS_REASON = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">';
const XSS_AGENT = '"><svg onload="window.__xss = 3">';
const DEVICE = `spiffe://${TD}/device/evil-1`;

let ca: TestCa;
let siem: RunningSiem;
let dash: RunningDashboard;
let api: ReturnType<typeof createDashboardApi>;
let node: Creds;
let device: Creds;
let browser: Browser;
let app: Awaited<ReturnType<typeof echoServer>>;
let agent: ChildProcess;
let agentLog = '';
const agentPorts = { inbound: 0, admin: 0 };
const dir = tempDir('edgeward-dash-');

/** GET on the agent's admin endpoint (plain HTTP on loopback). */
function agentAdmin(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port: agentPorts.admin, path }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

/** The agent's /healthz, or undefined while it is not up (yet). */
async function agentHealth(): Promise<Record<string, unknown> | undefined> {
  if (agent.exitCode !== null || agent.signalCode !== null)
    throw new Error(`the agent exited (${agent.exitCode ?? agent.signalCode}):\n${agentLog}`);
  try {
    const r = await agentAdmin('/healthz');
    return r.status === 200 ? (JSON.parse(r.body) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The revision the SIEM has recorded as acknowledged by the agent (node n1). */
function agentAcked(): number | null {
  return siem.hub.ledger.list(Date.now()).find((a) => a.identity === node.identity)?.acked ?? null;
}

/** A live mTLS connection of the device through the agent to the echo app. */
function deviceConnects(): ClientResult {
  return mtlsClient(agentPorts.inbound, {
    keyPem: device.keyPem,
    certPem: device.certPem,
    ca: device.bundlePem,
  });
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (scripts/install-deps.sh)`);
  mkdirSync(ARTIFACTS, { recursive: true });
  ca = await startTestCa();
  const identity = await enrollSiemIdentity(ca, dir);
  siem = await startTestSiem(dir, identity, ca.url, { heartbeatMs: 200 });
  const db = openDashboardDb(join(dir, 'siem'));
  const users = new UserStore(db);
  await users.add('ana', 'analyst', 'analyst password 1', Date.now());
  await users.add('vic', 'viewer', 'viewer password 1', Date.now());
  api = createDashboardApi(siem, { inventory: new Inventory(db) });
  dash = await startDashboard({
    host: '127.0.0.1',
    port: 0,
    tls: { key: identity.keyPem, cert: identity.certPem },
    api,
    users,
    log: silentLogger,
  });
  node = await enrollAs(ca, `spiffe://${TD}/node/n1`, join(dir, 'n1'));
  device = await enrollAs(ca, DEVICE, join(dir, 'evil-1'));
  // A real agent process for node n1 in front of a local echo app, following the SIEM's
  // decision stream (its signing key fetched from the SIEM and checked against the bundle).
  app = await echoServer();
  agentPorts.inbound = await freePortRange();
  agentPorts.admin = await freePortRange();
  const config = join(dir, 'n1-agent.yaml');
  writeFileSync(
    config,
    [
      `identity: { dir: ${JSON.stringify(join(dir, 'n1'))}, id: ${node.identity} }`,
      `ca: { url: ${ca.url}, fingerprint: "${ca.fingerprint}" }`,
      `siem: { url: ${siem.url}, flushInterval: 100ms }`,
      `state: { dir: ${JSON.stringify(join(dir, 'n1-state'))} }`,
      `admin: { listen: 127.0.0.1:${agentPorts.admin} }`,
      'inbound:',
      `  - { name: app, listen: 127.0.0.1:${agentPorts.inbound}, forward: 127.0.0.1:${app.port}, allow: ["spiffe://${TD}/device/*"] }`,
      '',
    ].join('\n'),
  );
  agent = spawn(process.execPath, [EDGEWARD, 'agent', '--config', config], {
    env: { ...process.env, EDGEWARD_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  agent.stdout?.on('data', (c: Buffer) => (agentLog += c.toString()));
  agent.stderr?.on('data', (c: Buffer) => (agentLog += c.toString()));
  await waitFor(
    'the agent up and following the decision stream',
    async () => (await agentHealth())?.['decisionStream'] === true,
    30_000,
  );
  await waitFor('the agent acknowledging the current revision', () => agentAcked() === siem.hub.revision);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (agent) await stop(agent);
  await app?.close();
  await dash?.close();
  api?.close();
  await siem?.close();
  await ca?.stop();
});

/** A page logged in as `name`; the dashboard presents the SIEM's URI-SAN certificate. */
async function loggedIn(name: string, password: string): Promise<Page> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(dash.url);
  await page.fill('#login-name', name);
  await page.fill('#login-password', password);
  await page.click('#login-submit');
  await page.waitForSelector('#alert-body', { state: 'attached' });
  return page;
}

function events(n: number): Record<string, unknown>[] {
  const t0 = Date.now() - 20_000;
  return Array.from({ length: n }, (_, i) => ({
    '@timestamp': t0 + i * 100,
    'event.action': 'handshake.failure',
    'event.outcome': 'failure',
    'event.reason': XSS_REASON,
    'source.ip': '198.51.100.7',
    'source.identity': DEVICE,
    'user_agent.original': XSS_AGENT,
  }));
}

describe('dashboard in Chromium', () => {
  let page: Page;

  it('refuses a wrong password and logs an analyst in', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const bad = await context.newPage();
    await bad.goto(dash.url);
    await bad.fill('#login-name', 'ana');
    await bad.fill('#login-password', 'not the password');
    await bad.click('#login-submit');
    await expect.poll(() => bad.textContent('[role=alert]')).toContain('ERR_DASH_LOGIN');
    await context.close();
    page = await loggedIn('ana', 'analyst password 1');
    expect(await page.textContent('#who')).toContain('ana (analyst)');
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'ew_session');
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict' });
  });

  it('shows an alert live as events arrive, with attacker-written fields as text', async () => {
    const r = await call(`${siem.url}/v1/events`, node, { body: events(25) });
    expect(r.status).toBeLessThan(300);
    await page.waitForSelector('tr.alert-row[data-rule="ew-handshake-failures-burst"]', { timeout: 20_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-alert.png'), fullPage: true });
    // The timeline of the device shows the payloads literally and nothing ran.
    await page.goto(`${dash.url}/#/entity?id=${encodeURIComponent(DEVICE)}`);
    await page.waitForSelector('table[aria-label=Timeline] tbody tr');
    expect(await page.textContent('table[aria-label=Timeline]')).toContain(XSS_REASON);
    expect(
      await page.$('table[aria-label=Timeline] script, table[aria-label=Timeline] img, svg[onload]'),
    ).toBeNull();
    expect(await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss)).toBeUndefined();
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-entity.png'), fullPage: true });
  });

  it('quarantines from the page: the agent cuts the device’s live connection; the lift lets it back', async () => {
    // The device holds a live mTLS connection through the agent to the app.
    const live = deviceConnects();
    expect(await live.accepted, agentLog).toBe(true);
    let cut = false;
    void live.closed.then(() => (cut = true));
    live.socket.write('still here\n');
    await new Promise<void>((resolve) => live.socket.once('data', () => resolve()));
    expect(cut).toBe(false);

    await page.goto(`${dash.url}/#/entity?id=${encodeURIComponent(DEVICE)}`);
    await page.waitForSelector('#quarantine-entity');
    await page.click('#quarantine-entity');
    await page.waitForSelector(`tr[data-decision]:has-text("${DEVICE}")`);
    expect(await page.textContent('table[aria-label="Active decisions"]')).toContain(DEVICE);
    const quarantined = siem.hub.revision;

    await waitFor('the agent to cut the quarantined device’s live connection', () => cut);
    const metrics = (await agentAdmin('/metrics')).body;
    expect(metrics).toMatch(/edgeward_agent_kills_total\{reason="ERR_AGENT_QUARANTINED"\} 1\b/);
    // A new connection while quarantined is refused by the agent.
    expect(await deviceConnects().accepted).toBe(false);

    // The page shows the agent's acknowledgement of that revision (the SIEM records it first).
    await waitFor('the agent to acknowledge the quarantine', () => (agentAcked() ?? -1) >= quarantined);
    await page.reload();
    const ackRow = `table[aria-label="Agent acknowledgements"] tr:has-text("${node.identity}")`;
    await page.waitForSelector(ackRow);
    const cells = await page.locator(`${ackRow} td`).allTextContents();
    expect(cells[0]).toBe(node.identity);
    expect(Number(cells[1])).toBeGreaterThanOrEqual(quarantined);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-decisions.png'), fullPage: true });

    await page.click(`tr[data-decision]:has-text("${DEVICE}") button.lift`);
    await page.waitForSelector(`tr[data-decision]:has-text("${DEVICE}")`, { state: 'detached' });
    const lifted = siem.hub.revision;
    expect(lifted).toBeGreaterThan(quarantined);
    await waitFor('the agent to acknowledge the lift', () => (agentAcked() ?? -1) >= lifted);
    // Other decisions (the alert's playbook: an IP scope) may stay; none of them names the device.
    const active = api.decisions()['active'] as { scope: { value: string } }[];
    expect(active.some((d) => d.scope.value === DEVICE)).toBe(false);
    const again = deviceConnects();
    expect(await again.accepted, agentLog).toBe(true);
    again.socket.destroy();
    await page.reload();
    await page.waitForSelector(ackRow);
    const after = await page.locator(`${ackRow} td`).allTextContents();
    expect(Number(after[1])).toBeGreaterThanOrEqual(lifted);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-lifted.png'), fullPage: true });
  });

  it('refuses a viewer’s quarantine on the server, whatever the page shows', async () => {
    const viewer = await loggedIn('vic', 'viewer password 1');
    await viewer.goto(`${dash.url}/#/entity?id=${encodeURIComponent(DEVICE)}`);
    await viewer.waitForSelector('#entity-id');
    expect(await viewer.$('#quarantine-entity')).toBeNull();
    const answer = await viewer.evaluate(async () => {
      const me = (await (await fetch('/api/me')).json()) as { csrf: string };
      const res = await fetch('/api/decisions', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf },
        body: JSON.stringify({
          scope: { type: 'identity', value: 'spiffe://factory.example/device/evil-1' },
          action: 'quarantine',
          ttlSeconds: 600,
          reason: 'viewer tries',
        }),
      });
      return { status: res.status, body: (await res.json()) as { code: string } };
    });
    expect(answer).toMatchObject({ status: 403, body: { code: 'ERR_DASH_FORBIDDEN' } });
  });

  it('refuses a change without the CSRF token, and API calls without a session', async () => {
    const noCsrf = await page.evaluate(async () => {
      const res = await fetch('/api/decisions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          scope: { type: 'ip', value: '198.51.100.9' },
          action: 'quarantine',
          ttlSeconds: 600,
          reason: 'no token',
        }),
      });
      return (await res.json()) as { code: string };
    });
    expect(noCsrf.code).toBe('ERR_DASH_CSRF');
    const anon = await browser.newContext({ ignoreHTTPSErrors: true });
    const p = await anon.newPage();
    const res = await p.request.get(`${dash.url}/api/alerts`);
    expect(res.status()).toBe(401);
    expect(res.headers()['content-security-policy']).toContain("script-src 'self'");
    await anon.close();
  });
});
