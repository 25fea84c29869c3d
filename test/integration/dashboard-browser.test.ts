// The analysts' dashboard in a real headless Chromium (Debian's, driven by playwright-core)
// against a real SIEM and a real CA reporting to it, asserting what the page shows: every alert
// row with a severity and an entity; attacker-written event fields shown as text; a cloned
// credential's serial quarantined by the playbook shown as quarantined in the inventory, on the
// device's page, on the graph and in the alert's detail (evidence, decision, propagation); a
// revocation made with `edgeward ca revoke` shown within seconds; a quarantine that asks for a
// reason, a duration and a confirmation naming the live connection it cuts, after which a real
// `edgeward agent` process cuts the device's live mTLS connection and the page shows the new
// revision and the agent's acknowledgement without a reload; a viewer who sees no action and no
// `null`; reads audited in the read audit log, not stored as events. Screenshots of every page go
// to test-artifacts/screenshots/, or to docs/img/ (docs/dashboard.md shows them) with
// EDGEWARD_DOC_SCREENSHOTS=1.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCaServer, type RunningCa } from '../../ca/index.js';
import { silentLogger } from '../../common/log.js';
import { newJoinToken } from '../../attestation/index.js';
import { createPufProver, createSimPuf, importPufRecord, provisionPuf } from '../../attestation/puf/index.js';
import { enroll, renew } from '../../client/index.js';
import { loadRules } from '../../policies/rules/index.js';
import {
  startDashboard,
  type RunningDashboard,
  DashboardUsers,
  type RunningSiem,
  createDashboardApi,
  startSiemServer,
} from '../../siem/index.js';
import { loadPlaybooks } from '../../policies/index.js';
import { echoServer, mtlsClient, type ClientResult } from '../agent/fixtures/harness.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { EDGEWARD, edgewardAsync, stop } from '../helpers/cli.js';
import { freePortRange } from '../helpers/ports.js';
import { tempDir } from '../helpers/tmp.js';
import {
  call,
  enrollAs,
  enrollSiemIdentity,
  PLAYBOOKS,
  RULES,
  startTestSiem,
  waitFor,
  type Creds,
} from '../siem/service/setup.js';

const TD = 'factory.example';
const CHROMIUM = '/usr/bin/chromium';
const SHOTS =
  process.env['EDGEWARD_DOC_SCREENSHOTS'] === '1'
    ? join(import.meta.dirname, '..', '..', 'docs', 'img')
    : join(import.meta.dirname, '..', '..', 'test-artifacts', 'screenshots');
const XSS_REASON = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">';
const XSS_AGENT = '"><svg onload="window.__xss = 3">';
const DEVICE = `spiffe://${TD}/device/evil-1`;
const CLONED = `spiffe://${TD}/device/cloned-1`;
const REVOKED = `spiffe://${TD}/device/revoked-1`;
const PUF_DEVICE = `spiffe://${TD}/device/puf-1`;
const LEVELS = ['critical', 'high', 'medium', 'low', 'informational'];

let ca: TestCa;
let caRunning: RunningCa;
let siem: RunningSiem;
let dash: RunningDashboard;
let api: ReturnType<typeof createDashboardApi>;
let node: Creds;
let device: Creds;
let browser: Browser;
let app: Awaited<ReturnType<typeof echoServer>>;
let agent: ChildProcess;
let agentLog = '';
let siemIdentity: Awaited<ReturnType<typeof enrollSiemIdentity>>;
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

const serialOf = async (dirName: string): Promise<string> => {
  const rows = (await api.inventory({ q: `${TD}/device/${dirName}`, limit: 1, offset: 0 })).items;
  const serial = rows[0]?.['serial'];
  return typeof serial === 'string' ? serial : '';
};

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (scripts/install-deps.sh)`);
  mkdirSync(SHOTS, { recursive: true });
  // The SIEM enrolls first; the CA then serves again on a known port, reporting to the SIEM
  // (its enrollments and verdicts make the inventory), and the SIEM polls its CRL.
  const caDir = join(dir, 'ca');
  const first = await startTestCa({ dataDir: caDir });
  const identity = await enrollSiemIdentity(first, dir);
  siemIdentity = identity;
  await first.stop();
  const caPort = await freePortRange();
  siem = await startTestSiem(dir, identity, `https://127.0.0.1:${caPort}`, { heartbeatMs: 200 });
  caRunning = await startCaServer({
    dataDir: caDir,
    host: '127.0.0.1',
    port: caPort,
    log: silentLogger,
    siem: { url: siem.url },
    rateLimits: {
      perIp: { rate: 10_000, burst: 10_000 },
      perIdentity: { rate: 1000, burst: 1000 },
      perEnrollSource: { rate: 10_000, burst: 10_000 },
    },
  });
  ca = {
    ...first,
    url: caRunning.url,
    running: caRunning,
    async token(id, ttlMs = 900_000) {
      const t = newJoinToken();
      const now = Date.now();
      await caRunning.store.createToken(
        { hash: t.hash, identity: id, createdAt: now, expiresAt: now + ttlMs },
        now,
      );
      return t.token;
    },
    stop: () => caRunning.close(),
  };
  const users = new DashboardUsers(siem.stores.users);
  await users.add('ana', 'analyst', 'analyst password 1', Date.now());
  await users.add('vic', 'viewer', 'viewer password 1', Date.now());
  api = createDashboardApi(siem, { inventory: siem.stores.inventory, rules: await loadRules(RULES) });
  dash = await startDashboard({
    host: '127.0.0.1',
    port: 0,
    tls: { key: identity.keyPem, cert: identity.certPem },
    api,
    users,
    sessions: siem.stores.sessions,
    log: silentLogger,
  });
  node = await enrollAs(ca, `spiffe://${TD}/node/n1`, join(dir, 'n1'));
  device = await enrollAs(ca, DEVICE, join(dir, 'evil-1'));
  await enrollAs(ca, CLONED, join(dir, 'cloned-1'));
  await enrollAs(ca, REVOKED, join(dir, 'revoked-1'));
  // A PUF device (the simulator, 5 % bit errors) enrolled in challenge-response mode, so the CA
  // measures the response's distance.
  const { json } = provisionPuf({
    id: PUF_DEVICE,
    puf: createSimPuf({ seed: 'dash-puf-1', ber: 0.1 }),
    crps: 3,
  });
  await caRunning.store.transaction((tx) => importPufRecord(tx, json));
  await enroll({
    ca: ca.url,
    fingerprint: ca.fingerprint,
    id: PUF_DEVICE,
    prover: createPufProver({ puf: 'sim:dash-puf-1,ber=0.05', id: PUF_DEVICE, mode: 'crp' }),
    out: join(dir, 'puf-1'),
  });
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
  await waitFor(
    'the CA’s enrollments in the inventory',
    async () => (await serialOf('revoked-1')) !== '',
    15_000,
  );
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
  await caRunning?.close();
});

/** A page logged in as `name`; the dashboard presents the SIEM's URI-SAN certificate. */
async function loggedIn(name: string, password: string): Promise<Page> {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 800 },
  });
  const page = await context.newPage();
  await page.goto(dash.url);
  await page.fill('#login-name', name);
  await page.fill('#login-password', password);
  await page.click('#login-submit');
  await page.waitForSelector('#alert-body', { state: 'attached' });
  return page;
}

const shot = (page: Page, name: string): Promise<Buffer> =>
  page.screenshot({ path: join(SHOTS, `dashboard-${name}.png`), fullPage: true });

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

/** The node reports the cloned device's certificate connecting from two addresses at once. */
function cloneEvents(serial: string): Record<string, unknown>[] {
  const t = Date.now() - 2000;
  return ['198.51.100.20', '198.51.100.21'].map((ip, i) => ({
    '@timestamp': t + i * 200,
    'event.action': 'connection.accepted',
    'event.outcome': 'success',
    'source.ip': ip,
    'source.port': 40_000 + i,
    'source.identity': CLONED,
    'destination.identity': node.identity,
    'tls.client.x509.serial_number': serial,
    'network.direction': 'inbound',
  }));
}

/** The text of every cell in a column of a table's body rows. */
async function column(page: Page, table: string, n: number): Promise<string[]> {
  return page
    .locator(`table[aria-label="${table}"] tbody tr:not(.empty) td:nth-child(${n})`)
    .allTextContents();
}

let alertDetail = '';

describe('dashboard in Chromium', () => {
  let page: Page;

  it('refuses a wrong password and logs an analyst in', async () => {
    const context = await browser.newContext({
      ignoreHTTPSErrors: true,
      viewport: { width: 1280, height: 600 },
    });
    const bad = await context.newPage();
    await bad.goto(dash.url);
    await bad.fill('#login-name', 'ana');
    await bad.fill('#login-password', 'not the password');
    await bad.click('#login-submit');
    await expect.poll(() => bad.textContent('[role=alert]')).toContain('ERR_DASH_LOGIN');
    await shot(bad, 'login');
    await context.close();
    page = await loggedIn('ana', 'analyst password 1');
    expect(await page.textContent('#who')).toContain('ana (analyst)');
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'ew_session');
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict' });
  });

  it('shows an alert live with its severity and entity, attacker-written fields as text', async () => {
    const r = await call(`${siem.url}/v1/events`, node, { body: events(25) });
    expect(r.status).toBeLessThan(300);
    const row = 'tr.alert-row[data-rule="ew-handshake-failures-burst"]';
    await page.waitForSelector(row, { timeout: 20_000 });
    const cells = await page.locator(`${row} td`).allTextContents();
    expect(cells[1]).toBe('medium');
    expect(cells[2]).toContain('Handshake failures from one source address');
    expect(cells[2]).toContain('ew-handshake-failures-burst');
    expect(cells[3]).toContain('198.51.100.7');
    expect(await page.locator(`${row} td:nth-child(4) a`).getAttribute('href')).toBe(
      `#/entity?id=${encodeURIComponent('198.51.100.7')}`,
    );
    // The timeline of the device, grouped by action, outcome and cause: the 25 refused handshakes
    // are one row, the CA's enrollment another; attacker-written payloads shown literally.
    await page.goto(`${dash.url}/#/entity?id=${encodeURIComponent(DEVICE)}`);
    const grouped = 'table[aria-label="Timeline by action and cause"] > tbody > tr.timeline-group';
    await page.waitForSelector(grouped);
    const burst = page.locator(`${grouped}[data-action="handshake.failure"]`);
    expect(await burst.count()).toBe(1);
    const group = (await burst.locator(':scope > td').allTextContents()).map((c) => c.trim());
    expect(group.slice(0, 5)).toEqual(['▸', '25', 'handshake.failure', 'failure', XSS_REASON]);
    expect(group[5]).toMatch(/^\d+ s ago$/);
    expect(group[6]).toMatch(/^(just now|\d+ s ago)$/);
    expect(group[7]).toBe('device/evil-1');
    expect(group[8]).toBe('node/n1');
    const enrolled = (
      await page.locator(`${grouped}[data-action="enroll.success"] > td`).allTextContents()
    ).map((c) => c.trim());
    expect(enrolled.slice(1, 5)).toEqual(['1', 'enroll.success', 'success', '—']);
    expect(enrolled[8]).toBe('svc/ca');
    expect(await page.textContent('#timeline-summary')).toMatch(
      /^\d+ events \(the newest stored\) in \d+ groups by action, outcome and cause\. Group by action and cause$/,
    );
    // Collapsed until asked; expanding shows the group's 25 events, each with its payload.
    const inner = page.locator('tr.group-events:has(table[aria-label^="Events: handshake.failure"])');
    expect(await inner.isHidden()).toBe(true);
    await burst.locator('button.expand').click();
    expect(await inner.isVisible()).toBe(true);
    expect(await burst.locator('button.expand').getAttribute('aria-expanded')).toBe('true');
    const rows = inner.locator('table tbody tr');
    expect(await rows.count()).toBe(25);
    expect((await rows.nth(0).locator('td').allTextContents())[6]).toBe(XSS_REASON);
    await shot(page, 'entity-timeline');
    await burst.locator('button.expand').click();
    expect(await inner.isHidden()).toBe(true);
    // Ungrouped: one list, newest first.
    await page.uncheck('#tl-grouped');
    await page.waitForSelector('table[aria-label=Timeline] tbody tr');
    expect(await page.textContent('table[aria-label=Timeline]')).toContain(XSS_REASON);
    expect(await column(page, 'Timeline', 2)).toContain('enroll.success');
    expect(await page.$('#timeline script, #timeline img, svg[onload]')).toBeNull();
    expect(await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss)).toBeUndefined();
  });

  it('shows the serial the playbook quarantines as quarantined everywhere, and the alert’s detail', async () => {
    const serial = await serialOf('cloned-1');
    const r = await call(`${siem.url}/v1/events`, node, { body: cloneEvents(serial) });
    expect(r.status).toBeLessThan(300);
    await page.goto(`${dash.url}/#/alerts`);
    const row = 'tr.alert-row[data-rule="ew-cloned-credential"]';
    await page.waitForSelector(row, { timeout: 20_000 });
    await waitFor(
      'the agent to apply the serial’s quarantine',
      () => (agentAcked() ?? -1) >= siem.hub.revision,
    );
    await page.reload();
    await page.waitForSelector(row);
    // Every alert row has a severity and an entity (a link).
    const severities = await column(page, 'Alerts', 2);
    expect(severities.length).toBeGreaterThanOrEqual(2);
    for (const s of severities) expect(LEVELS).toContain(s);
    const entities = page.locator('table[aria-label=Alerts] tbody tr.alert-row td:nth-child(4)');
    for (let i = 0; i < severities.length; i++) {
      expect((await entities.nth(i).textContent())?.trim()).not.toBe('');
      expect(await entities.nth(i).locator('a').count()).toBeGreaterThan(0);
    }
    expect(await page.textContent(`${row} td:nth-child(2)`)).toBe('critical');
    expect(await page.textContent(`${row} td:nth-child(4)`)).toContain(serial);
    expect(await page.textContent(`${row} td:nth-child(4)`)).toContain('device/cloned-1');
    await shot(page, 'alerts');
    // Relative times carry the exact time on hover; words never break inside; a favicon.
    expect(await page.getAttribute(`${row} td:nth-child(1) time`, 'title')).toMatch(
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/,
    );
    const wrap: unknown = await page.evaluate(
      "(() => { const s = getComputedStyle(document.querySelector('table[aria-label=Alerts] td')); return [s.wordBreak, s.overflowWrap]; })()",
    );
    expect(wrap).toEqual(['normal', 'normal']);
    const icon = await page.request.get(`${dash.url}/favicon.svg`);
    expect([icon.status(), icon.headers()['content-type']]).toEqual([200, 'image/svg+xml']);
    expect(await page.getAttribute('link[rel=icon]', 'href')).toBe('/favicon.svg');

    // The alert's detail: rule, evidence (each a link to its entity), the decision and who applied it.
    await page.click(`${row} td:nth-child(3) a`);
    await page.waitForSelector('table[aria-label=Evidence] tbody tr');
    expect(await page.textContent('#alert-rule')).toBe('ew-cloned-credential');
    expect(await page.textContent('#rule-description')).not.toBe('');
    const evidence = page.locator('table[aria-label=Evidence] tbody tr');
    expect(await evidence.count()).toBe(2);
    for (let i = 0; i < 2; i++) {
      const link = evidence.nth(i).locator('td:nth-child(4) a');
      expect(await link.getAttribute('href')).toBe(`#/entity?id=${encodeURIComponent(CLONED)}`);
      expect(await evidence.nth(i).textContent()).toContain('connection.accepted');
    }
    expect(await page.textContent('table[aria-label=Evidence]')).toContain('198.51.100.21');
    const decision = page.locator('#alert-decisions [data-decision]');
    expect(await decision.count()).toBe(1);
    expect(await decision.textContent()).toContain(`quarantine serial ${serial}`);
    expect(await decision.textContent()).toContain('active');
    const applied = page.locator(`table[aria-label=Propagation] tr:has-text("node/n1") td`);
    expect((await applied.allTextContents())[1]).toBe('yes');
    await shot(page, 'alert-detail');

    // Inventory: the device's row, and the quarantined filter.
    await page.goto(`${dash.url}/#/inventory?q=cloned-1`);
    await page.waitForSelector(`tr[data-identity="${CLONED}"]`);
    expect(await page.textContent(`tr[data-identity="${CLONED}"] td.status`)).toBe('quarantined');
    await page.goto(`${dash.url}/#/inventory?status=quarantined`);
    await page.waitForSelector(`tr[data-identity="${CLONED}"]`);
    await page.goto(`${dash.url}/#/inventory`);
    await page.waitForSelector(`tr[data-identity="${CLONED}"]`);
    await shot(page, 'inventory');
    // Its own page: status, the decision covering it by serial, attestation and certificates.
    await page.goto(`${dash.url}/#/entity?id=${encodeURIComponent(CLONED)}`);
    await page.waitForSelector('#entity-status');
    expect(await page.textContent('#entity-status')).toBe('quarantined');
    expect(await column(page, 'Decisions', 2)).toEqual([`serial ${serial}`]);
    expect(await page.textContent('#attestation')).toContain('token');
    expect(await page.textContent('#attestation')).toContain('passed');
    const certs = await page.locator('table[aria-label=Certificates] tbody tr td').allTextContents();
    expect(certs[0]).toBe(serial);
    expect(certs[2]).toMatch(/^in 23 h/);
    expect(certs[3]).toBe('current');
    await shot(page, 'entity');
    // The graph: the device's node is drawn as quarantined.
    await page.goto(`${dash.url}/#/graph`);
    await page.waitForSelector(`a[data-node="${CLONED}"]`);
    expect(await page.getAttribute(`a[data-node="${CLONED}"]`, 'class')).toContain('status-quarantined');
    expect(await page.textContent('ul.legend')).toContain('quarantined');
    // The scanner is its address (its failed handshakes proved no identity), quarantined by address.
    expect(await page.getAttribute('a[data-node="198.51.100.7"]', 'class')).toContain('status-quarantined');
    expect(await page.$$('line.edge.denied')).not.toEqual([]);
    // Each edge is an arrow from the side that connected to the side it reached.
    const scan = page.locator(`line.edge[data-from="198.51.100.7"][data-to="${node.identity}"]`);
    expect(await scan.getAttribute('class')).toBe('edge denied');
    expect(await scan.getAttribute('marker-end')).toBe('url(#arrow-denied)');
    expect(await scan.locator('title').textContent()).toBe(
      `198.51.100.7 → ${node.identity}: 25 connections, 25 refused`,
    );
    const clone = page.locator(`line.edge[data-from="${CLONED}"][data-to="${node.identity}"]`);
    expect(await clone.getAttribute('marker-end')).toBe('url(#arrow)');
    expect(await clone.locator('title').textContent()).toBe(`${CLONED} → ${node.identity}: 2 connections`);
    expect(await page.locator('marker#arrow path').getAttribute('d')).toBe('M0,0 L10,5 L0,10 z');
    // The line ends at the target (short of its outline, where the arrowhead sits), not at the source.
    const at = async (sel: string, x: string, y: string): Promise<[number, number]> => [
      Number(await page.getAttribute(sel, x)),
      Number(await page.getAttribute(sel, y)),
    ];
    const target = await at(`a[data-node="${node.identity}"] circle`, 'cx', 'cy');
    const source = await at(`a[data-node="${CLONED}"] circle`, 'cx', 'cy');
    const start = await at(`line.edge[data-from="${CLONED}"][data-to="${node.identity}"]`, 'x1', 'y1');
    const end = await at(`line.edge[data-from="${CLONED}"][data-to="${node.identity}"]`, 'x2', 'y2');
    const dist = (p: [number, number], q: [number, number]): number => Math.hypot(p[0] - q[0], p[1] - q[1]);
    expect(start).toEqual(source);
    expect(dist(end, target)).toBeCloseTo(11, 5);
    expect(await page.textContent('ul.legend')).toContain(
      'connection, from the client to the peer it reached',
    );
    await shot(page, 'graph');
    // The scanner's own page: an address, quarantined by the playbook's address decision.
    await page.click('a[data-node="198.51.100.7"]');
    await page.waitForSelector('#entity-status');
    expect(await page.textContent('#entity-status')).toBe('quarantined');
    expect(await column(page, 'Decisions', 2)).toEqual(['ip 198.51.100.7']);
    const scanGroups = page.locator(
      'table[aria-label="Timeline by action and cause"] > tbody > tr.timeline-group > td:nth-child(2)',
    );
    expect(await scanGroups.allTextContents()).toEqual(['25']);
    await page.uncheck('#tl-grouped');
    expect(await page.locator('table[aria-label=Timeline] tbody tr').count()).toBe(25);
    await page.goto(`${dash.url}/#/charts`);
    await page.waitForSelector('figure.chart');
    expect(await page.textContent('main')).toContain(
      'One certificate serial in use from two addresses at once',
    );
    const barsOf = (label: string): Promise<number> =>
      page.locator(`svg[aria-label="${label}"] rect`).count();
    expect(await barsOf('events per second')).toBe(60);
    await shot(page, 'charts');
    await page.selectOption('#chart-range', '1m');
    await page.waitForSelector('main h2:text-is("Events per second (last minute)")');
    expect(await barsOf('events per second')).toBe(6);
    expect(await page.inputValue('#chart-range')).toBe('1m');
    // Past the 10 minutes in memory the store counts by event time: 12 connections closed 40
    // minutes ago are 0.2 events/s in their 1-minute bar of the last hour.
    const past = Date.now() - 40 * 60_000;
    const closed = Array.from({ length: 12 }, (_, i) => ({
      '@timestamp': past - (past % 60_000) + i * 1000,
      'event.action': 'connection.closed',
      'event.outcome': 'success',
      'source.identity': CLONED,
      'destination.identity': node.identity,
      'network.direction': 'inbound',
    }));
    expect((await call(`${siem.url}/v1/events`, node, { body: closed })).status).toBeLessThan(300);
    const minute = past - (past % 60_000);
    const exactTime = (ms: number): string =>
      new Date(ms)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, ' UTC');
    const barTitle = `${exactTime(minute)}: 0.2 events/s`;
    await waitFor('the store to count the older events', async () => {
      await page.goto(`${dash.url}/#/charts?range=1h&t=${Date.now()}`);
      await page.waitForSelector('main h2:text-is("Events per second (last hour)")');
      return (
        await page.locator('svg[aria-label="events per second"] rect title').allTextContents()
      ).includes(barTitle);
    });
    expect(await barsOf('events per second')).toBe(60);
    expect(await page.inputValue('#chart-range')).toBe('1h');
    expect(await page.textContent('#chart-source')).toBe(
      "Counted by the SIEM's event store by event time, in 1 min buckets.",
    );
    // The cloned credential's alert, counted by the store per rule.
    expect(await page.textContent('main')).toMatch(
      /One certificate serial in use from two addresses at once ew-cloned-credential — 1 in the last hour/,
    );
    await page.selectOption('#chart-range', '24h');
    await page.waitForSelector('main h2:text-is("Events per second (last 24 hours)")');
    expect(await barsOf('events per second')).toBe(48);
    const dayTitles = await page.locator('svg[aria-label="events per second"] rect title').allTextContents();
    const half = past - (past % 1_800_000);
    const inHalf = dayTitles.find((t) => t.startsWith(exactTime(half)));
    // 12 events (and any others of that half hour) over 1,800 s.
    expect(Number(/: ([\d.]+) events\/s$/.exec(inHalf ?? '')?.[1])).toBeGreaterThanOrEqual(0);
    expect(inHalf).toMatch(/ events\/s$/);
    await shot(page, 'charts-day');
  });

  it('shows the CA’s attestation evidence per check: the PUF distance and threshold, then a refused renewal', async () => {
    /** The CA's newest attestation event of the PUF device, as the SIEM stored it. */
    const stored = async (): Promise<Record<string, unknown> | undefined> => {
      const list = await siem.store.timeline({ entity: 'identity', value: PUF_DEVICE, limit: 50 });
      return list.find((e) => e['observer.type'] === 'ca' && e['attestation.method'] === 'puf');
    };
    await waitFor(
      'the PUF enrollment event',
      async () => (await stored())?.['event.action'] === 'enroll.success',
    );
    const enrolled = (await stored()) ?? {};
    expect(enrolled).toMatchObject({
      'attestation.puf.mode': 'crp',
      'attestation.puf.response': 'passed',
      'attestation.puf.threshold': expect.any(Number) as number,
    });
    const distance = Number(enrolled['attestation.puf.distance']);
    const threshold = Number(enrolled['attestation.puf.threshold']);
    expect(distance).toBeGreaterThanOrEqual(0);
    expect(distance).toBeLessThanOrEqual(threshold);

    const check = (name: string): string => `#attestation li[data-check^="${name}"]`;
    const values = async (name: string): Promise<Record<string, string>> => {
      const dt = await page.locator(`${check(name)} dl.check-values dt`).allTextContents();
      const dd = await page.locator(`${check(name)} dl.check-values dd`).allTextContents();
      return Object.fromEntries(dt.map((k, i) => [k, dd[i] ?? '']));
    };
    await page.goto(`${dash.url}/#/entity?id=${encodeURIComponent(PUF_DEVICE)}&t=1`);
    await page.waitForSelector(check('PUF response'));
    expect(await page.textContent('#attestation p')).toMatch(/^puf · enroll\.success .* verdict passed$/);
    expect(await page.textContent(`${check('PUF response')} .check-line`)).toBe(
      'passed: PUF response within the fuzzy extractor’s distance',
    );
    expect(await values('PUF response')).toEqual({
      mode: 'challenge-response',
      distance: `${distance} bits`,
      threshold: `${threshold} bits`,
    });
    expect(await page.textContent(`${check('device provisioned')}`)).toBe(
      'passed: device provisioned (helper data registered) · inferred from the outcome',
    );
    await shot(page, 'entity-attestation');

    // A renewal that re-attests with another device's PUF: refused, with the distance measured.
    const refused = await renew({
      ca: ca.url,
      dir: join(dir, 'puf-1'),
      prover: createPufProver({ puf: 'sim:another-device', id: PUF_DEVICE, mode: 'crp' }),
    }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Error);
    await waitFor('the refused renewal event', async () =>
      (await stored())?.['attestation.puf.response'] === 'failed' ? true : undefined,
    );
    const failed = (await stored()) ?? {};
    expect(failed['error.code']).toBe('ERR_ATT_PUF_CRP_MISMATCH');
    const far = Number(failed['attestation.puf.distance']);
    expect(far).toBeGreaterThan(threshold);
    await page.goto(`${dash.url}/#/entity?id=${encodeURIComponent(PUF_DEVICE)}&t=2`);
    await page.waitForSelector(`${check('PUF response')}.check-failed`);
    expect(await page.textContent('#attestation p')).toMatch(
      /^puf · attestation\.failure .* verdict failed \(crp_mismatch\)$/,
    );
    expect(await page.textContent(`${check('PUF response')} .check-line`)).toBe(
      'failed: PUF response within the fuzzy extractor’s distance',
    );
    expect(await values('PUF response')).toEqual({
      mode: 'challenge-response',
      distance: `${far} bits`,
      threshold: `${threshold} bits`,
    });
    expect(await page.textContent(`${check('device provisioned')} .check-line`)).toBe(
      'passed: device provisioned (helper data registered)',
    );
    expect(await page.textContent(`${check('signature')} .check-line`)).toBe(
      'not reached: signature by the PUF-derived key over the nonce and CSR key',
    );
    await shot(page, 'entity-attestation-refused');
  });

  it('lets an analyst acknowledge and then close an alert, showing who and when; the status filters', async () => {
    const row = 'tr.alert-row[data-rule="ew-cloned-credential"]';
    await page.goto(`${dash.url}/#/alerts?t=${Date.now()}`);
    await page.waitForSelector(row);
    expect(await page.textContent(`${row} td:nth-child(5)`)).toBe('new');
    alertDetail = (await page.getAttribute(`${row} td:nth-child(3) a`, 'href')) ?? '';
    await page.click(`${row} td:nth-child(3) a`);
    await page.waitForSelector('#alert-status button.triage-action');
    expect(await page.textContent('#alert-status .badge')).toBe('new');
    expect(await page.locator('#alert-status button.triage-action').allTextContents()).toEqual([
      'Acknowledge',
      'Close',
    ]);
    await page.click('#alert-status button[data-status=acknowledged]');
    await page.waitForSelector('#alert-status .badge.status-acknowledged');
    expect(await page.textContent('#alert-status')).toMatch(/^Status: acknowledged by ana just now\s*Close$/);
    expect(await page.getAttribute('#alert-status time', 'title')).toMatch(
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/,
    );
    await page.click('#alert-status button[data-status=closed]');
    await page.waitForSelector('#alert-status .badge.status-closed');
    expect((await page.textContent('#alert-status'))?.trim()).toBe('Status: closed by ana just now');
    expect(await page.$$('#alert-status button')).toEqual([]);
    await shot(page, 'alert-closed');
    // The list shows it closed; the open filter leaves it out, the closed one shows only it.
    await page.goto(`${dash.url}/#/alerts`);
    await page.waitForSelector(row);
    expect(await page.textContent(`${row} td:nth-child(5)`)).toBe('closed by ana just now');
    await shot(page, 'alerts-status');
    await page.goto(`${dash.url}/#/alerts?status=new%2Cacknowledged`);
    await page.waitForSelector('table[aria-label=Alerts] tbody tr');
    expect(await page.$$(row)).toEqual([]);
    expect(await page.inputValue('#f-status')).toBe('new,acknowledged');
    await page.goto(`${dash.url}/#/alerts?status=closed`);
    await page.waitForSelector(row);
    expect(await column(page, 'Alerts', 5)).toEqual(['closed by ana just now']);
    // Audited as changes, with the analyst's name.
    const changes: string[] = [];
    await siem.store.scanEvents(
      { actions: ['siem.alert.acknowledge', 'siem.alert.close'], observer: siem.identity().identity },
      (e) => void changes.push(e['event.action']),
    );
    expect(changes).toEqual(['siem.alert.acknowledge', 'siem.alert.close']);
  });

  it('shows a revocation made with `edgeward ca revoke` within seconds', async () => {
    const serial = await serialOf('revoked-1');
    // Another process on the CA's data folder, as an operator runs it (the CA keeps serving).
    const r = await edgewardAsync([
      'ca',
      'revoke',
      '--data',
      join(dir, 'ca'),
      '--id',
      REVOKED,
      '--reason',
      'keyCompromise',
    ]);
    expect(r.stdout.trim(), r.stderr).toBe(`revoked ${serial}`);
    expect(r.status).toBe(0);
    const t0 = Date.now();
    // The page as an analyst uses it: the revoked filter, asked again until the row is there.
    await waitFor(
      'the revoked device in the inventory’s revoked filter',
      async () => {
        await page.goto(`${dash.url}/#/inventory?status=revoked&t=${Date.now()}`);
        await page.waitForSelector('table[aria-label=Inventory] tbody tr');
        return (await page.$(`tr[data-identity="${REVOKED}"]`)) !== null;
      },
      15_000,
    );
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(await page.textContent(`tr[data-identity="${REVOKED}"] td.status`)).toBe('revoked');
    await page.goto(`${dash.url}/#/entity?id=${encodeURIComponent(REVOKED)}`);
    await page.waitForSelector('#entity-status');
    expect(await page.textContent('#entity-status')).toBe('revoked');
    expect((await page.locator('table[aria-label=Certificates] tbody tr td').allTextContents())[3]).toBe(
      'revoked',
    );
    // No quarantine button for a revoked identity: it cannot connect anyway.
    expect(await page.$('#quarantine-entity')).toBeNull();
  });

  it('asks for a reason, a duration and a confirmation; the agent cuts the live connection; the page shows the revision and the ack live', async () => {
    // The device holds a live mTLS connection through the agent to the app.
    const live = deviceConnects();
    expect(await live.accepted, agentLog).toBe(true);
    let cut = false;
    void live.closed.then(() => (cut = true));
    live.socket.write('still here\n');
    await new Promise<void>((resolve) => live.socket.once('data', () => resolve()));
    await waitFor('the agent’s report of the live connection', () =>
      Number(api.preview({ type: 'identity', value: DEVICE })['liveConnections']) === 1 ? true : undefined,
    );

    // From the entity page: the button asks first; cancelling changes nothing.
    const before = siem.hub.revision;
    await page.goto(`${dash.url}/#/entity?id=${encodeURIComponent(DEVICE)}`);
    await page.click('#quarantine-entity');
    await page.waitForSelector('dialog[open] #d-reason');
    expect(await page.$('dialog[open] #d-ttl')).not.toBeNull();
    await page.click('#dialog-cancel');
    expect(siem.hub.revision).toBe(before);

    // From the decisions page, which stays loaded throughout (no reload: the marker survives).
    await page.goto(`${dash.url}/#/decisions`);
    await page.waitForSelector('#q-value');
    await page.evaluate(() => ((globalThis as unknown as { __loaded: number }).__loaded = 1));
    await page.selectOption('#q-type', 'identity');
    await page.fill('#q-value', DEVICE);
    await page.click('#q-submit');
    await page.waitForSelector('dialog[open] #dialog-summary');
    // The summary names what will be cut: the live connection, on which agent.
    await expect.poll(() => page.textContent('#dialog-summary')).toContain('1 live connection');
    expect(await page.textContent('#dialog-summary')).toContain('node/n1');
    await page.waitForSelector('dialog[open]');
    // Without a reason the dialog does not go through.
    await page.click('#dialog-confirm');
    expect(await page.$('dialog[open]')).not.toBeNull();
    expect(siem.hub.revision).toBe(before);
    await page.fill('#d-reason', 'lateral movement from evil-1');
    await page.selectOption('#d-ttl', '900');
    await shot(page, 'quarantine-dialog');
    await page.click('#dialog-confirm');
    await waitFor('the quarantine decision', () => (siem.hub.revision > before ? true : undefined));
    const quarantined = siem.hub.revision;
    const decisionRow = `table[aria-label="Active decisions"] tr[data-decision]:has-text("${DEVICE}")`;
    await page.waitForSelector(decisionRow);
    expect(await page.textContent(decisionRow)).toContain('lateral movement from evil-1');
    expect(await page.textContent(`${decisionRow} td:nth-child(4)`)).toMatch(/^in 1[45] min$/);

    await waitFor('the agent to cut the quarantined device’s live connection', () => cut);
    const metrics = (await agentAdmin('/metrics')).body;
    expect(metrics).toMatch(/edgeward_agent_kills_total\{reason="ERR_AGENT_QUARANTINED"\} 1\b/);
    expect(await deviceConnects().accepted).toBe(false);

    // The page shows the new revision and the agent's acknowledgement of it, without a reload.
    await expect.poll(() => page.textContent('#revision'), { timeout: 10_000 }).toBe(String(quarantined));
    const ackRow = `table[aria-label="Agent acknowledgements"] tr[data-agent="${node.identity}"]`;
    await expect
      .poll(async () => Number(await page.textContent(`${ackRow} td.ack-revision`)), { timeout: 10_000 })
      .toBeGreaterThanOrEqual(quarantined);
    await expect.poll(() => page.textContent(`${ackRow} td.agent-state`)).toBe('current');
    expect(await page.evaluate(() => (globalThis as unknown as { __loaded?: number }).__loaded)).toBe(1);
    await shot(page, 'decisions');

    // Lift: asks for a reason, then the row goes and the agent lets the device back.
    await page.click(`${decisionRow} button.lift`);
    await page.waitForSelector('dialog[open] #l-reason');
    await page.fill('#l-reason', 'false positive: test traffic');
    await page.click('#dialog-confirm');
    await page.waitForSelector(decisionRow, { state: 'detached' });
    const lifted = siem.hub.revision;
    expect(lifted).toBeGreaterThan(quarantined);
    await expect.poll(() => page.textContent('#revision'), { timeout: 10_000 }).toBe(String(lifted));
    await expect
      .poll(async () => Number(await page.textContent(`${ackRow} td.ack-revision`)), { timeout: 10_000 })
      .toBeGreaterThanOrEqual(lifted);
    const again = deviceConnects();
    expect(await again.accepted, agentLog).toBe(true);
    again.socket.destroy();
    expect(await page.evaluate(() => (globalThis as unknown as { __loaded?: number }).__loaded)).toBe(1);
  });

  it('shows the fleet: each agent online, its revision and lag, last seen, certificate expiry soonest first', async () => {
    await waitFor('the agent to apply the latest revision', () => (agentAcked() ?? -1) >= siem.hub.revision);
    await page.goto(`${dash.url}/#/fleet`);
    await page.waitForSelector('table[aria-label=Fleet] tbody tr[data-agent]');
    const n1 = 'table[aria-label=Fleet] tr[data-agent="spiffe://factory.example/node/n1"]';
    const cells = await page.locator(`${n1} td`).allTextContents();
    expect(cells.slice(0, 4)).toEqual(['node/n1', 'online', String(siem.hub.revision), 'current']);
    expect(cells[4]).toMatch(/^(just now|\d+ s ago)$/);
    expect(cells[5]).toMatch(/^in \d+ (d|h|min)/);
    const exactTime = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/;
    expect(await page.getAttribute(`${n1} td:nth-child(6) time`, 'title')).toMatch(exactTime);
    expect(await page.getAttribute(`${n1} td:nth-child(5) time`, 'title')).toMatch(exactTime);
    const times = page.locator('table[aria-label=Fleet] tbody tr td:nth-child(6) time');
    const expiries: number[] = [];
    for (let i = 0; i < (await times.count()); i++)
      expiries.push(Date.parse((await times.nth(i).getAttribute('datetime')) ?? ''));
    expect(expiries).toEqual([...expiries].sort((x, y) => x - y));
    const states = await column(page, 'Fleet', 2);
    const online = states.filter((x) => x === 'online').length;
    const total = states.length;
    expect(await page.textContent('#fleet-summary')).toBe(
      `${online} of ${total} agent${total === 1 ? '' : 's'} online; decision revision ${siem.hub.revision}. Soonest certificate expiry first.`,
    );
    await shot(page, 'fleet');
  });

  it('says what would appear on the fleet page when no agent follows the SIEM', async () => {
    // A second SIEM with its own data folder: no agent and no CA follow its decision stream.
    mkdirSync(join(dir, 'lone', 'siem'), { recursive: true, mode: 0o700 });
    const lone = await startSiemServer({
      dataDir: join(dir, 'lone', 'siem'),
      host: '127.0.0.1',
      port: 0,
      identity: siemIdentity,
      rules: await loadRules(RULES),
      playbooks: await loadPlaybooks(PLAYBOOKS),
      log: silentLogger,
      synchronous: 'NORMAL',
    });
    const users = new DashboardUsers(lone.stores.users);
    await users.add('vic', 'viewer', 'viewer password 1', Date.now());
    const loneApi = createDashboardApi(lone, { inventory: lone.stores.inventory });
    const loneDash = await startDashboard({
      host: '127.0.0.1',
      port: 0,
      tls: { key: siemIdentity.keyPem, cert: siemIdentity.certPem },
      api: loneApi,
      users,
      sessions: lone.stores.sessions,
      log: silentLogger,
    });
    const context = await browser.newContext({
      ignoreHTTPSErrors: true,
      viewport: { width: 1280, height: 600 },
    });
    try {
      const p = await context.newPage();
      await p.goto(loneDash.url);
      await p.fill('#login-name', 'vic');
      await p.fill('#login-password', 'viewer password 1');
      await p.click('#login-submit');
      await p.waitForSelector('#alert-body', { state: 'attached' });
      await p.goto(`${loneDash.url}/#/fleet`);
      await p.waitForSelector('table[aria-label=Fleet] tbody tr.empty');
      expect(await p.textContent('#fleet-summary')).toBe(
        `0 of 0 agents online; decision revision ${lone.hub.revision}. Soonest certificate expiry first.`,
      );
      expect(await p.locator('table[aria-label=Fleet] tbody tr').count()).toBe(1);
      expect(await p.textContent('table[aria-label=Fleet] tbody tr.empty td')).toBe(
        'No agent has connected to the decision stream yet. Agents appear here once `edgeward agent` runs with this SIEM configured.',
      );
      expect(await p.getAttribute('table[aria-label=Fleet] tbody tr.empty td', 'colspan')).toBe('6');
      await shot(p, 'fleet-empty');
    } finally {
      await context.close();
      await loneDash.close();
      loneApi.close();
      await lone.close();
    }
  });

  it('shows a viewer no action and never the text null', async () => {
    const viewer = await loggedIn('vic', 'viewer password 1');
    const pages = [
      '#/alerts',
      alertDetail,
      `#/entity?id=${encodeURIComponent(CLONED)}`,
      `#/entity?id=${encodeURIComponent(DEVICE)}`,
      '#/inventory',
      '#/decisions',
      '#/graph',
      '#/charts',
      '#/fleet',
    ];
    for (const p of pages) {
      await viewer.goto(`${dash.url}/${p}`);
      await viewer.waitForSelector('main h2');
      await viewer.waitForLoadState('networkidle');
      const body = (await viewer.textContent('main')) ?? '';
      expect(body, p).not.toMatch(/\bnull\b|\bundefined\b|\bNaN\b|\[object/);
      expect(
        await viewer.$$(
          'main button.danger, main button.lift, main button.approve, main button.triage-action, #q-submit, #quarantine-entity',
        ),
        p,
      ).toEqual([]);
    }
    await viewer.goto(`${dash.url}/#/decisions`);
    await viewer.waitForSelector('table[aria-label="Active decisions"]');
    await shot(viewer, 'viewer-decisions');
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
    const triage = await viewer.evaluate(async () => {
      const me = (await (await fetch('/api/me')).json()) as { csrf: string };
      const res = await fetch('/api/alert/status', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf },
        body: JSON.stringify({ id: 'any', time: 1, status: 'closed' }),
      });
      return { status: res.status, body: (await res.json()) as { code: string } };
    });
    expect(triage).toMatchObject({ status: 403, body: { code: 'ERR_DASH_FORBIDDEN' } });
  });

  it('records who read what in the read audit log, and stores no read as an event', async () => {
    const lines = readFileSync(join(dir, 'siem', 'audit-reads.jsonl'), 'utf8')
      .trim()
      .split('\n');
    const reads = lines.map((l) => JSON.parse(l) as { action: string; who: string; what: string });
    expect(reads.some((r) => r.action === 'siem.read.inventory' && r.who === 'vic (session)')).toBe(true);
    expect(reads.some((r) => r.action === 'siem.read.entity' && r.what === `entity ${CLONED}`)).toBe(true);
    const stored: string[] = [];
    await siem.store.scanEvents(
      {
        actions: ['siem.read.alerts', 'siem.read.inventory', 'siem.read.entity', 'siem.read.decisions'],
        observer: siem.identity().identity,
      },
      (e) => void stored.push(e['event.action']),
    );
    expect(stored).toEqual([]);
    // Changes stay events: the quarantine and the lift.
    const changes: string[] = [];
    await siem.store.scanEvents(
      { actions: ['siem.decision.create', 'siem.decision.lift'], observer: siem.identity().identity },
      (e) => void changes.push(e['event.action']),
    );
    expect(changes).toEqual(['siem.decision.create', 'siem.decision.lift']);
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
    const statusNoCsrf = await page.evaluate(async () => {
      const res = await fetch('/api/alert/status', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'any', time: 1, status: 'closed' }),
      });
      return (await res.json()) as { code: string };
    });
    expect(statusNoCsrf.code).toBe('ERR_DASH_CSRF');
    // Hostile input to the newer endpoints: coded refusals, never a crash or a guess.
    const refused = await page.evaluate(async () => {
      const me = (await (await fetch('/api/me')).json()) as { csrf: string };
      const post = (path: string, body: unknown) =>
        fetch(path, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf },
          body: typeof body === 'string' ? body : JSON.stringify(body),
        });
      const out: [number, string][] = [];
      for (const res of [
        await post('/api/decisions/preview', { scope: { type: 'ip', value: '999.1.1.1' } }),
        await post('/api/decisions/preview', { scope: { type: 'identity', value: 'spiffe://x/../y' } }),
        // Prototype poisoning as raw JSON (an object literal's __proto__ would not be sent).
        await post(
          '/api/decisions/preview',
          '{"scope":{"type":"ip","value":"10.0.0.1"},"__proto__":{"x":1}}',
        ),
        await post('/api/decisions/some-id/lift', { reason: 'r', extra: 1 }),
        await fetch('/api/alert?id=nope&time=1'),
        await fetch('/api/alert?id=nope&time=-1'),
        await fetch('/api/alerts?severity=critical,bogus'),
        await fetch('/api/alerts?since=soon'),
        await post('/api/alert/status', { id: 'nope', time: 1, status: 'closed' }),
        await post('/api/alert/status', { id: 'nope', time: 1, status: 'reopened' }),
        await post('/api/alert/status', { id: 'nope', time: 1, status: 'closed', by: 'mallory' }),
      ])
        out.push([res.status, ((await res.json()) as { code: string }).code]);
      return out;
    });
    expect(refused).toEqual([
      [400, 'ERR_IP_INVALID'],
      [400, 'ERR_ID_INVALID'],
      [400, 'ERR_INPUT_MALFORMED'],
      [400, 'ERR_INPUT_MALFORMED'],
      [404, 'ERR_NOT_FOUND'],
      [400, 'ERR_INPUT_MALFORMED'],
      [400, 'ERR_INPUT_MALFORMED'],
      [400, 'ERR_INPUT_MALFORMED'],
      [404, 'ERR_NOT_FOUND'],
      [400, 'ERR_INPUT_MALFORMED'],
      [400, 'ERR_INPUT_MALFORMED'],
    ]);
    const anon = await browser.newContext({ ignoreHTTPSErrors: true });
    const p = await anon.newPage();
    const res = await p.request.get(`${dash.url}/api/alerts`);
    expect(res.status()).toBe(401);
    expect(res.headers()['content-security-policy']).toContain("script-src 'self'");
    await anon.close();
  });
});
