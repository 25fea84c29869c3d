// Three playbooks the response tests share: an identity quarantine for rule r-id, an address
// quarantine for r-ip, and a simulated one for r-sim.
export const SAMPLE_PLAYBOOKS = `kind: playbook
id: pb-identity
rules: [r-id]
decisions:
  - { scope: identity, from: source.identity, action: quarantine, ttl: 1h }
---
kind: playbook
id: pb-ip
rules: [r-ip]
decisions:
  - { scope: ip, from: source.ip, action: quarantine, ttl: 15m }
---
kind: playbook
id: pb-sim
rules: [r-sim]
simulate: true
decisions:
  - { scope: identity, from: source.identity, action: quarantine, ttl: 10m }
`;
