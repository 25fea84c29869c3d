// The peer identity an agent reads from a certificate's SAN string: exactly one URI SAN, first;
// a service certificate (the CA's, the SIEM's) may list the DNS and IP names of where it listens
// after it; anything else is not one of ours.
import { describe, expect, it } from 'vitest';
import { singleUriSan } from '../../agent/tls-identity.js';

const ID = 'spiffe://factory.example/svc/siem';

describe('singleUriSan', () => {
  it('reads the one URI SAN, with or without host names after it', () => {
    expect(singleUriSan(`URI:${ID}`)).toBe(ID);
    expect(singleUriSan(`URI:${ID}, DNS:siem.example, IP Address:127.0.0.1`)).toBe(ID);
  });

  it.each([
    ['no SAN', undefined],
    ['two URIs', `URI:${ID}, URI:spiffe://factory.example/node/n1`],
    ['a host name first', `DNS:siem.example, URI:${ID}`],
    ['a mailbox', `URI:${ID}, email:a@example.com`],
    ['a quoted entry', `URI:"${ID}, x"`],
  ])('refuses %s', (_what, san) => {
    expect(singleUriSan(san)).toBeNull();
  });
});
