// The agent part's face: the command, the running agent, and the pieces other parts reuse.
export { runAgentCommand, parseAgentArgs, type RunDeps } from './run.js';
export { Agent, type AgentDeps } from './agent.js';
export { loadAgentConfig, parseAgentConfig, validateAgentConfig, type AgentConfig } from './config.js';
export { Enforcer, type LiveConn, type PeerFacts, type Refusal } from './enforcement.js';
export { buildProxyV2, parseProxyV2, PP2_TYPE_EDGEWARD_IDENTITY } from './proxy-protocol.js';
export { Rotation, loadIdentityMaterial, type IdentityRefresher, type IdentityMaterial } from './rotation.js';
