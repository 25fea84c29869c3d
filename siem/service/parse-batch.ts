// Turns a POST /v1/events body (a JSON array, or NDJSON: one object per line) into validated,
// stamped events. Pure: the observer comes from the caller's verified client certificate.
import { CODES, EdgewardError } from '../../common/errors.js';
import {
  isEventField,
  reporterKindOf,
  validateEvent,
  type EdgeEvent,
  type ReporterKind,
} from '../../common/events.js';

export const MAX_BATCH_EVENTS = 10_000;

export type BatchFormat = 'json' | 'ndjson';

export interface StampContext {
  /** The reporter's SPIFFE ID from its client certificate. */
  readonly observer: string;
  /** Its kind (reporterKind); derived from `observer` when absent. */
  readonly observerType?: ReporterKind;
  readonly now: number;
  readonly newId: (now: number) => string;
  readonly maxEvents?: number;
}

function malformed(msg: string, cause?: unknown): EdgewardError {
  return new EdgewardError('ERR_SIEM_BATCH_MALFORMED', msg, cause === undefined ? undefined : { cause });
}

/** Decodes the body into raw values (not yet validated); refuses invalid UTF-8 and bad JSON. */
export function decodeBatch(body: Buffer, format: BatchFormat, maxEvents = MAX_BATCH_EVENTS): unknown[] {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch (err) {
    throw malformed('body is not UTF-8', err);
  }
  if (format === 'json') {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (err) {
      throw malformed('body is not JSON', err);
    }
    if (!Array.isArray(v)) throw malformed('body must be a JSON array of events');
    if (v.length > maxEvents) throw new EdgewardError('ERR_SIEM_BATCH_TOO_LARGE');
    return v;
  }
  const out: unknown[] = [];
  let line = 0;
  for (const raw of text.split('\n')) {
    line++;
    const l = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (l.trim() === '') continue;
    if (out.length >= maxEvents) throw new EdgewardError('ERR_SIEM_BATCH_TOO_LARGE');
    try {
      out.push(JSON.parse(l));
    } catch (err) {
      throw new EdgewardError('ERR_SIEM_BATCH_MALFORMED', `line ${line} is not JSON`, {
        cause: err,
        detail: { line },
      });
    }
  }
  return out;
}

/**
 * The body's own `observer.type`, which only agents from before the SIEM derived it still send:
 * the kind itself, or `agent` from a node or device. Anything else claims to be another kind.
 */
function repeatsOwnKind(claimed: unknown, kind: ReporterKind): boolean {
  return claimed === kind || (claimed === 'agent' && (kind === 'node' || kind === 'device'));
}

/**
 * Validates every event (all or nothing: one bad event refuses the batch, so a reporter never has
 * half a batch acknowledged) and stamps id, observer, its kind and ingest time. An event may repeat
 * its own observer.identity or observer.type (dropped and re-set from the certificate); claiming
 * another one is refused (ERR_SIEM_OBSERVER_MISMATCH).
 */
export function stampBatch(raw: readonly unknown[], ctx: StampContext): EdgeEvent[] {
  const max = ctx.maxEvents ?? MAX_BATCH_EVENTS;
  if (raw.length > max) throw new EdgewardError('ERR_SIEM_BATCH_TOO_LARGE');
  const out: EdgeEvent[] = new Array<EdgeEvent>(raw.length);
  const kind = ctx.observerType ?? reporterKindOf(ctx.observer);
  // Validated and stamped in one copy; the options are reused (validateEvent copies the values).
  const stamp = { id: '', observer: ctx.observer, observerType: kind, ingested: ctx.now };
  const opts = { now: ctx.now, stamp };
  for (let i = 0; i < raw.length; i++) {
    let e = raw[i];
    if (
      typeof e === 'object' &&
      e !== null &&
      !Array.isArray(e) &&
      (Object.hasOwn(e, 'observer.identity') || Object.hasOwn(e, 'observer.type'))
    ) {
      const r = e as Record<string, unknown>;
      const copy: Record<string, unknown> = { ...r };
      if (Object.hasOwn(r, 'observer.identity')) {
        const claimed = r['observer.identity'];
        if (claimed !== ctx.observer) throw mismatch(i, 'observer.identity', claimed);
        delete copy['observer.identity'];
      }
      if (Object.hasOwn(r, 'observer.type')) {
        const claimed = r['observer.type'];
        if (!repeatsOwnKind(claimed, kind)) throw mismatch(i, 'observer.type', claimed);
        delete copy['observer.type'];
      }
      e = copy;
    }
    stamp.id = ctx.newId(ctx.now);
    try {
      out[i] = validateEvent(e, opts);
    } catch (err) {
      if (err instanceof EdgewardError) {
        throw new EdgewardError(err.code, `event ${i}: ${err.message}`, {
          cause: err,
          detail: { ...err.detail, index: i },
          clientMessage: refusalMessage(i, err),
        });
      }
      throw err;
    }
  }
  return out;
}

/**
 * What the reporter is told about its refused batch: which event (0-based) and, for a field of the
 * schema, which field. A name that is not one (an unknown or forbidden key) is not echoed back.
 */
function refusalMessage(index: number, err: EdgewardError): string {
  const field = err.detail?.['field'];
  const named = typeof field === 'string' && isEventField(field) ? `, field ${field}` : '';
  return `event ${index}${named}: ${CODES[err.code].message}`;
}

function mismatch(index: number, field: string, claimed: unknown): EdgewardError {
  return new EdgewardError('ERR_SIEM_OBSERVER_MISMATCH', undefined, {
    clientMessage: `event ${index}, field ${field}: ${CODES.ERR_SIEM_OBSERVER_MISMATCH.message}`,
    detail: {
      index,
      field,
      claimed: typeof claimed === 'string' ? claimed.slice(0, 256) : typeof claimed,
    },
  });
}
