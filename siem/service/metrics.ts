// The SIEM service's Prometheus metrics (GET /metrics).
import { Registry } from '../../common/metrics.js';
import { DEFAULT_BUDGETS, type ReporterBudgets } from '../../policies/index.js';

/**
 * The label caps come from the reporter policy's budgets: what one reporter may add to a label
 * (`metric-label-values`), and how many reporters the refusal counter names (`metric-reporters`).
 */
export function createSiemMetrics(
  budgets: Pick<ReporterBudgets, 'metricLabelValues' | 'metricReporters'> = DEFAULT_BUDGETS,
) {
  const perSource = budgets.metricLabelValues;
  const registry = new Registry().withRuntime();
  return {
    registry,
    ingested: registry.counter('edgeward_siem_events_ingested_total', 'Events committed to the store'),
    rejected: registry.counter(
      'edgeward_siem_events_rejected_total',
      'Event batches refused, by reason (error code)',
      { maxLabelValues: 128, maxValuesPerSource: perSource },
    ),
    reporterRefusals: registry.counter(
      'edgeward_siem_reporter_refusals_total',
      `Events and requests refused by the reporter policy, standing or budget, by reporter kind, reporter (the first ${budgets.metricReporters} identities, then other) and code`,
      { maxLabelValues: budgets.metricReporters, maxValuesPerSource: perSource },
    ),
    batches: registry.counter('edgeward_siem_batches_total', 'Event batches acknowledged'),
    duplicateBatches: registry.counter(
      'edgeward_siem_batches_duplicate_total',
      'Event batches acknowledged as a repeat of a batch id the reporter had stored already (nothing stored again)',
    ),
    busSetAside: registry.counter(
      'edgeward_siem_bus_set_aside_total',
      'Bus messages set aside after failing every delivery, by consumer (store or respond)',
    ),
    commits: registry.counter('edgeward_siem_commits_total', 'Group commits (transactions) of events'),
    commitSeconds: registry.histogram('edgeward_siem_commit_seconds', 'Time to commit one group of events'),
    queued: registry.gauge(
      'edgeward_siem_ingest_queue_events',
      'Events accepted and waiting for their commit or their correlation',
    ),
    alerts: registry.counter('edgeward_siem_alerts_total', 'Alerts raised, by rule', {
      maxLabelValues: 1024,
    }),
    decisions: registry.counter('edgeward_siem_decisions_total', 'Playbook outcomes, by outcome'),
    revision: registry.gauge('edgeward_siem_decision_revision', 'Current decision revision'),
    active: registry.gauge('edgeward_siem_decisions_active', 'Active decisions'),
    subscribers: registry.gauge('edgeward_siem_stream_subscribers', 'Open decision stream connections'),
    agents: registry.gauge('edgeward_siem_agents_connected', 'Identities with an open decision stream'),
    lagRevisions: registry.gauge(
      'edgeward_siem_stream_lag_revisions',
      'Largest revisions-behind of a connected agent',
    ),
    lagSeconds: registry.gauge(
      'edgeward_siem_stream_lag_seconds',
      'Largest time since the first unacknowledged revision of a connected agent was published',
    ),
    publishSeconds: registry.histogram(
      'edgeward_siem_publish_seconds',
      'From a decision change to its signed delta written to every subscriber',
    ),
    revocations: registry.counter(
      'edgeward_siem_ca_revocations_total',
      'Revocations asked of the CA, by outcome',
    ),
  };
}

export type SiemMetrics = ReturnType<typeof createSiemMetrics>;
