// The one security-event schema every reporter (agents, CA, SIEM) speaks: flat ECS-style dotted
// keys plus identity fields. The validator is compiled once from FIELDS and refuses anything unknown.
import { EdgewardError } from './errors.js';
import { POISON_KEYS } from './schema.js';
import { parseIdentity, serviceId } from './identity.js';
import { canonicalIp } from './ip.js';
import { normalizeSerial } from './x509.js';

export type FieldType =
  'time' | 'string' | 'keyword' | 'enum' | 'enums' | 'int' | 'ip' | 'identity' | 'hex' | 'serial';

export interface FieldSpec {
  readonly type: FieldType;
  /** Maximum string length (string, keyword, hex). */
  readonly max?: number;
  /** Fixed length in characters (hex). */
  readonly length?: number;
  readonly values?: readonly string[];
  readonly min?: number;
  readonly maxInt?: number;
  /** Set by the SIEM on ingest; a reporter that sends it is refused. */
  readonly server?: boolean;
  readonly required?: boolean;
  readonly doc: string;
  /** Where the field lands in OCSF (docs/events.md has the class mapping). */
  readonly ocsf: string;
}

/** The actions reporters emit today; `event.action` accepts any lower-case dotted keyword. */
export const KNOWN_ACTIONS = [
  'enroll.success',
  'enroll.failure',
  'attestation.success',
  'attestation.failure',
  'handshake.failure',
  'connection.accepted',
  'connection.denied',
  'connection.closed',
  'renewal.success',
  'renewal.failure',
  'revocation',
  'decision.applied',
  'rotation',
] as const;

/**
 * What a reporter is, as its certificate's identity says: the CA (`spiffe://TD/svc/ca`), the SIEM
 * (`svc/siem`), another control-plane service (`svc/*`), an edge node, a device, or anything else.
 */
export const REPORTER_KINDS = ['ca', 'siem', 'svc', 'node', 'device', 'other'] as const;
export type ReporterKind = (typeof REPORTER_KINDS)[number];

/** The reporter kind of a verified identity of trust domain `td` (see REPORTER_KINDS). */
export function reporterKind(identity: string, td: string): ReporterKind {
  if (identity === serviceId(td, 'ca')) return 'ca';
  if (identity === serviceId(td, 'siem')) return 'siem';
  const prefix = `spiffe://${td}/`;
  if (!identity.startsWith(prefix)) return 'other';
  const slash = identity.indexOf('/', prefix.length);
  if (slash < 0 || slash === identity.length - 1) return 'other';
  const first = identity.slice(prefix.length, slash);
  return first === 'svc' || first === 'node' || first === 'device' ? first : 'other';
}

/** The kind of an identity whose trust domain is its own (stored events, any deployment). */
export function reporterKindOf(identity: string): ReporterKind {
  const m = /^spiffe:\/\/([^/]+)\//.exec(identity);
  return m === null ? 'other' : reporterKind(identity, m[1] as string);
}

// ECS's allowed values (ECS 8.x, "Event categorization fields").
const EVENT_KINDS = [
  'alert',
  'asset',
  'enrichment',
  'event',
  'metric',
  'state',
  'pipeline_error',
  'signal',
] as const;
const EVENT_CATEGORIES = [
  'api',
  'authentication',
  'configuration',
  'database',
  'driver',
  'email',
  'file',
  'host',
  'iam',
  'intrusion_detection',
  'library',
  'malware',
  'network',
  'package',
  'process',
  'registry',
  'session',
  'threat',
  'vulnerability',
  'web',
] as const;
const EVENT_TYPES = [
  'access',
  'admin',
  'allowed',
  'change',
  'connection',
  'creation',
  'deletion',
  'denied',
  'end',
  'error',
  'group',
  'indicator',
  'info',
  'installation',
  'protocol',
  'start',
  'user',
] as const;

type Categorization = {
  readonly 'event.kind': 'event';
  readonly 'event.category': (typeof EVENT_CATEGORIES)[number];
  readonly 'event.type': readonly (typeof EVENT_TYPES)[number][];
};

/** ECS categorization of the actions edgeward's reporters emit, filled in where a reporter left it out. */
export const ACTION_CATEGORIZATION: Readonly<Record<(typeof KNOWN_ACTIONS)[number], Categorization>> = {
  'enroll.success': { 'event.kind': 'event', 'event.category': 'iam', 'event.type': ['creation'] },
  'enroll.failure': { 'event.kind': 'event', 'event.category': 'iam', 'event.type': ['creation'] },
  'attestation.success': {
    'event.kind': 'event',
    'event.category': 'authentication',
    'event.type': ['info'],
  },
  'attestation.failure': {
    'event.kind': 'event',
    'event.category': 'authentication',
    'event.type': ['info'],
  },
  'handshake.failure': {
    'event.kind': 'event',
    'event.category': 'network',
    'event.type': ['connection', 'denied'],
  },
  'connection.accepted': {
    'event.kind': 'event',
    'event.category': 'network',
    'event.type': ['connection', 'allowed', 'start'],
  },
  'connection.denied': {
    'event.kind': 'event',
    'event.category': 'network',
    'event.type': ['connection', 'denied'],
  },
  'connection.closed': {
    'event.kind': 'event',
    'event.category': 'network',
    'event.type': ['connection', 'end'],
  },
  'renewal.success': { 'event.kind': 'event', 'event.category': 'iam', 'event.type': ['change'] },
  'renewal.failure': { 'event.kind': 'event', 'event.category': 'iam', 'event.type': ['change'] },
  revocation: { 'event.kind': 'event', 'event.category': 'iam', 'event.type': ['deletion'] },
  'decision.applied': { 'event.kind': 'event', 'event.category': 'configuration', 'event.type': ['change'] },
  rotation: { 'event.kind': 'event', 'event.category': 'iam', 'event.type': ['change'] },
};

export const FIELDS = {
  '@timestamp': {
    type: 'time',
    required: true,
    doc: 'When the event happened at the reporter: epoch milliseconds or an ISO-8601 string; stored as epoch ms.',
    ocsf: 'time',
  },
  'event.id': {
    type: 'keyword',
    max: 64,
    server: true,
    doc: 'Unique id assigned by the SIEM on ingest.',
    ocsf: 'metadata.uid',
  },
  'event.ingested': {
    type: 'time',
    server: true,
    doc: 'When the SIEM accepted the event (epoch ms).',
    ocsf: 'metadata.logged_time',
  },
  'ecs.version': {
    type: 'keyword',
    max: 16,
    doc: 'ECS version the event follows, e.g. 8.11.0.',
    ocsf: 'metadata.version',
  },
  'event.kind': {
    type: 'enum',
    values: EVENT_KINDS,
    doc: 'ECS event kind.',
    ocsf: 'category_uid (via class)',
  },
  'event.category': {
    type: 'enums',
    values: EVENT_CATEGORIES,
    doc: 'ECS event category: one value or a list (ECS arrays).',
    ocsf: 'category_uid',
  },
  'event.type': {
    type: 'enums',
    values: EVENT_TYPES,
    doc: 'ECS event type: one value or a list (ECS arrays).',
    ocsf: 'activity_id',
  },
  'event.action': {
    type: 'keyword',
    max: 64,
    required: true,
    doc: 'What happened, a lower-case dotted keyword; the actions edgeward\'s reporters emit are listed under "Actions reporters emit".',
    ocsf: 'class_uid + activity_id',
  },
  'event.outcome': {
    type: 'enum',
    values: ['success', 'failure', 'unknown'],
    doc: 'ECS outcome.',
    ocsf: 'status_id',
  },
  'event.reason': { type: 'string', max: 256, doc: 'Why (free text, bounded).', ocsf: 'status_detail' },
  'event.severity': {
    type: 'int',
    min: 0,
    maxInt: 100,
    doc: 'Reporter severity 0..100.',
    ocsf: 'severity_id (bucketed)',
  },
  message: { type: 'string', max: 1024, doc: 'Human-readable summary.', ocsf: 'message' },
  'error.code': { type: 'keyword', max: 64, doc: 'edgeward error code (ERR_*).', ocsf: 'status_code' },
  'source.ip': { type: 'ip', doc: 'Address of the connecting/acting side.', ocsf: 'src_endpoint.ip' },
  'source.port': {
    type: 'int',
    min: 0,
    maxInt: 65535,
    doc: 'Port of the connecting side.',
    ocsf: 'src_endpoint.port',
  },
  'source.identity': {
    type: 'identity',
    doc: 'SPIFFE ID of the acting side (client cert, enrolling identity).',
    ocsf: 'src_endpoint.name / actor.user.uid',
  },
  'destination.ip': { type: 'ip', doc: 'Address of the target side.', ocsf: 'dst_endpoint.ip' },
  'destination.port': {
    type: 'int',
    min: 0,
    maxInt: 65535,
    doc: 'Port of the target side.',
    ocsf: 'dst_endpoint.port',
  },
  'destination.identity': {
    type: 'identity',
    doc: 'SPIFFE ID of the target side.',
    ocsf: 'dst_endpoint.name',
  },
  'observer.identity': {
    type: 'identity',
    server: true,
    doc: 'SPIFFE ID of the reporter, taken from its client certificate by the SIEM, never from the body.',
    ocsf: 'metadata.product / observer',
  },
  'observer.type': {
    type: 'enum',
    values: REPORTER_KINDS,
    server: true,
    doc: 'Kind of reporter, derived by the SIEM from observer.identity (svc/ca: ca, svc/siem: siem, other svc/*: svc, node, device, other), never from the body.',
    ocsf: 'metadata.product.name',
  },
  'host.name': { type: 'keyword', max: 255, doc: 'Host name of the reporter.', ocsf: 'device.hostname' },
  'network.transport': {
    type: 'enum',
    values: ['tcp', 'udp'],
    doc: 'Transport protocol.',
    ocsf: 'connection_info.protocol_name',
  },
  'network.direction': {
    type: 'enum',
    values: ['inbound', 'outbound'],
    doc: 'Direction as seen by the observer.',
    ocsf: 'connection_info.direction_id',
  },
  'tls.version': { type: 'keyword', max: 16, doc: 'Negotiated TLS version, e.g. 1.3.', ocsf: 'tls.version' },
  'tls.cipher': { type: 'keyword', max: 64, doc: 'Negotiated cipher suite.', ocsf: 'tls.cipher' },
  'tls.client.x509.serial_number': {
    type: 'serial',
    doc: 'Client certificate serial, stored canonical: lower-case hex, no colons, no leading zeros.',
    ocsf: 'tls.certificate.serial_number',
  },
  'tls.client.x509.spki_sha256': {
    type: 'hex',
    length: 64,
    doc: 'SHA-256 of the client certificate DER SubjectPublicKeyInfo, lower-case hex.',
    ocsf: 'tls.certificate.fingerprints[].value (algorithm SHA-256, of the SPKI)',
  },
  'tls.client.x509.not_after': {
    type: 'time',
    doc: 'Client certificate expiry (epoch ms).',
    ocsf: 'tls.certificate.expiration_time',
  },
  'attestation.method': {
    type: 'keyword',
    max: 32,
    doc: 'Attestation method (tpm, puf, token, ...).',
    ocsf: 'auth_protocol',
  },
  'attestation.claimed_identity': {
    type: 'identity',
    doc: 'SPIFFE ID an unauthenticated request (an enrollment) named but never proved: evidence about its source address, never about that identity.',
    ocsf: 'unmapped.claimed_identity',
  },
  'attestation.reason': {
    type: 'keyword',
    max: 64,
    doc: 'Coded reason of an attestation verdict, e.g. pcr_mismatch.',
    ocsf: 'status_detail',
  },
  'attestation.tpm.ek_chain': {
    type: 'enum',
    values: ['passed', 'allow-listed', 'failed'],
    doc: 'TPM: the EK certificate chained to a trusted manufacturer root (passed), the EK is on the allow-list, or neither (failed).',
    ocsf: 'unmapped.attestation.tpm.ek_chain',
  },
  'attestation.tpm.ek_issuer': {
    type: 'string',
    max: 256,
    doc: 'TPM: issuer of the EK certificate the device sent (as the certificate names it; checked only when ek_chain is passed).',
    ocsf: 'unmapped.attestation.tpm.ek_issuer',
  },
  'attestation.tpm.activation': {
    type: 'enum',
    values: ['passed', 'failed'],
    doc: 'TPM: credential activation (the AK and the EK in one TPM).',
    ocsf: 'unmapped.attestation.tpm.activation',
  },
  'attestation.tpm.quote_signature': {
    type: 'enum',
    values: ['passed', 'failed'],
    doc: "TPM: the quote's signature by the AK.",
    ocsf: 'unmapped.attestation.tpm.quote_signature',
  },
  'attestation.tpm.pcr_bank': {
    type: 'keyword',
    max: 16,
    doc: 'TPM: the PCR bank the policy compares (sha256, sha384, sha512).',
    ocsf: 'unmapped.attestation.tpm.pcr_bank',
  },
  'attestation.tpm.pcr_selection': {
    type: 'keyword',
    max: 64,
    doc: "TPM: the PCRs compared with the policy's golden values, comma-separated (e.g. 0,1,7).",
    ocsf: 'unmapped.attestation.tpm.pcr_selection',
  },
  'attestation.tpm.pcr_expected_digest': {
    type: 'hex',
    max: 128,
    doc: 'TPM: composite digest of the golden values over the selection (for each PCR the golden value reported, else the first).',
    ocsf: 'unmapped.attestation.tpm.pcr_expected_digest',
  },
  'attestation.tpm.pcr_quoted_digest': {
    type: 'hex',
    max: 128,
    doc: 'TPM: composite PCR digest the TPM signed in the quote.',
    ocsf: 'unmapped.attestation.tpm.pcr_quoted_digest',
  },
  'attestation.tpm.pcr_mismatch': {
    type: 'keyword',
    max: 64,
    doc: 'TPM: the PCRs whose reported value is none of the golden ones, comma-separated.',
    ocsf: 'unmapped.attestation.tpm.pcr_mismatch',
  },
  'attestation.tpm.pcrs': {
    type: 'enum',
    values: ['passed', 'failed'],
    doc: 'TPM: the quoted PCRs against the golden values (selection, digest and values).',
    ocsf: 'unmapped.attestation.tpm.pcrs',
  },
  'attestation.puf.mode': {
    type: 'enum',
    values: ['crp', 'key'],
    doc: 'PUF: challenge-response (crp, the CA measures the distance) or key (fuzzy extractor, the device derives a signing key).',
    ocsf: 'unmapped.attestation.puf.mode',
  },
  'attestation.puf.distance': {
    type: 'int',
    min: 0,
    maxInt: 65_535,
    doc: "PUF (crp): Hamming distance in bits of the device's response from the recorded one.",
    ocsf: 'unmapped.attestation.puf.distance',
  },
  'attestation.puf.threshold': {
    type: 'int',
    min: 0,
    maxInt: 65_535,
    doc: "PUF (crp): the largest distance the device's profile accepts.",
    ocsf: 'unmapped.attestation.puf.threshold',
  },
  'attestation.puf.response': {
    type: 'enum',
    values: ['passed', 'failed'],
    doc: 'PUF (crp): the response within the threshold.',
    ocsf: 'unmapped.attestation.puf.response',
  },
  'attestation.puf.signature': {
    type: 'enum',
    values: ['passed', 'failed'],
    doc: 'PUF (key): the signature by the PUF-derived key over the nonce and the CSR key.',
    ocsf: 'unmapped.attestation.puf.signature',
  },
  'user_agent.original': {
    type: 'string',
    max: 512,
    doc: 'Client software string.',
    ocsf: 'http_request.user_agent',
  },
  'rule.id': {
    type: 'keyword',
    max: 128,
    doc: 'Authorization rule that allowed/denied.',
    ocsf: 'policy.uid',
  },
  'rule.name': { type: 'string', max: 256, doc: 'Its name.', ocsf: 'policy.name' },
  'decision.id': { type: 'keyword', max: 64, doc: 'Quarantine decision id concerned.', ocsf: 'enrichments' },
  'decision.revision': {
    type: 'int',
    min: 0,
    maxInt: Number.MAX_SAFE_INTEGER,
    doc: 'Decision revision applied.',
    ocsf: 'enrichments',
  },
} as const satisfies Record<string, FieldSpec>;

export type EventField = keyof typeof FIELDS;
type ValueOf<F extends EventField> = (typeof FIELDS)[F]['type'] extends 'int' | 'time'
  ? number
  : (typeof FIELDS)[F]['type'] extends 'enums'
    ? string | readonly string[]
    : string;

/** A validated event: only schema fields, `@timestamp` normalised to epoch ms. */
export type EdgeEvent = { readonly '@timestamp': number; readonly 'event.action': string } & {
  readonly [F in EventField]?: ValueOf<F>;
};

export const FIELD_NAMES: readonly EventField[] = Object.keys(FIELDS) as EventField[];

export function isEventField(name: string): name is EventField {
  return Object.hasOwn(FIELDS, name);
}

export function fieldSpec(name: EventField): FieldSpec {
  return FIELDS[name];
}

// Earliest and latest accepted event times: anything outside is a broken clock or an attack.
const MIN_TIME = Date.UTC(2000, 0, 1);
const MAX_TIME = Date.UTC(2200, 0, 1);
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const KEYWORD = /^[\x21-\x7e]+$/;
const HEX = /^[0-9a-f]+$/;
const MAX_KEYS = 64;

type Check = (v: unknown, field: string) => string | number | readonly string[];

const seenIdentities = new Set<string>();

function bad(
  field: string,
  why: string,
  code: 'ERR_SIEM_EVENT_INVALID' | 'ERR_SIEM_EVENT_TIME' = 'ERR_SIEM_EVENT_INVALID',
) {
  return new EdgewardError(code, `${field}: ${why}`, { detail: { field } });
}

function parseTime(v: unknown, field: string): number {
  let t: number;
  if (typeof v === 'number') {
    if (!Number.isInteger(v))
      throw bad(field, 'epoch milliseconds must be an integer', 'ERR_SIEM_EVENT_TIME');
    t = v;
  } else if (typeof v === 'string') {
    if (v.length > 40 || !ISO_TIME.test(v)) throw bad(field, 'not an ISO-8601 time', 'ERR_SIEM_EVENT_TIME');
    t = Date.parse(v);
    if (Number.isNaN(t)) throw bad(field, 'not a valid time', 'ERR_SIEM_EVENT_TIME');
  } else {
    throw bad(field, 'must be epoch ms or an ISO-8601 string', 'ERR_SIEM_EVENT_TIME');
  }
  if (t < MIN_TIME || t > MAX_TIME) throw bad(field, 'time out of range', 'ERR_SIEM_EVENT_TIME');
  return t;
}

function compile(spec: FieldSpec): Check {
  switch (spec.type) {
    case 'time':
      return parseTime;
    case 'int': {
      const min = spec.min ?? 0;
      const max = spec.maxInt ?? Number.MAX_SAFE_INTEGER;
      return (v, f) => {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
          throw bad(f, `must be an integer in ${min}..${max}`);
        }
        return v;
      };
    }
    case 'enum': {
      const values = new Set(spec.values ?? []);
      return (v, f) => {
        if (typeof v !== 'string' || !values.has(v)) throw bad(f, 'not one of the allowed values');
        return v;
      };
    }
    case 'enums': {
      const values = new Set(spec.values ?? []);
      return (v, f) => {
        if (typeof v === 'string' && values.has(v)) return v;
        if (
          Array.isArray(v) &&
          v.length > 0 &&
          v.length <= 8 &&
          v.every((x) => typeof x === 'string' && values.has(x))
        )
          return [...(v as string[])];
        throw bad(f, 'not one of the allowed values, or a list of them');
      };
    }
    case 'ip':
      return (v, f) => {
        // One canonical spelling (common/ip.ts: ::ffff:a.b.c.d is a.b.c.d, zones refused) so that
        // grouping, CIDR matching, the allowlist and the agents see the same address.
        try {
          return canonicalIp(v);
        } catch (err) {
          throw new EdgewardError('ERR_SIEM_EVENT_INVALID', `${f}: not an IP address`, {
            cause: err,
            detail: { field: f },
          });
        }
      };
    case 'serial':
      return (v, f) => {
        try {
          return normalizeSerial(v as string);
        } catch (err) {
          throw new EdgewardError('ERR_SIEM_EVENT_INVALID', `${f}: not a serial`, {
            cause: err,
            detail: { field: f },
          });
        }
      };
    case 'identity':
      return (v, f) => {
        if (typeof v === 'string' && seenIdentities.has(v)) return v;
        try {
          const uri = parseIdentity(v).uri;
          // A small memo: the same few thousand identities repeat in nearly every batch.
          if (seenIdentities.size >= 16_384) seenIdentities.clear();
          seenIdentities.add(uri);
          return uri;
        } catch (err) {
          throw new EdgewardError('ERR_SIEM_EVENT_INVALID', `${f}: not a SPIFFE ID`, {
            cause: err,
            detail: { field: f },
          });
        }
      };
    case 'hex': {
      const len = spec.length;
      const max = spec.max ?? len ?? 64;
      return (v, f) => {
        if (
          typeof v !== 'string' ||
          v.length === 0 ||
          v.length > max ||
          (len !== undefined && v.length !== len)
        ) {
          throw bad(f, 'wrong length');
        }
        if (!HEX.test(v)) throw bad(f, 'must be lower-case hex');
        return v;
      };
    }
    case 'keyword': {
      const max = spec.max ?? 256;
      return (v, f) => {
        if (typeof v !== 'string' || v.length === 0 || v.length > max || !KEYWORD.test(v)) {
          throw bad(f, `must be 1..${max} printable ASCII characters without spaces`);
        }
        return v;
      };
    }
    case 'string': {
      const max = spec.max ?? 256;
      return (v, f) => {
        if (typeof v !== 'string' || v.length > max)
          throw bad(f, `must be a string of at most ${max} characters`);
        return v;
      };
    }
  }
}

const CHECKS: ReadonlyMap<string, { readonly check: Check; readonly server: boolean }> = new Map(
  Object.entries(FIELDS).map(([name, spec]) => [
    name,
    { check: compile(spec as FieldSpec), server: (spec as FieldSpec).server === true },
  ]),
);
const ACTION = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

export interface ValidateOptions {
  /**
   * `reporter` (default): input from an agent or the CA; server-only fields are refused.
   * `stored`: an event the SIEM already stamped (store read-back, tests).
   */
  readonly mode?: 'reporter' | 'stored';
  /** With `now`, events more than this far in the future are refused (default 5 minutes). */
  readonly maxFutureMs?: number;
  readonly now?: number;
  /**
   * The SIEM's fields, added to the copy as stampEvent would (the SIEM's ingest: one object per
   * event instead of two).
   */
  readonly stamp?: EventStamp;
  /**
   * Accept fields beyond the schema (default true: any ECS field, a forwarded sensor's own):
   * nested objects are flattened to dotted keys, and such fields are bounded (OPEN_LIMITS). Known
   * fields keep their types and checks whichever way they are spelled. `false`: schema fields only
   * (ERR_SIEM_EVENT_UNKNOWN_FIELD), at most 64, flat.
   */
  readonly open?: boolean;
}

/** Bounds on one event's fields beyond the schema (open ingest). */
export const OPEN_LIMITS = {
  /** Fields in all, after flattening. */
  maxFields: 256,
  /** Nesting depth of objects. */
  maxDepth: 8,
  /** Characters of one string value. */
  maxString: 8192,
  /** Elements of one list value (scalars only). */
  maxList: 64,
  /** Characters of all string values and keys together. */
  maxChars: 65_536,
} as const;

/** A value of a field beyond the schema. */
export type OpenValue = string | number | boolean | null | readonly (string | number | boolean | null)[];

// Printable, no `|` (the rule language's modifier separator); spaces inside only (Windows event
// data names such as `Source Name` carry them).
const OPEN_KEY = /^(?! )(?!.* $)[\x20-\x7b\x7d\x7e\u00a0-\uffff]{1,128}$/;

/**
 * Flattens nested objects into dotted keys (`{"process": {"pid": 1}}` -> `process.pid`), checking
 * the open-ingest bounds; values stay as sent (lists of scalars kept as lists).
 */
export function flattenEvent(input: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let fields = 0;
  let chars = 0;
  const walk = (obj: Readonly<Record<string, unknown>>, prefix: string, depth: number): void => {
    if (depth > OPEN_LIMITS.maxDepth)
      throw new EdgewardError(
        'ERR_SIEM_EVENT_INVALID',
        `${prefix}: nested deeper than ${OPEN_LIMITS.maxDepth}`,
        {
          detail: { field: prefix.slice(0, 64) },
        },
      );
    for (const k of Object.keys(obj)) {
      if (POISON_KEYS.has(k)) {
        throw new EdgewardError('ERR_SIEM_EVENT_POISONED', `forbidden key ${k}`, { detail: { field: k } });
      }
      const key = prefix === '' ? k : `${prefix}.${k}`;
      const v = obj[k];
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
        if (Object.hasOwn(FIELDS, key))
          throw bad(key, `must be a ${FIELDS[key as EventField].type}, not an object`);
        const proto = Object.getPrototypeOf(v) as unknown;
        if (proto !== Object.prototype && proto !== null)
          throw new EdgewardError('ERR_SIEM_EVENT_INVALID', `${key.slice(0, 64)}: must be a plain object`);
        walk(v as Record<string, unknown>, key, depth + 1);
        continue;
      }
      if (++fields > OPEN_LIMITS.maxFields)
        throw new EdgewardError('ERR_SIEM_EVENT_INVALID', `more than ${OPEN_LIMITS.maxFields} fields`);
      chars += key.length;
      if (Object.hasOwn(out, key))
        throw new EdgewardError(
          'ERR_SIEM_EVENT_INVALID',
          `${key.slice(0, 64)}: given twice (nested and flat)`,
          {
            detail: { field: key.slice(0, 64) },
          },
        );
      out[key] = v;
      if (typeof v === 'string') chars += v.length;
      else if (Array.isArray(v)) for (const x of v as unknown[]) if (typeof x === 'string') chars += x.length;
      if (chars > OPEN_LIMITS.maxChars)
        throw new EdgewardError(
          'ERR_SIEM_EVENT_INVALID',
          `event larger than ${OPEN_LIMITS.maxChars} characters`,
        );
    }
  };
  walk(input, '', 0);
  return out;
}

function checkOpen(v: unknown, key: string): OpenValue {
  if (key.length > 128 || !OPEN_KEY.test(key))
    throw new EdgewardError('ERR_SIEM_EVENT_INVALID', `${key.slice(0, 64)}: not a field name`, {
      detail: { field: key.slice(0, 64) },
    });
  const scalar = (x: unknown): boolean =>
    x === null ||
    typeof x === 'boolean' ||
    (typeof x === 'number' && Number.isFinite(x)) ||
    (typeof x === 'string' && x.length <= OPEN_LIMITS.maxString);
  if (Array.isArray(v)) {
    if (v.length > OPEN_LIMITS.maxList || !v.every(scalar))
      throw bad(key, `a list of at most ${OPEN_LIMITS.maxList} scalar values`);
    return v as OpenValue;
  }
  if (!scalar(v))
    throw bad(key, `text of at most ${OPEN_LIMITS.maxString} characters, a number or a boolean`);
  return v as OpenValue;
}

/** What the SIEM adds to an event it accepts (stampEvent). */
export interface EventStamp {
  readonly id: string;
  /** The reporter's identity, from its client certificate. */
  readonly observer: string;
  /** Its kind (reporterKind of `observer`); derived from `observer` when absent. */
  readonly observerType?: ReporterKind;
  readonly ingested: number;
}

/**
 * Validates one event and returns a fresh, normalised copy with only schema fields. Throws an
 * EdgewardError (ERR_SIEM_EVENT_*) naming the offending field in `detail.field`.
 */
export function validateEvent(input: unknown, opts: ValidateOptions = {}): EdgeEvent {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new EdgewardError('ERR_SIEM_EVENT_INVALID', 'event must be a JSON object');
  }
  const proto = Object.getPrototypeOf(input) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    throw new EdgewardError('ERR_SIEM_EVENT_INVALID', 'event must be a plain object');
  }
  const open = opts.open !== false;
  const src = open ? flattenEvent(input as Record<string, unknown>) : (input as Record<string, unknown>);
  const keys = Object.keys(src);
  if (!open && keys.length > MAX_KEYS) throw new EdgewardError('ERR_SIEM_EVENT_INVALID', 'too many fields');
  const stored = opts.mode === 'stored';
  const out: Record<string, OpenValue> = {};
  for (const key of keys) {
    if (POISON_KEYS.has(key)) {
      throw new EdgewardError('ERR_SIEM_EVENT_POISONED', `forbidden key ${key}`, { detail: { field: key } });
    }
    const c = CHECKS.get(key);
    if (c === undefined) {
      if (open) {
        out[key] = checkOpen(src[key], key);
        continue;
      }
      throw new EdgewardError('ERR_SIEM_EVENT_UNKNOWN_FIELD', `unknown field ${key.slice(0, 64)}`, {
        detail: { field: key.slice(0, 64) },
      });
    }
    if (!stored && c.server) {
      throw new EdgewardError('ERR_SIEM_EVENT_SERVER_FIELD', `${key} is set by the SIEM`, {
        detail: { field: key },
      });
    }
    const v = src[key];
    if (v === null || v === undefined) continue;
    out[key] = c.check(v, key);
  }
  const ts = out['@timestamp'];
  if (ts === undefined) throw bad('@timestamp', 'missing', 'ERR_SIEM_EVENT_TIME');
  const action = out['event.action'];
  if (action === undefined) throw bad('event.action', 'missing');
  if (typeof action !== 'string' || !ACTION.test(action))
    throw bad('event.action', 'must be a lower-case dotted keyword');
  if (opts.now !== undefined && (ts as number) > opts.now + (opts.maxFutureMs ?? 300_000)) {
    throw bad('@timestamp', 'too far in the future', 'ERR_SIEM_EVENT_TIME');
  }
  if (!stored) {
    // The actions edgeward's reporters emit carry ECS categorization, filled in where absent.
    const cat = (ACTION_CATEGORIZATION as Readonly<Record<string, Categorization>>)[action];
    if (cat !== undefined && Object.hasOwn(ACTION_CATEGORIZATION, action)) {
      out['event.kind'] ??= cat['event.kind'];
      out['event.category'] ??= cat['event.category'];
      out['event.type'] ??= [...cat['event.type']];
    }
  }
  const stamp = opts.stamp;
  if (stamp !== undefined) {
    out['event.id'] = stamp.id;
    out['observer.identity'] = stamp.observer;
    out['observer.type'] = stamp.observerType ?? reporterKindOf(stamp.observer);
    out['event.ingested'] = stamp.ingested;
  }
  return out as EdgeEvent;
}

/** Adds the SIEM-owned fields. The observer comes from the reporter's client certificate. */
export function stampEvent(event: EdgeEvent, stamp: EventStamp): EdgeEvent {
  return {
    ...event,
    'event.id': stamp.id,
    'observer.identity': stamp.observer,
    'observer.type': stamp.observerType ?? reporterKindOf(stamp.observer),
    'event.ingested': stamp.ingested,
  };
}

/**
 * A stored event as the SIEM reads it back: its `observer.type` is derived again from
 * `observer.identity` (always taken from the certificate). Rows written before the SIEM set the
 * kind itself carry the reporter's own claim there ('agent', or anything it wrote): never believed.
 */
export function withVerifiedKind(e: EdgeEvent): EdgeEvent {
  const observer = e['observer.identity'];
  const kind = observer === undefined ? undefined : reporterKindOf(observer);
  if (e['observer.type'] === kind) return e;
  const out: Record<string, unknown> = { ...e };
  if (kind === undefined) delete out['observer.type'];
  else out['observer.type'] = kind;
  return out as EdgeEvent;
}

/**
 * Sortable 128-bit event ids (48-bit ms time + 80 random bits, 32 hex chars), ULID-like; random
 * bytes are drawn in blocks because ingest stamps tens of thousands of events per second.
 */
export function createEventIdFactory(random: (n: number) => Buffer): (now: number) => string {
  let pool = random(0);
  let off = 0;
  // A batch's events share one `now`: its time prefix is formatted once.
  let lastNow = NaN;
  let prefix = '';
  return (now: number) => {
    if (off + 10 > pool.length) {
      pool = random(10 * 1024);
      off = 0;
    }
    const rnd = pool.toString('hex', off, off + 10);
    off += 10;
    if (now !== lastNow) {
      lastNow = now;
      prefix = Math.max(0, Math.floor(now)).toString(16).padStart(12, '0').slice(-12);
    }
    return prefix + rnd;
  };
}
