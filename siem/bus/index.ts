// The SIEM on NATS JetStream (`--bus`): the connection and stream layout, ingest that publishes
// accepted batches, sharded correlation workers, and the durable consumers of alerts and batches.
export { connectBus, deleteBusLayout, type Bus, type BusOptions } from './connect.js';
export { BusIngest, chunkEvents, type BusIngestOptions } from './publish-events.js';
export {
  CHAIN_HEADER,
  CorrelationWorker,
  parseChainMessage,
  parseEventMessage,
  type CorrelationWorkerOptions,
} from './correlation-worker.js';
export { DurableLoop, parseAlertMessage, type DurableOptions } from './consumers.js';
export {
  busLayout,
  DEFAULT_LIMITS,
  MAX_SHARDS,
  parseBusUrls,
  ROUTE_SEP,
  shardOf,
  type BusLayout,
  type BusLimits,
} from './layout.js';
export {
  decisionMsgId,
  NatsDecisionPublisher,
  parseBusDecision,
  type BusDecision,
  type ReceivedDecision,
} from './decisions.js';
