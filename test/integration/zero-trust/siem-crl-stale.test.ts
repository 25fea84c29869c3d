// The SIEM's CRL past its nextUpdate, against real `ca serve --crl-validity 5s` and `siem serve`
// processes: while the CA serves, /healthz says ok and the CRL current; once the CA is gone longer
// than the last CRL's validity, /healthz says degraded with crl.state stale, /metrics has
// edgeward_siem_crl_stale 1 (and passes promtool), and the serials it lists are still refused;
// the CA back, all is current again. `--crl-validity` outside 5s..30d is refused with exit 2.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMesh, type Mesh } from '../../helpers/mesh.js';
import { tempDir } from '../../helpers/tmp.js';
import { waitFor } from './shared.js';

const VALIDITY_S = 5;
const SLOW = 180_000;

let mesh: Mesh;

beforeAll(async () => {
  if (spawnSync('promtool', ['--version']).error)
    throw new Error('promtool is required for this test (apt-get install -y prometheus)');
  mesh = await startMesh({
    agents: [],
    caArgs: ['--crl-validity', `${VALIDITY_S}s`],
    siemArgs: ['--crl-interval', '1s'],
  });
}, 240_000);
afterAll(async () => mesh?.stop());

interface Health {
  readonly status: number;
  readonly json: Record<string, unknown>;
  readonly crl: Record<string, unknown>;
}

async function health(): Promise<Health> {
  const r = await mesh.call(`${mesh.siemUrl}/healthz`, undefined);
  const json = r.json ?? {};
  return { status: r.status, json, crl: (json['crl'] ?? {}) as Record<string, unknown> };
}

async function metrics(): Promise<string> {
  const r = await mesh.call(`${mesh.siemUrl}/metrics`, undefined);
  expect(r.status).toBe(200);
  const text = r.body.toString();
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  expect(`${check.stdout}${check.stderr}`).toBe('');
  expect(check.status).toBe(0);
  return text;
}

const rotation = (): Record<string, unknown>[] => [{ '@timestamp': Date.now(), 'event.action': 'rotation' }];

describe('the SIEM’s CRL past its nextUpdate (`siem serve`, `ca serve --crl-validity`)', () => {
  it(
    'says degraded and crl.state stale on /healthz and edgeward_siem_crl_stale 1 on /metrics, still refusing what it lists',
    async () => {
      const gone = await mesh.enroll('node/gone');
      const r = mesh.cli([
        'ca',
        'revoke',
        '--data',
        mesh.caDir,
        '--serial',
        gone.serial,
        '--reason',
        'keyCompromise',
      ]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      await waitFor('the SIEM refusing the revoked reporter', async () => {
        const x = await mesh.report(gone, rotation());
        return x.status === 403 && x.json?.['code'] === 'ERR_SIEM_REPORTER_REVOKED';
      });

      // The CA serving: current, its nextUpdate within the validity it was started with.
      const fresh = await waitFor('a current CRL', async () => {
        const h = await health();
        return h.crl['state'] === 'current' && h.crl['source'] === 'ca' ? h : undefined;
      });
      expect(fresh.status).toBe(200);
      expect(fresh.json['status']).toBe('ok');
      expect(fresh.crl).toMatchObject({ ok: true, error: null });
      const next = Date.parse(String(fresh.crl['nextUpdate']));
      expect(next).toBeGreaterThan(Date.now());
      expect(next).toBeLessThanOrEqual(Date.now() + VALIDITY_S * 1000);
      expect(await metrics()).toMatch(/^edgeward_siem_crl_stale 0$/m);

      // The CA gone: no fresher CRL, and past the last one's nextUpdate the SIEM says so.
      await mesh.ca.kill();
      const stale = await waitFor(
        'a stale CRL',
        async () => {
          const h = await health();
          return h.crl['state'] === 'stale' ? h : undefined;
        },
        (VALIDITY_S + 10) * 1000,
      );
      expect(stale.status).toBe(200);
      expect(stale.json['status']).toBe('degraded');
      expect(stale.crl['ok']).toBe(false);
      expect(typeof stale.crl['error']).toBe('string');
      expect(Date.parse(String(stale.crl['nextUpdate']))).toBeLessThanOrEqual(Date.now());
      const text = await metrics();
      expect(text).toMatch(/^edgeward_siem_crl_stale 1$/m);
      const m = /^edgeward_siem_crl_next_update_seconds (\S+)$/m.exec(text);
      expect(Number(m?.[1]) * 1000).toBeLessThanOrEqual(Date.now());
      // What it knew is not forgotten for want of a newer CRL.
      const refused = await mesh.report(gone, rotation());
      expect([refused.status, refused.json?.['code']]).toEqual([403, 'ERR_SIEM_REPORTER_REVOKED']);

      // The CA back: current again.
      await mesh.restartCa();
      const back = await waitFor(
        'a current CRL again',
        async () => {
          const h = await health();
          return h.crl['state'] === 'current' ? h : undefined;
        },
        30_000,
      );
      expect(back.json['status']).toBe('ok');
      expect(back.crl).toMatchObject({ ok: true, error: null });
      expect(await metrics()).toMatch(/^edgeward_siem_crl_stale 0$/m);
    },
    SLOW,
  );

  it('refuses a --crl-validity outside 5s..30d with exit 2 and the range', () => {
    const data = join(tempDir('edgeward-crl-validity-'), 'ca');
    for (const bad of ['4s', '31d', '0', 'soon', '1x']) {
      const r = mesh.cli(['ca', 'serve', '--data', data, '--listen', '127.0.0.1:0', '--crl-validity', bad]);
      expect(r.status, `${bad}: ${r.stdout}${r.stderr}`).toBe(2);
      expect(r.stderr).toContain('--crl-validity must be a duration from 5s to 30d');
    }
  });
});
