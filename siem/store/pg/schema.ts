// The SIEM's tables on PostgreSQL, as versioned migrations (applied by common/postgres.ts under an
// advisory lock, refused when the database is newer). Events are partitioned by event time, one
// partition per UTC day plus a default one for what no day partition takes (events older than
// the days made on demand); timelines are per-entity indexes on the partitions.
import type { Migration } from '../../../common/postgres.js';

export const SIEM_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'siem store',
    sql: `
CREATE SEQUENCE siem_event_seq;
CREATE TABLE siem_events (
  seq BIGINT NOT NULL DEFAULT nextval('siem_event_seq'),
  id TEXT NOT NULL,
  ts BIGINT NOT NULL,
  action TEXT NOT NULL,
  source_identity TEXT,
  destination_identity TEXT,
  source_ip TEXT,
  serial TEXT,
  observer TEXT,
  doc TEXT NOT NULL
) PARTITION BY RANGE (ts);
CREATE TABLE siem_events_default PARTITION OF siem_events DEFAULT;
CREATE INDEX siem_events_id ON siem_events (id);
CREATE INDEX siem_events_ts ON siem_events USING brin (ts);
CREATE INDEX siem_events_source_identity ON siem_events (source_identity, ts) WHERE source_identity IS NOT NULL;
CREATE INDEX siem_events_destination_identity ON siem_events (destination_identity, ts)
  WHERE destination_identity IS NOT NULL;
CREATE INDEX siem_events_source_ip ON siem_events (source_ip, ts) WHERE source_ip IS NOT NULL;
CREATE INDEX siem_events_serial ON siem_events (serial, ts) WHERE serial IS NOT NULL;
CREATE INDEX siem_events_observer ON siem_events (observer, seq) WHERE observer IS NOT NULL;
-- The newest event time of every reporter, kept by each insert (reporters() without a scan).
CREATE TABLE siem_reporters (identity TEXT PRIMARY KEY, last_seen BIGINT NOT NULL);

CREATE TABLE siem_alerts (
  seq BIGSERIAL PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  rule_id TEXT NOT NULL,
  level TEXT NOT NULL,
  time BIGINT NOT NULL,
  doc TEXT NOT NULL
);
CREATE INDEX siem_alerts_time ON siem_alerts (time, seq);
CREATE INDEX siem_alerts_rule ON siem_alerts (rule_id, time, seq);
CREATE TABLE siem_alert_entity (
  value TEXT NOT NULL,
  time BIGINT NOT NULL,
  alert BIGINT NOT NULL REFERENCES siem_alerts (seq) ON DELETE CASCADE,
  PRIMARY KEY (value, time, alert)
);
CREATE INDEX siem_alert_entity_alert ON siem_alert_entity (alert);
CREATE TABLE siem_alert_status (
  id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  by_user TEXT NOT NULL,
  at BIGINT NOT NULL
);

CREATE TABLE siem_decisions (
  id TEXT PRIMARY KEY,
  revision BIGINT NOT NULL,
  scope_type TEXT NOT NULL,
  scope_value TEXT NOT NULL,
  action TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  removed_at BIGINT,
  doc TEXT NOT NULL
);
CREATE INDEX siem_decisions_active ON siem_decisions (revision) WHERE removed_at IS NULL;
CREATE INDEX siem_decisions_revision ON siem_decisions (revision);
CREATE INDEX siem_decisions_scope ON siem_decisions (scope_type, scope_value);
CREATE TABLE siem_pending_decisions (
  id TEXT PRIMARY KEY,
  doc TEXT NOT NULL,
  row_id BIGSERIAL NOT NULL
);
-- The one revision of the decision set, for every replica: each save locks this row and must
-- move it forward, so two replicas never store the same revision.
CREATE TABLE siem_revision (id INTEGER PRIMARY KEY CHECK (id = 1), revision BIGINT NOT NULL);
INSERT INTO siem_revision (id, revision) VALUES (1, 0);
CREATE TABLE siem_agent_acks (
  identity TEXT COLLATE "C" PRIMARY KEY,
  acked BIGINT NOT NULL,
  acked_at BIGINT NOT NULL,
  history JSONB NOT NULL
);

CREATE TABLE siem_users (
  name TEXT COLLATE "C" PRIMARY KEY,
  role TEXT NOT NULL,
  hash TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
-- By the SHA-256 of the cookie's session id, never the id itself.
CREATE TABLE siem_sessions (
  key TEXT PRIMARY KEY,
  user_name TEXT NOT NULL,
  role TEXT NOT NULL,
  csrf TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  last_seen BIGINT NOT NULL,
  row_id BIGSERIAL NOT NULL
);
CREATE INDEX siem_sessions_created ON siem_sessions (created_at, row_id);

CREATE TABLE siem_inventory (
  identity TEXT COLLATE "C" PRIMARY KEY,
  kind TEXT NOT NULL,
  method TEXT,
  verdict TEXT,
  serial TEXT,
  not_after BIGINT,
  last_seen BIGINT NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0,
  spki TEXT,
  ip TEXT
);
CREATE INDEX siem_inventory_kind ON siem_inventory (kind, identity);
CREATE INDEX siem_inventory_serial ON siem_inventory (serial);
CREATE INDEX siem_inventory_spki ON siem_inventory (spki);
CREATE INDEX siem_inventory_ip ON siem_inventory (ip);
`,
  },
  {
    version: 2,
    name: 'siem agent presence',
    sql: `
-- Which agents hold each replica's decision streams, as each replica last said (every few
-- seconds and soon after a change): an agent connected to one replica shows online on all.
CREATE TABLE siem_agent_presence (
  replica TEXT COLLATE "C" NOT NULL,
  identity TEXT COLLATE "C" NOT NULL,
  connected INTEGER NOT NULL,
  at BIGINT NOT NULL,
  PRIMARY KEY (replica, identity)
);
`,
  },
  {
    version: 3,
    name: 'siem batch keys',
    sql: `
-- The reporters' names of the batches stored (Edgeward-Batch-Id), inserted in the events'
-- transaction: the primary key makes a second replica's insert of the same name wait for the
-- first one's transaction and then find it, so a resent batch is stored once. Pruned by the
-- writers (by time and per reporter).
CREATE TABLE siem_batches (
  reporter TEXT COLLATE "C" NOT NULL,
  id TEXT COLLATE "C" NOT NULL,
  at BIGINT NOT NULL,
  accepted INTEGER NOT NULL,
  PRIMARY KEY (reporter, id)
);
CREATE INDEX siem_batches_at ON siem_batches USING brin (at);
`,
  },
];

/** Partition names are siem_events_dYYYYMMDD, one per UTC day of event time. */
export const DAY_MS = 86_400_000;

export function partitionName(day: number): string {
  const d = new Date(day * DAY_MS);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `siem_events_d${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}`;
}

/** The day of a partition name, or undefined for another table. */
export function dayOfPartition(name: string): number | undefined {
  const m = /^siem_events_d(\d{4})(\d{2})(\d{2})$/.exec(name);
  if (!m) return undefined;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) / DAY_MS;
}
