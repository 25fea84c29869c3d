// The decisions subject on NATS JetStream, shared by the SIEM that publishes there and the agents
// that read it: the stream and subject names of a deployment prefix, and one message's shape.
// The message is an unsigned envelope around the signed delta: readers trust only the JWS.
import { EdgewardError, type ErrorCode } from './errors.js';

/** A deployment prefix on the bus: lower case, the streams are its upper case. */
export const BUS_PREFIX = /^[a-z][a-z0-9_]{0,31}$/;

export interface BusDecisionNames {
  readonly stream: string;
  readonly subject: string;
}

export function busDecisionNames(prefix: string): BusDecisionNames {
  if (!BUS_PREFIX.test(prefix)) throw new TypeError(`bus prefix ${prefix} is not [a-z][a-z0-9_]{0,31}`);
  return { stream: `${prefix.toUpperCase()}_DECISIONS`, subject: `${prefix}.decisions` };
}

/**
 * One message on the decisions subject (JSON). `kind` says what `jws` signs: a delta from `from`
 * to `revision`, or the whole set at `revision` (then `from` is the revision of the stream's
 * message before it). Messages without `kind` are deltas.
 */
export interface BusDecision {
  readonly kind: 'delta' | 'snapshot';
  readonly from: number;
  readonly revision: number;
  /** Key id of the signature (the JWS header has it too). */
  readonly kid: string;
  /** The signed document, exactly the `data` of an SSE `delta` (or `snapshot`) event. */
  readonly jws: string;
}

/** A message is at most this large (the JWS limit of the verifier, and its envelope). */
export const MAX_BUS_DECISION_BYTES = 8 * 1024 * 1024 + 4096;

export function parseBusDecision(data: Uint8Array, code: ErrorCode = 'ERR_SIEM_BUS_MESSAGE'): BusDecision {
  if (data.byteLength > MAX_BUS_DECISION_BYTES)
    throw new EdgewardError(code, 'decision message is too large');
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch (cause) {
    throw new EdgewardError(code, 'decision message is not JSON', { cause });
  }
  const d = v as Partial<BusDecision> | null;
  const kind = d?.kind ?? 'delta';
  if (
    typeof d !== 'object' ||
    d === null ||
    Array.isArray(d) ||
    (kind !== 'delta' && kind !== 'snapshot') ||
    !Number.isSafeInteger(d.from) ||
    !Number.isSafeInteger(d.revision) ||
    (d.from as number) < 0 ||
    (d.revision as number) <= (d.from as number) ||
    typeof d.kid !== 'string' ||
    !/^[0-9A-Za-z._-]{1,128}$/.test(d.kid) ||
    typeof d.jws !== 'string'
  )
    throw new EdgewardError(code, 'not a decision message');
  return { kind, from: d.from as number, revision: d.revision as number, kid: d.kid, jws: d.jws };
}
