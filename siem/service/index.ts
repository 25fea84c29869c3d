// The SIEM service's building blocks (the HTTP adapter is siem/server.ts).
export { createDashboardApi, type DashboardApiOptions } from './dashboard-api.js';
export { AgentLedger, type AgentView } from './agents.js';
export { auditEvent, type AuditEntry } from './audit.js';
export { createCaRevoker, revocable, type CaRevoker } from './ca-link.js';
export { signerOf, verifySiemChain, type SiemDecisionKey } from './decision-key.js';
export {
  DecisionHub,
  type DecisionMessage,
  type DecisionPublisher,
  type DecisionSigner,
  type PublishedChange,
  type Signed,
} from './hub.js';
export { caHealth, ensureSiemIdentity, IdentityRenewer, renewalDue } from './identity.js';
export { IngestPipeline, type IngestOptions } from './ingest.js';
export { createSiemMetrics, type SiemMetrics } from './metrics.js';
export { decodeBatch, MAX_BATCH_EVENTS, stampBatch, type BatchFormat } from './parse-batch.js';
export {
  createAnalystAuthorizer,
  peerOf,
  type AnalystAuthorizer,
  type AnalystExtension,
  type Peer,
  type Principal,
} from './peer.js';
export { resumeRevision, sseComment, sseFrame, SseStreams, type Subscriber } from './sse.js';
