// What a running SIEM offers the pieces that sit on it (the dashboard's API, tests, benches): its
// stores, hub and pipeline, and its event, alert and revocation feeds.
import type { EdgeEvent } from '../common/events.js';
import type { LoadedIdentity } from '../common/identity-dir.js';
import type { Alert } from './correlate/index.js';
import type { AuditEntry } from './service/audit.js';
import type { DecisionHub } from './service/hub.js';
import type { IngestPipeline } from './service/ingest.js';
import type { SiemMetrics } from './service/metrics.js';
import type { RevokedSerials } from './service/reporters.js';
import type { SiemStore, SiemStores } from './store/index.js';

export interface RunningSiem {
  readonly url: string;
  readonly port: number;
  readonly trustDomain: string;
  readonly hub: DecisionHub;
  readonly store: SiemStore;
  /** Every store the SIEM runs on (the dashboard's users, sessions and inventory among them). */
  readonly stores: SiemStores;
  readonly ingest: IngestPipeline;
  readonly metrics: SiemMetrics;
  /** The SIEM's identity now in use (changes at renewal). */
  identity(): LoadedIdentity;
  /** Renews the identity now (needs identityDir and caUrl); the signing key changes with it. */
  renewNow(): Promise<LoadedIdentity>;
  /** Committed events, after their batch was acknowledged (projections: dashboard inventory). */
  subscribeEvents(fn: (events: readonly EdgeEvent[]) => void): () => void;
  /** Serials newly known as revoked (a verified CRL or the CA's revocation events). */
  subscribeRevoked(fn: (serials: readonly string[]) => void): () => void;
  /** The revoked serials the SIEM knows (reporters with one are refused). */
  readonly revoked: RevokedSerials;
  /** Alerts as they are raised. */
  subscribeAlerts(fn: (alert: Alert) => void): () => void;
  /**
   * Records an analyst action in the store (for analyst front ends such as the dashboard);
   * resolves once it is stored (a failure is logged, never thrown).
   */
  audit(entry: AuditEntry): Promise<void>;
  now(): number;
  close(): Promise<void>;
}
