// Resource attacks against a real mesh (CA and SIEM with its dashboard):
// request-chosen label values on /metrics, and a stranger's wrong passwords locking an analyst
// out. Each asserts the bound or the code, and that the legitimate user still gets in.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest } from '../../helpers/https.js';
import { startMesh, type Mesh } from '../../helpers/mesh.js';

const PASSWORD = 'the analyst’s own long password';

let mesh: Mesh;

beforeAll(async () => {
  // Generous per-address limits at the CA (requests, enrollments): the test is about label values,
  // not request rates, and the enrollment budget (60, then one a second) would otherwise refuse
  // the legitimate enrollment at the end whenever it comes within a second of the 300 others.
  mesh = await startMesh({ dashboard: true, caArgs: ['--rate-ip', '1000', '--rate-enroll', '100000'] });
  mesh.addUser('ana', 'analyst', PASSWORD);
}, 120_000);
afterAll(async () => mesh?.stop());

const series = (metrics: string, name: string): string[] =>
  metrics.split('\n').filter((l) => l.startsWith(`${name}{`));

describe('bounded /metrics', () => {
  it('attacker-chosen labels grow /metrics', async () => {
    for (let i = 0; i < 300; i += 50)
      await Promise.all(
        Array.from({ length: 50 }, (_, k) =>
          mesh.call(`${mesh.caUrl}/v1/enroll/begin`, undefined, {
            body: { id: `spiffe://${mesh.trustDomain}/device/x`, method: `m${i + k}` },
          }),
        ),
      );
    const metrics = (await mesh.call(`${mesh.caUrl}/metrics`, undefined)).body.toString();
    const enrollments = series(metrics, 'edgeward_ca_enrollments_total');
    // 64 method names at most, then one `other` series holding the rest of the count.
    expect(enrollments.length).toBeLessThanOrEqual(65);
    const other = enrollments.find((l) => l.includes('method="other"'));
    expect(other).toBeDefined();
    expect(Number(other?.split(' ').pop())).toBeGreaterThanOrEqual(300 - 64);
    // The CA still enrolls.
    await mesh.enroll('device/ok');
  });
});

describe('dashboard login', () => {
  const login = (password: string, localAddress: string) =>
    rawRequest(`${mesh.dashboard?.url}/api/login`, {
      method: 'POST',
      body: JSON.stringify({ name: 'ana', password }),
      localAddress,
    });

  it('ten wrong passwords lock an analyst out from elsewhere', async () => {
    const codes: unknown[] = [];
    for (let i = 0; i < 10; i++)
      codes.push((await login(`guess ${i} of the stranger`, '127.0.0.2')).json?.['code']);
    expect(codes.slice(0, 5)).toEqual(Array(5).fill('ERR_DASH_LOGIN'));
    // The stranger's source backs off ...
    expect(codes.slice(5)).toContain('ERR_RATE_LIMITED');
    const again = await login(PASSWORD, '127.0.0.2');
    expect(again.status).toBe(429);
    expect(again.json?.['code']).toBe('ERR_RATE_LIMITED');
    expect(Number(again.headers['retry-after'])).toBeGreaterThan(0);
    // ... while the analyst, from her own address, logs in at once.
    const mine = await login(PASSWORD, '127.0.0.1');
    expect(mine.status).toBe(200);
    expect(mine.json?.['user']).toBe('ana');
  });
});
