// The CA reports its own events to the SIEM (`ca serve --siem`): enrollments and refusals with
// their reasons arrive in the SIEM's store with the CA as their observer; and the CA follows the
// SIEM's signed decision stream, refusing renewals of quarantined identities until the lift.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enroll, remoteCode, renew } from '../../client/index.js';
import { createTokenProver, newJoinToken } from '../../attestation/index.js';
import { startCaServer, type RunningCa } from '../../ca/index.js';
import { serviceId } from '../../common/identity.js';
import { silentLogger } from '../../common/log.js';
import { type RunningSiem, createDashboardApi } from '../../siem/index.js';
import { startTestCa } from '../helpers/ca.js';
import { rawRequest } from '../helpers/https.js';
import { tempDir } from '../helpers/tmp.js';
import { enrollSiemIdentity, startTestSiem, waitFor } from '../siem/service/setup.js';

const TD = 'factory.example';
const dir = tempDir('edgeward-ca-events-');
let ca: RunningCa;
let siem: RunningSiem;
let fingerprint = '';

beforeAll(async () => {
  // The SIEM enrolls with the CA first; then the CA restarts, reporting to the SIEM.
  const first = await startTestCa({ dataDir: join(dir, 'ca') });
  fingerprint = first.fingerprint;
  const identity = await enrollSiemIdentity(first, dir);
  await first.stop();
  // The CA is down at this point; the SIEM's renewal target is never reached in this test.
  siem = await startTestSiem(dir, identity, 'https://127.0.0.1:1');
  ca = await startCaServer({
    dataDir: join(dir, 'ca'),
    host: '127.0.0.1',
    port: 0,
    log: silentLogger,
    siem: { url: siem.url },
  });
});

afterAll(async () => {
  await ca?.close();
  await siem?.close();
});

describe('ca serve --siem', () => {
  it('reports enrollments and refusals, with the CA as observer', async () => {
    const id = `spiffe://${TD}/node/reported`;
    const now = Date.now();
    const t = newJoinToken();
    await ca.store.createToken({ hash: t.hash, identity: id, createdAt: now, expiresAt: now + 600_000 }, now);
    await expect(
      enroll({
        ca: ca.url,
        fingerprint,
        id,
        prover: createTokenProver(`ewt_${'B'.repeat(43)}`),
        out: join(dir, 'bad'),
      }),
    ).rejects.toMatchObject({ code: 'ERR_ENROLL_REFUSED' });
    const issued = await enroll({
      ca: ca.url,
      fingerprint,
      id,
      prover: createTokenProver(t.token),
      out: join(dir, 'good'),
    });
    const timeline = (
      entity: 'source.identity' | 'source.ip',
      value: string,
    ): Promise<Array<Record<string, unknown>>> => siem.store.timeline({ entity, value });
    const failure = async (): Promise<Record<string, unknown> | undefined> =>
      (await timeline('source.ip', '127.0.0.1')).find(
        (e) => e['event.action'] === 'attestation.failure' && e['attestation.claimed_identity'] === id,
      );
    await waitFor(
      'the CA events in the SIEM',
      async () => (await timeline('source.identity', id)).length >= 1 && (await failure()) !== undefined,
    );
    const events = await timeline('source.identity', id);
    expect(events.every((e) => e['observer.identity'] === serviceId(TD, 'ca'))).toBe(true);
    expect(events.find((e) => e['event.action'] === 'enroll.success')).toMatchObject({
      'attestation.method': 'token',
      'tls.client.x509.serial_number': issued.serial,
    });
    // The refused enrollment proved nothing: it is evidence about its address, not about the
    // identity it named (the "anonymous quarantine" attack).
    expect(events.some((e) => e['event.outcome'] === 'failure')).toBe(false);
    expect(await failure()).toMatchObject({
      'error.code': 'ERR_CA_TOKEN_INVALID',
      'event.outcome': 'failure',
      'observer.identity': serviceId(TD, 'ca'),
    });
    expect(await failure()).not.toHaveProperty('source.identity');
  });

  it('refuses renewals of an identity the SIEM quarantines, and renews again after the lift', async () => {
    const id = `spiffe://${TD}/node/quarantined`;
    const now = Date.now();
    const t = newJoinToken();
    await ca.store.createToken({ hash: t.hash, identity: id, createdAt: now, expiresAt: now + 600_000 }, now);
    const out = join(dir, 'quarantined');
    await enroll({ ca: ca.url, fingerprint, id, prover: createTokenProver(t.token), out });
    const health = async (): Promise<{ connected: boolean; revision: number } | undefined> => {
      const r = await rawRequest(`${ca.url}/healthz`);
      return r.json?.['siem'] as { connected: boolean; revision: number } | undefined;
    };
    await waitFor('the CA follows the decision stream', async () => (await health())?.connected === true);

    const api = createDashboardApi(siem);
    const decision = (await api.quarantine('analyst', {
      scope: { type: 'identity', value: id },
      action: 'quarantine',
      ttlMs: 600_000,
      reason: 'test',
    })) as { id: string };
    await waitFor(
      'the CA applied the quarantine',
      async () => (await health())?.revision === siem.hub.revision,
    );
    const refused = await renew({ ca: ca.url, dir: out }).catch((err: unknown) => err);
    expect(remoteCode(refused)).toBe('ERR_CA_IDENTITY_QUARANTINED');
    // Another identity is not affected.
    const other = await renew({ ca: ca.url, dir: join(dir, 'good') });
    expect(other.identity).toBe(`spiffe://${TD}/node/reported`);

    await api.lift('analyst', decision.id);
    await waitFor('the CA applied the lift', async () => (await health())?.revision === siem.hub.revision);
    const renewed = await renew({ ca: ca.url, dir: out });
    expect(renewed.identity).toBe(id);
  });
});
