// What a user reads when the CA refuses: a quarantine says until when and who can lift it, a
// method the policy forbids names the allowed ones, a bad revocation reason lists the valid
// ones, and another trust domain names both trust domains. Real CA servers, the real CLI.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Decision } from '../../common/decisions.js';
import { startTestCa, type TestCa } from '../helpers/ca.js';
import { edgeward, edgewardAsync, edgewardServe, stop, tokenEnrollArgs } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const TD = 'factory.example';
const dir = tempDir('edgeward-refusals-');
const cas: TestCa[] = [];
const procs: ChildProcess[] = [];
afterAll(async () => {
  for (const p of procs) await stop(p, 'SIGKILL');
  for (const c of cas) await c.stop();
});

describe('refusal messages', () => {
  it('a quarantined identity is told until when, by which decision, and who can lift it', async () => {
    const quarantined = `spiffe://${TD}/device/q1`;
    const until = Date.parse('2031-01-01T00:00:00Z');
    const decision: Decision = {
      id: '0d4c1f7e-2b7a-4c43-9d0e-5f1a2b3c4d5e',
      revision: 3,
      scope: { type: 'identity', value: quarantined },
      action: 'quarantine',
      reason: 'cloned credential',
      createdAt: Date.now(),
      expiresAt: until,
      alerts: [],
    };
    const ca = await startTestCa({
      quarantineOf: (s) => (s.identity === quarantined ? decision : undefined),
    });
    cas.push(ca);
    const r = await edgewardAsync(
      tokenEnrollArgs(ca, quarantined, await ca.tokenFile(quarantined), join(dir, 'q1')),
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `edgeward enroll: ERR_ENROLL_REFUSED: the CA refused: ERR_CA_IDENTITY_QUARANTINED (identity quarantined by the SIEM ` +
        `until 2031-01-01T00:00:00.000Z (decision ${decision.id}); an analyst can lift it earlier ` +
        `(the dashboard, or edgeward siem decisions lift ${decision.id} with the admin identity))\n`,
    );
  });

  it('a method the attestation policy forbids names the methods it allows', async () => {
    const ca = await startTestCa({
      policy: { methodsFor: (id) => (id.includes('/device/') ? ['tpm', 'puf'] : undefined) },
    });
    cas.push(ca);
    const id = `spiffe://${TD}/device/d9`;
    const r = await edgewardAsync(tokenEnrollArgs(ca, id, await ca.tokenFile(id), join(dir, 'd9')));
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      `ERR_CA_METHOD_NOT_ALLOWED (attestation method token is not allowed for ${id}; the attestation policy allows tpm, puf for it)`,
    );
  });

  it('a bad revocation reason lists the valid ones', async () => {
    const ca = cas[0] as TestCa;
    const r = edgeward([
      'ca',
      'revoke',
      '--data',
      ca.dataDir,
      '--id',
      `spiffe://${TD}/node/x`,
      '--reason',
      'compromised',
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      'edgeward ca revoke: ERR_INPUT_MALFORMED: unknown revocation reason; the reasons are unspecified, keyCompromise, ' +
        'cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn\n',
    );
  });

  it('another trust domain: the message names both', async () => {
    const other = join(dir, 'other-ca');
    const init = edgeward(['ca', 'init', '--data', other, '--trust-domain', 'other.example']);
    expect(init.status, init.stderr).toBe(0);
    const fingerprint = /root fingerprint \(SHA-256\): (\S+)/.exec(init.stdout)?.[1] as string;
    const tok = edgeward(['ca', 'token', '--data', other, '--id', `spiffe://${TD}/node/n1`]);
    expect(tok.status).toBe(1);
    expect(tok.stderr).toBe(
      `edgeward ca token: ERR_CA_FOREIGN_TRUST_DOMAIN: the identity is in trust domain ${TD}, this CA's trust domain is other.example\n`,
    );
    const served = await edgewardServe(
      ['ca', 'serve', '--data', other, '--listen', '127.0.0.1:0'],
      /listening on (https:\/\/\S+)/,
    );
    procs.push(served.proc);
    const url = served.match[1] as string;
    const file = join(dir, 'n1.token');
    const made = edgeward([
      'ca',
      'token',
      '--data',
      other,
      '--id',
      'spiffe://other.example/node/n1',
      '--out',
      file,
    ]);
    expect(made.status, made.stderr).toBe(0);
    const r = await edgewardAsync(
      tokenEnrollArgs({ url, fingerprint }, `spiffe://${TD}/node/n1`, file, join(dir, 'n1')),
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      `the server is spiffe://other.example/svc/ca, of trust domain other.example; the identity is in trust domain ${TD} (expected spiffe://${TD}/svc/ca)`,
    );
  });
});
