// What the SIEM's route plugins are given by the composition root (siem/server.ts): the running
// pieces they answer from, and the analyst runner that authorizes and audits every analyst call.
import type { FastifyRequest } from 'fastify';
import type { DecisionScope } from '../../common/decisions.js';
import { EdgewardError } from '../../common/errors.js';
import type { LoadedIdentity } from '../../common/identity-dir.js';
import type { Logger } from '../../common/log.js';
import type { ReporterBudgets } from '../../policies/index.js';
import type { ResponseEngine } from '../playbooks/index.js';
import type { SiemStore, SiemStores } from '../store/index.js';
import type { AuditEntry } from '../service/audit.js';
import type { CrlWatch } from '../service/crl-watch.js';
import type { DecisionHub } from '../service/hub.js';
import type { EventIngest } from '../service/ingest.js';
import type { SiemMetrics } from '../service/metrics.js';
import type { SseStreams } from '../service/sse.js';
import type { AnalystAuthorizer, Principal } from '../service/peer.js';
import type { ReporterGate, RevokedSerials } from '../service/reporters.js';

export interface SiemRouteContext {
  readonly trustDomain: string;
  readonly hub: DecisionHub;
  /** The decision stream's subscribers (a publisher of the hub). */
  readonly streams: SseStreams;
  readonly engine: ResponseEngine;
  readonly store: SiemStore;
  /** Every store, for the adapter's own metrics. */
  readonly stores: SiemStores;
  readonly ingest: EventIngest;
  readonly gate: ReporterGate;
  readonly revoked: RevokedSerials;
  /** Calls fn with serials newly known as revoked (a verified CRL or the CA's revocation events). */
  readonly subscribeRevoked: (fn: (serials: readonly string[]) => void) => () => void;
  readonly metrics: SiemMetrics;
  readonly log: Logger;
  readonly now: () => number;
  readonly newId: (now: number) => string;
  /** The identity now in use (it changes at renewal). */
  readonly identity: () => LoadedIdentity;
  /** The CRL watch, when the SIEM follows the CA's CRL. */
  readonly crlWatch: () => CrlWatch | undefined;
  readonly budgets: ReporterBudgets;
  readonly maxBatchEvents: number;
  /** Largest event batch body in bytes. */
  readonly bodyLimit: number;
  readonly maxSubscribers: number;
  readonly analyst: AnalystRunner;
  /** Revokes at the CA (ERR_SIEM_CA_LINK without one); resolves with the serials revoked. */
  readonly revokeAtCa: (scope: DecisionScope, why: string) => Promise<string[]>;
}

/** Runs an analyst operation: authorizes, audits success and failure, returns the answer. */
export type AnalystRunner = <T>(
  req: FastifyRequest,
  action: string,
  what: string,
  fn: (p: Principal) => Promise<T> | T,
  facts?: (r: T) => { decisionId?: string; revision?: number },
) => Promise<T>;

export function createAnalystRunner(
  authorize: AnalystAuthorizer,
  audit: (a: AuditEntry) => Promise<void>,
): AnalystRunner {
  return async (req, action, what, fn, facts) => {
    let p: Principal | undefined;
    try {
      p = authorize(req);
      const r = await fn(p);
      await audit({ action, principal: p, ip: req.ip, ok: true, message: what, ...facts?.(r) });
      return r;
    } catch (err) {
      const code = err instanceof EdgewardError ? err.code : 'ERR_INTERNAL';
      await audit({ action, principal: p, ip: req.ip, ok: false, code, message: what });
      throw err;
    }
  };
}

/** A non-empty string schema of at most `max` characters. */
export const str = (max: number, pattern?: string): Record<string, unknown> => ({
  type: 'string',
  minLength: 1,
  maxLength: max,
  ...(pattern ? { pattern } : {}),
});
export const DIGITS = '^[0-9]{1,15}$';

/** A query string number the schema has already checked to be digits. */
export const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
