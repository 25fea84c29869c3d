// The client part's face: what a device, a node or a service does against the control plane.
// Enrollment and renewal with the CA, the CA and mTLS HTTPS clients, the event reporter with its
// durable spool, the decision stream client with its store and verifiers, and the CRL reader.
export { enroll, type EnrollOptions } from './enroll.js';
export { renew, type RenewOptions } from './renew.js';
export {
  caRequest,
  checkIssued,
  endpointFromBundle,
  pinCa,
  remoteCode,
  type CaEndpoint,
  type IssuedResponse,
} from './ca-client.js';
export { httpsCall, poolFor, tlsOptions, verifyServiceIdentity, type HttpsCall } from './https-client.js';
export { Reporter, httpsBatchSender, type BatchSender, type EventSink } from './reporter.js';
export { Spool } from './spool.js';
export { Replicas, replicaDown, replicasFor, type ServiceUrls } from './replicas.js';
export { DecisionStreamClient, SseParser, tokenOf, type SseEvent } from './decisions-client.js';
export {
  NatsDecisionClient,
  natsTlsOptions,
  peekDecision,
  type BusOutcome,
  type NatsDecisionOptions,
} from './decisions-nats.js';
export { DecisionStore, applyDelta, type DecisionVerifier } from './decisions-store.js';
export { jwsDecisionVerifier, loadDecisionKey, siemKeyVerifier } from './decision-verifier.js';
export { MAX_CRL_BYTES, parseVerifiedCrl, type VerifiedCrl } from './crl.js';
