// The CA's events fit the shared schema the SIEM validates.
import { describe, expect, it } from 'vitest';
import { caEventToEdgeEvent } from '../../ca/events.js';
import { validateEvent } from '../../common/events.js';

describe('CA events', () => {
  const now = Date.UTC(2026, 10, 26);
  it('maps an enrollment to enroll.success with method, serial, SPKI hash and expiry', () => {
    const e = caEventToEdgeEvent(
      {
        action: 'enroll',
        outcome: 'success',
        identity: 'spiffe://f.example/node/n1',
        ip: '::ffff:127.0.0.1',
        method: 'tpm',
        serial: 'ab12',
        spkiSha256: 'a'.repeat(64),
        notAfter: now + 1,
      },
      now,
    );
    expect(validateEvent(e)).toMatchObject({
      'event.action': 'enroll.success',
      'source.identity': 'spiffe://f.example/node/n1',
      'source.ip': '127.0.0.1',
      'attestation.method': 'tpm',
      'tls.client.x509.serial_number': 'ab12',
      'tls.client.x509.not_after': now + 1,
    });
  });
  it('maps an attestation refusal to attestation.failure with its reason', () => {
    const e = validateEvent(
      caEventToEdgeEvent(
        {
          action: 'enroll',
          outcome: 'failure',
          identity: 'spiffe://f.example/node/n1',
          method: 'tpm',
          code: 'ERR_ATT_TPM_PCR_MISMATCH',
        },
        now,
      ),
    );
    expect(e['event.action']).toBe('attestation.failure');
    expect(e['attestation.reason']).toBe('pcr_mismatch');
    expect(e['error.code']).toBe('ERR_ATT_TPM_PCR_MISMATCH');
  });
  it('maps renewals and revocations', () => {
    expect(
      validateEvent(
        caEventToEdgeEvent({ action: 'renew', outcome: 'failure', code: 'ERR_CA_CERT_REVOKED' }, now),
      )['event.action'],
    ).toBe('renewal.failure');
    expect(
      validateEvent(caEventToEdgeEvent({ action: 'revocation', outcome: 'success', serial: 'ff' }, now))[
        'event.action'
      ],
    ).toBe('revocation');
  });
});
