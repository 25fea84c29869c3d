// `edgeward agent --check --config FILE` and `policy check` of an agent configuration: the
// configuration validated as the agent would load it, and a summary of what it configures.
import { parseCommand, required, usageLine } from '../common/args.js';
import { command } from '../common/commands.js';
import { loadAgentConfig, type AgentConfig } from '../agent/index.js';

function decisionSources(c: AgentConfig): string {
  const from: string[] = [];
  if (c.decisions.stream) from.push('SSE stream');
  const n = c.siem?.nats;
  if (n) from.push(`NATS ${n.urls.join(',')} stream ${n.stream} subject ${n.subject} (server ${n.id})`);
  if (c.decisions.file) from.push(`file ${c.decisions.file}`);
  return from.length === 0 ? 'none' : from.join(' + ');
}

export function describeAgentConfig(c: AgentConfig): string {
  const lines = [
    `  identity  ${c.identity.id} in ${c.identity.dir}`,
    `  CA        ${c.ca.url}`,
    `  enroll    ${typeof c.enroll?.['attest'] === 'string' ? c.enroll['attest'] : 'no (the identity folder must exist)'}`,
    `  SIEM      ${c.siem ? c.siem.url : 'none'}`,
    `  decisions ${decisionSources(c)}`,
    `  admin     ${c.admin ? c.admin.listen.text : 'none'}`,
  ];
  for (const i of c.inbound) lines.push(`  inbound   ${i.name}: ${i.listen.text} → ${i.forward.text}`);
  for (const o of c.outbound) lines.push(`  outbound  ${o.name}: ${o.listen.text} → ${o.expect}`);
  return lines.join('\n');
}

export async function runAgentCheck(argv: string[], out: (s: string) => void): Promise<number> {
  const spec = command('agent');
  const a = parseCommand(argv, spec);
  const file = required(a['config'], 'config', usageLine(spec));
  const config = await loadAgentConfig(file);
  out(`${file}: agent configuration OK\n${describeAgentConfig(config)}`);
  return 0;
}
