// The closed table of error codes. Each part keeps its own section; `message` is the generic text
// clients see, `status` the HTTP status. test/common/errors.test.ts keeps this table, the code base
// and docs/errors.md in step (regenerate the doc with `npm run docs:errors`).
export interface CodeDef {
  readonly status: number;
  readonly message: string;
}

export const CODES = {
  // ---- common: identities, input, config ----
  ERR_ID_INVALID: { status: 400, message: 'invalid identity' },
  ERR_INPUT_MALFORMED: { status: 400, message: 'malformed request' },
  ERR_INPUT_TOO_LARGE: { status: 413, message: 'request too large' },
  ERR_INPUT_UNSUPPORTED_MEDIA: { status: 415, message: 'unsupported content type' },
  ERR_RATE_LIMITED: { status: 429, message: 'too many requests' },
  ERR_NOT_FOUND: { status: 404, message: 'not found' },
  ERR_INTERNAL: { status: 500, message: 'internal error' },
  ERR_CONFIG_INVALID: { status: 400, message: 'invalid configuration' },
  ERR_DER_MALFORMED: { status: 400, message: 'malformed DER structure' },
  ERR_PEM_MALFORMED: { status: 400, message: 'malformed PEM' },

  // ---- ca ----
  ERR_CA_EXISTS: { status: 409, message: 'a CA already exists in this data folder' },
  ERR_CA_NOT_INITIALISED: { status: 500, message: 'no CA in this data folder' },
  ERR_CA_PASSPHRASE: { status: 500, message: 'CA key passphrase missing or wrong' },
  ERR_CA_CSR_MALFORMED: { status: 400, message: 'malformed certificate signing request' },
  ERR_CA_CSR_SIGNATURE: { status: 400, message: 'CSR signature does not verify' },
  ERR_CA_CSR_IDENTITY: { status: 403, message: 'CSR identity does not match the attested identity' },
  ERR_CA_CSR_SANS: { status: 400, message: 'CSR must carry at most one URI SAN and no other names' },
  ERR_CA_CSR_CA_FLAG: { status: 400, message: 'CSR must not request a CA certificate' },
  ERR_CA_CSR_EXTENSION: { status: 400, message: 'CSR requests an extension that is not allowed' },
  ERR_CA_WEAK_KEY: { status: 400, message: 'key type or size not allowed' },
  ERR_CA_FOREIGN_TRUST_DOMAIN: { status: 403, message: 'identity is not in this trust domain' },
  ERR_CA_METHOD_UNKNOWN: { status: 400, message: 'unknown attestation method' },
  ERR_CA_METHOD_NOT_ALLOWED: { status: 403, message: 'attestation method not allowed for this identity' },
  ERR_CA_SESSION_UNKNOWN: { status: 400, message: 'unknown or expired enrollment session' },
  ERR_CA_TOKEN_INVALID: { status: 401, message: 'invalid join token' },
  ERR_CA_TOKEN_EXPIRED: { status: 401, message: 'join token expired' },
  ERR_CA_TOKEN_USED: { status: 401, message: 'join token already used' },
  ERR_CA_TOKEN_IDENTITY: { status: 403, message: 'join token is bound to another identity' },
  ERR_CA_UNAUTHENTICATED: { status: 401, message: 'a valid client certificate is required' },
  ERR_CA_CERT_UNTRUSTED: { status: 401, message: 'client certificate not issued by this CA' },
  ERR_CA_CERT_EXPIRED: { status: 401, message: 'client certificate expired' },
  ERR_CA_CERT_REVOKED: { status: 403, message: 'client certificate revoked' },
  ERR_CA_CERT_UNKNOWN: { status: 403, message: 'client certificate unknown to this CA' },
  ERR_CA_IDENTITY_REVOKED: { status: 403, message: 'identity revoked' },
  ERR_CA_IDENTITY_QUARANTINED: { status: 403, message: 'identity quarantined' },
  ERR_CA_FORBIDDEN: { status: 403, message: 'not allowed for this identity' },
  ERR_CA_REATTEST_REQUIRED: { status: 409, message: 'this identity must re-attest to renew' },
  ERR_CA_IDENTITY_BOUND: { status: 409, message: 'identity is bound to other hardware; an admin must release it' },
  ERR_CA_SERIAL_UNKNOWN: { status: 404, message: 'no certificate with that serial' },
  ERR_CA_LIFETIME: { status: 400, message: 'certificate lifetime out of range' },
  ERR_CA_AUDIT_BROKEN: { status: 500, message: 'audit chain broken' },
  ERR_CA_UNAVAILABLE: { status: 503, message: 'CA unavailable' },

  // ---- client side of enrollment and renewal ----
  ERR_ENROLL_FINGERPRINT: { status: 400, message: 'CA root fingerprint does not match the pinned one' },
  ERR_ENROLL_SERVER_IDENTITY: { status: 400, message: 'server is not the CA of this trust domain' },
  ERR_ENROLL_REFUSED: { status: 400, message: 'the CA refused the request' },
  ERR_ENROLL_TRANSPORT: { status: 503, message: 'could not reach the CA' },
  ERR_ENROLL_RESPONSE: { status: 502, message: 'the CA answered with something unexpected' },
  ERR_ENROLL_NO_IDENTITY: { status: 400, message: 'no identity in that folder' },

  // ---- attestation (TPM, PUF) ----

  // ---- policies ----

  // ---- agent ----

  // ---- siem ----
} as const satisfies Record<string, CodeDef>;

export type ErrorCode = keyof typeof CODES;
