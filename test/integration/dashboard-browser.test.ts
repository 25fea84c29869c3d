// The analysts' dashboard in a real headless Chromium (Debian's, driven by playwright-core)
// against a real SIEM and CA: login, a live alert, event fields carrying script and markup shown
// as text, quarantine and lift from the page reaching an agent's decision stream, and a viewer
// refused by the server. Screenshots go to test-artifacts/.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log.js';
import { openDashboardDb } from '../../siem/dashboard/cli.js';
import { Inventory } from '../../siem/dashboard/inventory.js';
import { startDashboard, type RunningDashboard } from '../../siem/dashboard/server.js';
import { UserStore } from '../../siem/dashboard/users.js';
import type { RunningSiem } from '../../siem/server.js';
import { createDashboardApi } from '../../siem/service/dashboard-api.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { tempDir } from '../helpers/tmp.js';
import {
  call,
  enrollAs,
  enrollSiemIdentity,
  startTestSiem,
  subscriber,
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
let browser: Browser;
let agentSide: Awaited<ReturnType<typeof subscriber>>;
const dir = tempDir('edgeward-dash-');

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
  agentSide = await subscriber(siem.url, node, join(dir, 'agent'), TD);
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
  agentSide?.client.stop();
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

  it('quarantines from the page; the decision reaches an agent’s stream; lifting it too', async () => {
    const before = agentSide.store.revision;
    await page.click('#quarantine-entity');
    await page.waitForSelector('tr[data-decision]');
    const row = await page.textContent('table[aria-label="Active decisions"]');
    expect(row).toContain(DEVICE);
    await waitFor('the agent applies the quarantine', () => agentSide.store.revision > before);
    expect(agentSide.store.current?.decisions.some((d) => d.scope.value === DEVICE)).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-decisions.png'), fullPage: true });
    await page.click(`tr[data-decision]:has-text("${DEVICE}") button.lift`);
    // Other decisions (the alert's playbook) may arrive meanwhile: wait for this one to go.
    await waitFor(
      'the agent applies the lift',
      () => agentSide.store.current?.decisions.every((d) => d.scope.value !== DEVICE) === true,
    );
    await page.waitForSelector(`tr[data-decision]:has-text("${DEVICE}")`, { state: 'detached' });
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
