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
  // The "anonymous quarantine" attack: a refused enrollment proved no identity, so the identity it
  // named goes into attestation.claimed_identity, never into source.identity that rules key on.
  it('keeps a claimed identity out of source.identity; only proven ones go there', () => {
    const claimed = validateEvent(
      caEventToEdgeEvent(
        {
          action: 'enroll',
          outcome: 'failure',
          claimedIdentity: 'spiffe://f.example/node/n1',
          ip: '192.0.2.9',
          method: 'token',
          code: 'ERR_CA_TOKEN_INVALID',
        },
        now,
      ),
    );
    expect(claimed).toMatchObject({
      'event.action': 'attestation.failure',
      'attestation.claimed_identity': 'spiffe://f.example/node/n1',
      'source.ip': '192.0.2.9',
    });
    expect(claimed).not.toHaveProperty('source.identity');
    // A claim that is not a valid SPIFFE ID is left out, so the event still fits the schema.
    const malformed = caEventToEdgeEvent(
      {
        action: 'enroll.begin',
        outcome: 'failure',
        claimedIdentity: 'spiffe://f.example/../x',
        ip: '192.0.2.9',
        code: 'ERR_ID_INVALID',
      },
      now,
    );
    expect(validateEvent(malformed)).not.toHaveProperty('attestation.claimed_identity');
    // A renewal refused after the client certificate proved its identity is about that identity.
    const proven = validateEvent(
      caEventToEdgeEvent(
        {
          action: 'renew',
          outcome: 'failure',
          identity: 'spiffe://f.example/node/n1',
          code: 'ERR_ATT_TPM_PCR_MISMATCH',
        },
        now,
      ),
    );
    expect(proven['source.identity']).toBe('spiffe://f.example/node/n1');
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
  it('carries a method’s evidence per check as attestation.tpm.* and attestation.puf.* fields', () => {
    const tpm = validateEvent(
      caEventToEdgeEvent(
        {
          action: 'enroll',
          outcome: 'failure',
          identity: 'spiffe://f.example/node/n1',
          method: 'tpm',
          code: 'ERR_ATT_TPM_PCR_MISMATCH',
          evidence: {
            ekChain: 'passed',
            ekIssuer: 'CN=Maker EK CA, O=Maker',
            activation: 'passed',
            quoteSignature: 'passed',
            pcrBank: 'sha256',
            pcrSelection: [0, 1, 7],
            pcrExpectedDigest: 'a'.repeat(64),
            pcrQuotedDigest: 'b'.repeat(64),
            pcrMismatch: [7],
            pcrs: 'failed',
          },
        },
        now,
      ),
    );
    expect(tpm).toMatchObject({
      'event.action': 'attestation.failure',
      'attestation.tpm.ek_chain': 'passed',
      'attestation.tpm.ek_issuer': 'CN=Maker EK CA, O=Maker',
      'attestation.tpm.activation': 'passed',
      'attestation.tpm.quote_signature': 'passed',
      'attestation.tpm.pcr_bank': 'sha256',
      'attestation.tpm.pcr_selection': '0,1,7',
      'attestation.tpm.pcr_expected_digest': 'a'.repeat(64),
      'attestation.tpm.pcr_quoted_digest': 'b'.repeat(64),
      'attestation.tpm.pcr_mismatch': '7',
      'attestation.tpm.pcrs': 'failed',
    });
    const puf = validateEvent(
      caEventToEdgeEvent(
        {
          action: 'enroll',
          outcome: 'success',
          identity: 'spiffe://f.example/device/d1',
          method: 'puf',
          evidence: { pufMode: 'crp', pufDistance: 9, pufThreshold: 40, pufResponse: 'passed' },
        },
        now,
      ),
    );
    expect(puf).toMatchObject({
      'attestation.puf.mode': 'crp',
      'attestation.puf.distance': 9,
      'attestation.puf.threshold': 40,
      'attestation.puf.response': 'passed',
    });
  });
  it('bounds hostile evidence: a long issuer is cut, a bad digest, bank or index is left out', () => {
    const e = validateEvent(
      caEventToEdgeEvent(
        {
          action: 'enroll',
          outcome: 'failure',
          claimedIdentity: 'spiffe://f.example/node/n1',
          method: 'tpm',
          code: 'ERR_ATT_TPM_EK_UNTRUSTED',
          evidence: {
            ekChain: 'failed',
            ekIssuer: 'X'.repeat(10_000),
            pcrBank: 'md5; drop table',
            pcrSelection: [0, 99, -1, 1.5, 7],
            pcrExpectedDigest: 'A'.repeat(64),
            pcrQuotedDigest: 'c'.repeat(4096),
            pufDistance: 1e9,
          },
        },
        now,
      ),
    );
    expect(e['attestation.tpm.ek_issuer']).toHaveLength(256);
    expect(e['attestation.tpm.pcr_selection']).toBe('0,7');
    for (const f of [
      'attestation.tpm.pcr_bank',
      'attestation.tpm.pcr_expected_digest',
      'attestation.tpm.pcr_quoted_digest',
      'attestation.puf.distance',
    ] as const)
      expect(e[f], f).toBeUndefined();
  });
});
