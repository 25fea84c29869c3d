// The CA reports its own events to the SIEM (`ca serve --siem`): enrollments and refusals with
// their reasons arrive in the SIEM's store with the CA as their observer.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enroll } from '../../agent/enroll.js';
import { createTokenProver, newJoinToken } from '../../ca/methods/token.js';
import { startCaServer, type RunningCa } from '../../ca/server.js';
import { serviceId } from '../../common/identity.js';
import { silentLogger } from '../../common/log.js';
import type { RunningSiem } from '../../siem/server.js';
import { startTestCa } from '../helpers/ca.js';
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
    ca.store.createToken({ hash: t.hash, identity: id, createdAt: now, expiresAt: now + 600_000 }, now);
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
    const timeline = (): Array<Record<string, unknown>> =>
      siem.store.timeline({ entity: 'source.identity', value: id });
    await waitFor('the CA events in the SIEM', () => timeline().length >= 2);
    const events = timeline();
    expect(events.every((e) => e['observer.identity'] === serviceId(TD, 'ca'))).toBe(true);
    expect(events.find((e) => e['event.action'] === 'enroll.success')).toMatchObject({
      'attestation.method': 'token',
      'tls.client.x509.serial_number': issued.serial,
    });
    expect(events.find((e) => e['event.action'] === 'attestation.failure')).toMatchObject({
      'error.code': 'ERR_CA_TOKEN_INVALID',
      'event.outcome': 'failure',
    });
  });
});
