// Response playbooks and their settings, as parsed from YAML (policies/default/playbooks/).
import type { DecisionAction, DecisionScope, DecisionScopeType } from '../../common/decisions.js';
import type { EventField } from '../../common/events.js';

export interface Escalation {
  /** Prior decisions on the same scope within this window make the next one longer. */
  readonly windowMs: number;
  /** TTL multiplier per prior decision. */
  readonly factor: number;
  readonly maxTtlMs: number;
}

export interface PlaybookAction {
  readonly scope: Exclude<DecisionScopeType, 'cidr'>;
  /** Alert field the scope value comes from (group-by values first, then the triggering event). */
  readonly from: EventField;
  readonly action: DecisionAction;
  readonly ttlMs: number;
}

export interface Playbook {
  readonly id: string;
  readonly description: string;
  /** Rule ids whose alerts this playbook answers. */
  readonly rules: readonly string[];
  readonly actions: readonly PlaybookAction[];
  readonly reason: string | undefined;
  readonly escalation: Escalation | undefined;
  /** Record what would be decided without enforcing it. */
  readonly simulate: boolean;
}

/**
 * A budget of automatic new decisions per rolling minute, charged to one reporter whose evidence
 * raised the alert: beyond that reporter's share (or the total, when there is one), decisions wait
 * for an analyst. docs/playbooks.md, "Blast radius".
 */
export interface DecisionBudget {
  /** All reporters together; Infinity when there is no total (the reserved budget's default). */
  readonly maxPerMinute: number;
  /** What the evidence of one reporter may raise. */
  readonly perReporter: number;
  /** Of that share, what alerts whose evidence also came from other reporters may spend. */
  readonly sharedEvidence: number;
}

export interface ReservedBudget extends DecisionBudget {
  /** Rules whose decisions spend this budget instead of the general one. */
  readonly rules: readonly string[];
}

export interface ResponseSettings {
  /** Scopes that are never decided against, automatically or manually. */
  readonly allowlist: readonly DecisionScope[];
  /** Automatic new decisions per rolling minute, all reporters together (general budget). */
  readonly maxPerMinute: number;
  /** Of those, what the evidence of one reporter may raise (general budget). */
  readonly perReporter: number;
  /** Of a reporter's share, what joint alerts (several reporters' evidence) may spend. */
  readonly sharedEvidence: number;
  /** Rules with a budget of their own, which floods raising other rules cannot spend. */
  readonly reserved: ReservedBudget;
  readonly escalation: Escalation;
  /** Rules whose playbooks run in simulation mode whatever the playbook says. */
  readonly simulateRules: readonly string[];
}

export interface PlaybookConfig {
  readonly settings: ResponseSettings;
  readonly playbooks: readonly Playbook[];
}

export const DEFAULT_SETTINGS: ResponseSettings = {
  allowlist: [],
  maxPerMinute: 60,
  perReporter: 20,
  sharedEvidence: 10,
  reserved: {
    rules: ['ew-cloned-credential'],
    maxPerMinute: Infinity,
    perReporter: 10,
    sharedEvidence: 5,
  },
  escalation: { windowMs: 86_400_000, factor: 2, maxTtlMs: 7 * 86_400_000 },
  simulateRules: [],
};
