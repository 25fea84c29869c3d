// The dashboard's view of the running SIEM (siem/dashboard/api.ts DashboardApi) over its store,
// response engine and decision hub, plus small in-memory aggregates for the graph, the charts and
// the live connections the agents report. Every analyst change goes through the hub (persisted,
// signed, streamed) and is audited; reads are audited as reads (not stored as events). Every
// answer is bounded: pages and lists have caps, the graph and charts a fixed time window.
import type { Decision, DecisionScope } from '../../common/decisions.js';
import { EdgewardError } from '../../common/errors.js';
import type { EdgeEvent } from '../../common/events.js';
import { tryParseIp } from '../../common/ip.js';
import type { Logger } from '../../common/log.js';
import { normalizeSerial } from '../../common/x509.js';
import type { Alert } from '../correlate/index.js';
import {
  STORED_CHART_RANGES,
  type ChartRange,
  type AlertsQuery,
  type AlertTriage,
  type DashboardApi,
  type InventoryQuery,
  type LiftRequest,
  type ManualDecisionRequest,
  type ReadRecord,
  type View,
} from '../dashboard/api.js';
import { quarantineSet, scopeCovers, type EntityFacts, type QuarantineSet } from '../dashboard/inventory.js';
import { groupTimeline } from '../dashboard/timeline.js';
import type { RunningSiem } from '../running-siem.js';
import type { AlertStatus, InventoryStore } from '../store/index.js';
import type { Rule, RuleSet } from '../../policies/rules/index.js';

/** Tries of an inventory update while the store is away, one every STORE_RETRY_MS (about a minute). */
const STORE_RETRIES = 60;
const STORE_RETRY_MS = 1000;

const BUCKET_MS = 10_000;
const BUCKETS = 60;
const MAX_EDGES = 5000;
/** The graph shows who talked to whom within this window; older pairs make room for new ones. */
const GRAPH_WINDOW_MS = 3_600_000;
const GRAPH_EDGES = 500;
/** Longest list of active decisions, pending ones or agents in one answer (totals come too). */
const MAX_LIST = 500;
/** Alerts shown on an entity's page. */
const ENTITY_ALERTS = 100;
/** Evidence events shown in an alert's detail. */
const ALERT_EVIDENCE = 50;
/** Live connections tracked from the agents' connection events. */
const MAX_LIVE = 100_000;
/** How often the live state (revision, acknowledgements) is compared for the page's stream. */
const STATE_POLL_MS = 250;
const ACK_REFRESH_MS = 1_000;
/** An agent that has not acknowledged a revision published this recently is applying it. */
const APPLYING_MS = 2_000;

export interface DashboardApiOptions {
  /** The inventory projection (SiemStores.inventory); fed from committed events. */
  readonly inventory?: InventoryStore;
  /** The rules the SIEM runs (titles and descriptions for the alert detail). */
  readonly rules?: RuleSet;
  /** Where failures of the inventory's updates and of live alerts are logged. */
  readonly log?: Logger;
}

type Host = Pick<RunningSiem, 'hub' | 'store' | 'subscribeAlerts' | 'subscribeEvents' | 'audit' | 'now'> &
  Partial<Pick<RunningSiem, 'subscribeRevoked' | 'revoked'>>;

function decisionView(d: Decision): View {
  return { ...d, scope: { ...d.scope } };
}

/** Group-by fields in the order an alert's entity is taken from them. */
const ENTITY_FIELDS: readonly [string, EntityKind][] = [
  ['source.identity', 'identity'],
  ['destination.identity', 'identity'],
  ['observer.identity', 'identity'],
  ['attestation.claimed_identity', 'identity'],
  ['tls.client.x509.serial_number', 'serial'],
  ['tls.client.x509.spki_sha256', 'spki'],
  ['source.ip', 'ip'],
  ['destination.ip', 'ip'],
];
type EntityKind = 'identity' | 'serial' | 'spki' | 'ip' | 'other';

/** The entity an alert is about: its first group-by value that names one, else its trigger's. */
export function alertEntity(a: Alert): { value: string; kind: EntityKind } | undefined {
  const g = a.groupBy ?? {};
  for (const [field, kind] of ENTITY_FIELDS) {
    const v = g[field];
    if (typeof v === 'string' && v !== '') return { value: v, kind };
  }
  const t = a.trigger as Record<string, unknown> | undefined;
  for (const [field, kind] of ENTITY_FIELDS) {
    const v = t?.[field];
    if (typeof v === 'string' && v !== '') return { value: v, kind };
  }
  const first = Object.values(g).find((v) => typeof v === 'string' && v !== '');
  return first === undefined ? undefined : { value: first, kind: 'other' };
}

/** What kind of entity a text names: an identity, an address, a serial or a key hash. */
function kindOfText(text: string): Exclude<EntityKind, 'other'> {
  if (text.startsWith('spiffe://')) return 'identity';
  if (tryParseIp(text) !== null) return 'ip';
  if (/^[0-9a-f]{64}$/i.test(text)) return 'spki';
  return 'serial';
}

/** One check as the page shows it: its verdict from the event's evidence, and what it compared. */
interface CheckEvidence {
  readonly verdict?: string;
  /** Label and value pairs (digests, PCR lists, the distance), shown as they are. */
  readonly values?: readonly (readonly [string, string])[];
}
type Evidence = (e: EdgeEvent) => CheckEvidence | undefined;

const verdictOf = (v: unknown): string | undefined =>
  v === 'passed' || v === 'failed' ? v : v === 'allow-listed' ? 'passed' : undefined;
const pairs = (list: readonly (readonly [string, unknown])[]): (readonly [string, string])[] =>
  list.filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => [k, String(v)] as const);

const ekEvidence: Evidence = (e) => {
  const chain = e['attestation.tpm.ek_chain'];
  if (chain === undefined) return undefined;
  const verdict = verdictOf(chain);
  return {
    ...(verdict !== undefined ? { verdict } : {}),
    values: pairs([
      [
        'trust',
        chain === 'allow-listed' ? 'EK on the allow-list' : chain === 'passed' ? 'certificate chain' : 'none',
      ],
      ['issuer', e['attestation.tpm.ek_issuer']],
    ]),
  };
};
const pcrEvidence: Evidence = (e) => {
  const quoted = e['attestation.tpm.pcr_quoted_digest'];
  const verdict = verdictOf(e['attestation.tpm.pcrs']);
  if (quoted === undefined && verdict === undefined) return undefined;
  const mismatch = e['attestation.tpm.pcr_mismatch'];
  return {
    ...(verdict !== undefined ? { verdict } : {}),
    values: pairs([
      ['bank', e['attestation.tpm.pcr_bank']],
      ['PCRs', e['attestation.tpm.pcr_selection']],
      ['expected digest', e['attestation.tpm.pcr_expected_digest']],
      ['quoted digest', quoted],
      ['not golden', mismatch === undefined && verdict !== undefined ? 'none' : mismatch],
    ]),
  };
};
const field =
  (name: keyof EdgeEvent): Evidence =>
  (e) => {
    const v = verdictOf(e[name]);
    return v === undefined ? undefined : { verdict: v };
  };
const distanceEvidence: Evidence = (e) => {
  const mode = e['attestation.puf.mode'];
  if (mode === 'key')
    return {
      values: [['mode', 'key (the device’s fuzzy extractor corrects its response; the CA sees no distance)']],
    };
  if (mode !== 'crp') return undefined;
  const verdict = verdictOf(e['attestation.puf.response']);
  return {
    ...(verdict !== undefined ? { verdict } : {}),
    values: pairs([
      ['mode', 'challenge-response'],
      [
        'distance',
        e['attestation.puf.distance'] !== undefined ? `${e['attestation.puf.distance']} bits` : undefined,
      ],
      [
        'threshold',
        e['attestation.puf.threshold'] !== undefined ? `${e['attestation.puf.threshold']} bits` : undefined,
      ],
    ]),
  };
};

/**
 * The checks each attestation method makes before the CA issues, in the order it makes them: the
 * verdict from the CA's evidence when its event carries it, else inferred from the refusal code.
 */
const CHECKS: Record<string, readonly { name: string; fails: RegExp; evidence?: Evidence }[]> = {
  tpm: [
    {
      name: 'EK certificate chains to a trusted manufacturer root',
      fails: /^ek_/,
      evidence: ekEvidence,
    },
    {
      name: 'AK attributes and credential activation (AK and EK in one TPM)',
      fails: /^(ak_|activation)/,
      evidence: field('attestation.tpm.activation'),
    },
    {
      name: 'quote signed by the AK',
      fails: /^quote_(signature|magic|type)/,
      evidence: field('attestation.tpm.quote_signature'),
    },
    {
      name: 'fresh nonce and CSR key bound into the quote',
      fails: /^(nonce_|quote_replayed|csr_key|clock_)/,
    },
    { name: 'PCRs against the golden values', fails: /^pcr_/, evidence: pcrEvidence },
  ],
  puf: [
    { name: 'device provisioned (helper data registered)', fails: /^(not_provisioned|record_|helper_)/ },
    {
      name: 'PUF response within the fuzzy extractor’s distance',
      fails: /^(crp_|entropy|response_)/,
      evidence: distanceEvidence,
    },
    {
      name: 'signature by the PUF-derived key over the nonce and CSR key',
      fails: /^(signature|key_|nonce_|replay)/,
      evidence: field('attestation.puf.signature'),
    },
  ],
  token: [{ name: 'one-time join token bound to this identity', fails: /token/ }],
};

export function createDashboardApi(
  siem: Host,
  o: DashboardApiOptions = {},
): DashboardApi & { close(): void } {
  const engine = siem.hub.engine;
  const ledger = siem.hub.ledger;
  const rules = new Map<string, Rule>();
  for (const r of [...(o.rules?.detections ?? []), ...(o.rules?.correlations ?? [])]) rules.set(r.id, r);
  // The active decisions change only with the revision: build the quarantine set once per revision
  // (a page of the inventory asks it for every row).
  let cached: { revision: number; set: QuarantineSet } | undefined;
  const quarantined = (): QuarantineSet => {
    const revision = engine.revision;
    if (cached?.revision !== revision)
      cached = { revision, set: quarantineSet(engine.active().map((d) => d.scope)) };
    return cached.set;
  };
  const covering = (f: EntityFacts): Decision[] => engine.active().filter((d) => scopeCovers(d.scope, f));

  // Rolling per-10 s counts: events, and alerts per rule.
  const events = new Map<number, number>();
  const alertsByRule = new Map<string, Map<number, number>>();
  const edges = new Map<
    string,
    { from: string; to: string; count: number; denied: number; last: number; address: boolean }
  >();
  // Live connections, from the nodes' own connection.accepted / connection.closed reports.
  const live = new Map<
    string,
    { agent: string; identity: string; serial?: string; spki?: string; ip?: string }
  >();
  let sweptAt = -Infinity;
  /** Drops pairs not seen within the window (at most every 10 s); true if that made room. */
  const sweep = (now: number): boolean => {
    if (now - sweptAt < 10_000) return false;
    sweptAt = now;
    for (const [k, e] of edges) if (e.last < now - GRAPH_WINDOW_MS) edges.delete(k);
    return edges.size < MAX_EDGES;
  };
  const bucket = (t: number): number => Math.floor(t / BUCKET_MS) * BUCKET_MS;
  const trim = (m: Map<number, number>): void => {
    const oldest = bucket(siem.now()) - BUCKETS * BUCKET_MS;
    for (const k of m.keys()) if (k < oldest) m.delete(k);
  };
  const edge = (from: string, to: string, denied: boolean, address: boolean, now: number): void => {
    const k = `${from}\u001f${to}`;
    const e = edges.get(k);
    if (e) {
      e.count++;
      if (denied) e.denied++;
      e.last = now;
    } else if (edges.size < MAX_EDGES || sweep(now))
      edges.set(k, { from, to, count: 1, denied: denied ? 1 : 0, last: now, address });
  };
  const trackLive = (e: EdgeEvent): void => {
    if (e['observer.type'] !== 'node' || e['network.direction'] !== 'inbound') return;
    const agent = e['observer.identity'];
    const identity = e['source.identity'];
    if (agent === undefined || identity === undefined) return;
    const key = `${agent}\u001f${identity}\u001f${e['source.ip'] ?? ''}\u001f${e['source.port'] ?? ''}`;
    if (e['event.action'] === 'connection.closed') live.delete(key);
    else if (e['event.action'] === 'connection.accepted' && live.size < MAX_LIVE)
      live.set(key, {
        agent,
        identity,
        ...(e['tls.client.x509.serial_number'] !== undefined
          ? { serial: e['tls.client.x509.serial_number'] }
          : {}),
        ...(e['tls.client.x509.spki_sha256'] !== undefined ? { spki: e['tls.client.x509.spki_sha256'] } : {}),
        ...(e['source.ip'] !== undefined ? { ip: e['source.ip'] } : {}),
      });
  };

  // The inventory's writes, one after another in the order they came (a revocation after the
  // enrollment it revokes); reads of the inventory wait for the writes before them.
  // A store that is away (PostgreSQL restarting) is waited for: the events are committed already,
  // and their changes to the inventory would otherwise be missing once it is back.
  let inventoryWrites: Promise<void> = Promise.resolve();
  const retried = async (fn: () => Promise<unknown>): Promise<unknown> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (
          !(err instanceof EdgewardError && err.code === 'ERR_STORE_UNAVAILABLE') ||
          attempt >= STORE_RETRIES
        )
          throw err;
        await new Promise((r) => setTimeout(r, STORE_RETRY_MS));
      }
    }
  };
  const writeInventory = (fn: (inv: InventoryStore) => Promise<unknown>): void => {
    const inv = o.inventory;
    if (inv === undefined) return;
    inventoryWrites = inventoryWrites
      .then(() => retried(() => fn(inv)))
      .then(
        () => undefined,
        (err: unknown) => o.log?.error({ err }, 'the inventory projection could not be updated'),
      );
  };
  const inventory = async (): Promise<InventoryStore | undefined> => {
    await inventoryWrites;
    return o.inventory;
  };
  // The CA's revocations (its CRL, its revocation events) mark the rows whose certificate they name.
  const known = siem.revoked;
  if (known !== undefined) writeInventory((inv) => inv.markRevoked(known.list()));
  const offRevoked = siem.subscribeRevoked?.((serials) => writeInventory((inv) => inv.markRevoked(serials)));
  const offEvents = siem.subscribeEvents((batch: readonly EdgeEvent[]) => {
    writeInventory((inv) => inv.apply(batch));
    const b = bucket(siem.now());
    events.set(b, (events.get(b) ?? 0) + batch.length);
    trim(events);
    const now = siem.now();
    for (const e of batch) {
      const action = e['event.action'];
      if (action === 'connection.accepted' || action === 'connection.closed') trackLive(e);
      // A failed handshake proved no identity: it counts against its address, never the name it gave.
      const from = action === 'handshake.failure' ? undefined : e['source.identity'];
      const to =
        e['destination.identity'] ?? (e['observer.type'] === 'node' ? e['observer.identity'] : undefined);
      const denied = action === 'connection.denied' || action === 'handshake.failure';
      if (to === undefined || action === 'connection.closed') continue;
      if (from !== undefined) edge(from, to, denied, false, now);
      else if (denied && e['source.ip'] !== undefined) edge(e['source.ip'], to, true, true, now);
    }
  });
  const alertFns = new Set<(a: View) => void>();
  const offAlerts = siem.subscribeAlerts((a: Alert) => {
    const m = alertsByRule.get(a.ruleId) ?? new Map<number, number>();
    const b = bucket(siem.now());
    m.set(b, (m.get(b) ?? 0) + 1);
    trim(m);
    alertsByRule.set(a.ruleId, m);
    if (alertFns.size === 0) return;
    // In the order raised, each once its view (which may read the inventory) is made.
    liveAlerts = liveAlerts
      .then(() => alertView(a))
      .then(
        (v) => {
          for (const fn of alertFns) fn(v);
        },
        (err: unknown) => o.log?.error({ err }, 'a live alert could not be shown'),
      );
  });
  let liveAlerts: Promise<void> = Promise.resolve();

  // The page's live state: the revision, and each agent's acknowledgement.
  const stateFns = new Set<(s: View) => void>();
  let lastState = '';
  const stateNow = (): View => {
    const acks: Record<string, number | null> = {};
    for (const a of ledger.list(siem.now()).slice(0, MAX_LIST)) acks[a.identity] = a.acked;
    return { revision: siem.hub.revision, published: ledger.revision, acks };
  };
  // Replicas on one store: acknowledgements made on another replica reach the live page too
  // (the page's API reads refresh the ledger; the live state does so at most every second).
  let refreshedAt = 0;
  const stateTimer = setInterval(() => {
    if (stateFns.size === 0) return;
    if (siem.store.revision !== undefined && Date.now() - refreshedAt >= ACK_REFRESH_MS) {
      refreshedAt = Date.now();
      void ledger
        .refresh()
        .catch((err: unknown) => o.log?.warn({ err }, 'could not read the acknowledgements'));
    }
    const s = stateNow();
    const text = JSON.stringify(s);
    if (text === lastState) return;
    lastState = text;
    for (const fn of stateFns) fn(s);
  }, STATE_POLL_MS);
  stateTimer.unref();

  const series = (m: Map<number, number>, per = 1): [number, number][] => {
    const end = bucket(siem.now());
    const out: [number, number][] = [];
    for (let t = end - (BUCKETS - 1) * BUCKET_MS; t <= end; t += BUCKET_MS)
      out.push([t, (m.get(t) ?? 0) / per]);
    return out;
  };

  /** An alert's triage as shown: new until an analyst acknowledges or closes it. */
  function statusView(st: AlertStatus | undefined): View {
    return st === undefined
      ? { status: 'new', statusBy: null, statusAt: null }
      : { status: st.status, statusBy: st.by, statusAt: st.at };
  }

  async function alertView(a: Alert): Promise<View> {
    const entity = alertEntity(a);
    const rule = rules.get(a.ruleId);
    const entityIdentity = entity === undefined ? null : await identityOf(entity.value, entity.kind);
    return {
      id: a.id,
      ruleId: a.ruleId,
      title: a.title,
      severity: a.level,
      type: a.type,
      time: a.time,
      windowStart: a.windowStart,
      count: a.count,
      groupBy: a.groupBy,
      entity: entity?.value ?? null,
      entityKind: entity?.kind ?? null,
      // The inventory's name for a serial or key: the identity it belongs to.
      entityIdentity,
      events: a.events,
      ...(rule !== undefined ? { description: rule.description } : {}),
    };
  }

  async function identityOf(value: string, kind: EntityKind): Promise<string | null> {
    if (kind === 'identity') return value;
    const inv = kind === 'serial' ? await inventory() : undefined;
    if (inv !== undefined) {
      const row = await inv.bySerial(canonicalSerial(value), quarantined());
      return row === undefined ? null : (row['identity'] as string);
    }
    return null;
  }

  /** Which agents applied a decision's revision, and when (null: not yet). */
  function propagation(d: { revision: number }): View[] {
    const now = siem.now();
    return ledger
      .list(now)
      .slice(0, MAX_LIST)
      .map((a) => {
        const at = ledger.appliedAt(a.identity, d.revision);
        return { identity: a.identity, applied: at !== null, at: at ?? null, connected: a.connected };
      });
  }

  /** An agent's standing: current, applying a revision published moments ago, or behind. */
  function agentView(a: ReturnType<typeof ledger.list>[number]): View {
    const state =
      a.behind === 0 ? 'current' : a.lagMs < APPLYING_MS && a.connected > 0 ? 'applying' : 'behind';
    return {
      identity: a.identity,
      connected: a.connected,
      revision: a.acked,
      ackedAt: a.ackedAt,
      lastSeen: a.lastSeen,
      behind: a.behind,
      lagMs: a.lagMs,
      state,
    };
  }

  /** A dashboard change: through the hub, audited with the user name, answered as a view. */
  async function act<T>(
    by: string,
    action: string,
    what: string,
    fn: () => Promise<T>,
    view: (r: T) => View | Promise<View>,
  ): Promise<View> {
    const principal = { id: by, via: 'session' };
    try {
      const r = await fn();
      const v = await view(r);
      const id = typeof v['id'] === 'string' ? v['id'] : undefined;
      await siem.audit({
        action,
        principal,
        ip: '127.0.0.1',
        ok: true,
        message: what,
        decisionId: id,
        revision: siem.hub.revision,
      });
      return v;
    } catch (err) {
      const code = err instanceof EdgewardError ? err.code : 'ERR_INTERNAL';
      await siem.audit({ action, principal, ip: '127.0.0.1', ok: false, code, message: what });
      throw err instanceof TypeError
        ? new EdgewardError('ERR_INPUT_MALFORMED', err.message)
        : err instanceof Error
          ? err
          : new EdgewardError('ERR_INTERNAL');
    }
  }

  /** The certificates the CA reported issuing to an identity, with their state now. */
  function certificates(identity: string, timeline: readonly EdgeEvent[], current: unknown): View[] {
    const now = siem.now();
    const seen = new Set<string>();
    const out: View[] = [];
    for (const e of timeline) {
      const a = e['event.action'];
      if (e['observer.type'] !== 'ca' || (a !== 'enroll.success' && a !== 'renewal.success')) continue;
      if (e['source.identity'] !== identity) continue;
      const serial = e['tls.client.x509.serial_number'];
      if (serial === undefined || seen.has(serial)) continue;
      seen.add(serial);
      const notAfter = e['tls.client.x509.not_after'] ?? null;
      const state =
        siem.revoked?.has(serial) === true
          ? 'revoked'
          : notAfter !== null && notAfter < now
            ? 'expired'
            : serial === current || (current == null && out.length === 0)
              ? 'current'
              : 'superseded';
      out.push({
        serial,
        issuedAt: e['@timestamp'],
        notAfter,
        how: a === 'enroll.success' ? 'enrolled' : 'renewed',
        state,
      });
    }
    return out;
  }

  /** The latest attestation of an identity: method, when, and the verdict of each check. */
  function attestation(identity: string, timeline: readonly EdgeEvent[]): View | null {
    const e = timeline.find(
      (x) =>
        x['observer.type'] === 'ca' &&
        x['source.identity'] === identity &&
        [
          'enroll.success',
          'renewal.success',
          'enroll.failure',
          'attestation.failure',
          'renewal.failure',
        ].includes(x['event.action']),
    );
    if (e === undefined) return null;
    const method = e['attestation.method'] ?? 'unknown';
    const ok = e['event.action'].endsWith('.success');
    const reason = e['attestation.reason'] ?? e['error.code']?.toLowerCase() ?? null;
    let failedOne = false;
    const checks = (CHECKS[method] ?? []).map((c) => {
      const ev = c.evidence?.(e);
      const values = ev?.values !== undefined && ev.values.length > 0 ? { values: ev.values } : {};
      const from = ev?.verdict !== undefined ? { source: 'evidence' } : { source: 'inferred' };
      let verdict: string;
      if (ev?.verdict !== undefined) verdict = ev.verdict;
      else if (ok) verdict = 'passed';
      else if (!failedOne && reason !== null && c.fails.test(reason)) verdict = 'failed';
      else verdict = failedOne ? 'not reached' : 'passed or not reached';
      const first = verdict === 'failed' && !failedOne;
      if (verdict === 'failed') failedOne = true;
      return { check: c.name, verdict, ...from, ...values, ...(first && reason !== null ? { reason } : {}) };
    });
    // The method makes its checks in order: the ones before a failed check were passed.
    const failedAt = checks.findIndex((c) => c.verdict === 'failed');
    for (const c of checks.slice(0, Math.max(0, failedAt)))
      if (c.verdict === 'passed or not reached') c.verdict = 'passed';
    return {
      method,
      at: e['@timestamp'],
      ageMs: Math.max(0, siem.now() - e['@timestamp']),
      action: e['event.action'],
      verdict: ok ? 'ok' : 'refused',
      reason,
      checks,
    };
  }

  const canonicalSerial = (v: string): string => {
    try {
      return normalizeSerial(v);
    } catch {
      return v.toLowerCase();
    }
  };

  return {
    async alerts(q: AlertsQuery): Promise<View[]> {
      // Severity is not indexed: read a wider page and filter it (bounded by the store's cap).
      const wide = q.severity !== undefined ? Math.min(q.limit * 5, 2000) : q.limit;
      const list = await siem.store.alerts({
        limit: wide,
        ...(q.before !== undefined ? { before: q.before } : {}),
        ...(q.since !== undefined ? { since: q.since } : {}),
        ...(q.rule !== undefined ? { ruleId: q.rule } : {}),
        ...(q.entity !== undefined ? { entity: q.entity } : {}),
      });
      const wanted = list.filter((a) => q.severity === undefined || q.severity.includes(a.level));
      const statuses = await siem.store.alertStatuses(wanted.map((a) => a.id));
      const views = await Promise.all(
        wanted.map(async (a) => ({ ...(await alertView(a)), ...statusView(statuses.get(a.id)) })),
      );
      return views
        .filter((v) => q.status === undefined || q.status.includes(v['status'] as AlertTriage))
        .slice(0, q.limit);
    },
    setAlertStatus(by: string, id: string, time: number, status: 'acknowledged' | 'closed') {
      return act(
        by,
        `siem.alert.${status === 'closed' ? 'close' : 'acknowledge'}`,
        `${status === 'closed' ? 'close' : 'acknowledge'} alert ${id}`,
        async () => {
          const a = (await siem.store.alerts({ since: time, before: time + 1, limit: 1000 })).find(
            (x) => x.id === id,
          );
          if (a === undefined) throw new EdgewardError('ERR_NOT_FOUND', 'no such alert');
          const st = { status, by, at: siem.now() };
          await siem.store.setAlertStatus(id, st);
          return { a, st };
        },
        async ({ a, st }) => ({ ...(await alertView(a)), ...statusView(st) }),
      );
    },
    async alert(id: string, time: number): Promise<View> {
      // Served by the alerts' time index: the alerts raised in that millisecond.
      const a = (await siem.store.alerts({ since: time, before: time + 1, limit: 1000 })).find(
        (x) => x.id === id,
      );
      if (a === undefined) throw new EdgewardError('ERR_NOT_FOUND', 'no such alert');
      const evidence = (
        await Promise.all(a.events.slice(-ALERT_EVIDENCE).map((eid) => siem.store.event(eid)))
      ).filter((e): e is EdgeEvent => e !== undefined);
      await ledger.refresh();
      const decisions = (await siem.store.decisionHistory(MAX_LIST))
        .filter((d) => d.alerts.includes(a.id))
        .map((d) => ({
          ...decisionView(d),
          active: d.removedAt === null && engine.active().some((x) => x.id === d.id),
          removedAt: d.removedAt,
          propagation: propagation(d),
        }));
      const pending = engine.pending().filter((p) => p.alerts.includes(a.id));
      const rule = rules.get(a.ruleId);
      return {
        ...(await alertView(a)),
        ...statusView((await siem.store.alertStatuses([a.id])).get(a.id)),
        rule:
          rule === undefined
            ? null
            : { id: rule.id, title: rule.title, description: rule.description, level: rule.level },
        evidence,
        evidenceTotal: a.events.length,
        decisions,
        pending,
      };
    },
    subscribeAlerts(fn) {
      alertFns.add(fn);
      return () => void alertFns.delete(fn);
    },
    subscribeState(fn) {
      stateFns.add(fn);
      fn(stateNow());
      return () => void stateFns.delete(fn);
    },
    async inventory(q: InventoryQuery) {
      const inv = await inventory();
      if (inv === undefined) return { total: 0, items: [] };
      return inv.query(q, quarantined());
    },
    async entity(text: string, limit: number): Promise<View> {
      const kind = kindOfText(text);
      const qs = quarantined();
      const inv = await inventory();
      let identity = kind === 'identity' ? text : null;
      let value = text;
      if (kind === 'serial') {
        value = canonicalSerial(text);
        const row = await inv?.bySerial(value, qs);
        if (row !== undefined) identity = row['identity'] as string;
      }
      const row = identity === null ? undefined : await inv?.get(identity, qs);
      const facts: EntityFacts = {
        identity,
        serial: kind === 'serial' ? value : ((row?.['serial'] as string | null | undefined) ?? null),
        spki: kind === 'spki' ? value.toLowerCase() : ((row?.['spki'] as string | null | undefined) ?? null),
        ip: kind === 'ip' ? value : ((row?.['ip'] as string | null | undefined) ?? null),
      };
      const timeline =
        identity !== null
          ? await siem.store.timeline({ entity: 'identity', value: identity, limit })
          : await siem.store.timeline({ entity: kind === 'ip' ? 'source.ip' : 'serial', value, limit });
      const peers = new Set<string>();
      for (const e of timeline) {
        for (const p of [e['source.identity'], e['destination.identity'], e['observer.identity']])
          if (p !== undefined && p !== identity) peers.add(p);
      }
      const alerts = await siem.store.alerts({ entity: identity ?? value, limit: ENTITY_ALERTS });
      if (identity !== null && facts.serial) {
        // Alerts keyed by the serial (a cloned credential) are about this identity too.
        const seen = new Set(alerts.map((a) => a.id));
        for (const a of await siem.store.alerts({ entity: facts.serial, limit: ENTITY_ALERTS }))
          if (!seen.has(a.id)) alerts.push(a);
        alerts.sort((x, y) => y.time - x.time);
      }
      const decisions = covering(facts).map(decisionView);
      const revoked = row?.['status'] === 'revoked';
      return {
        identity: identity ?? value,
        ...(row ?? {}),
        // What the page is about: an identity (row.kind says node, device or svc), or one of its facts.
        type: identity !== null ? 'identity' : kind,
        status: revoked ? 'revoked' : decisions.length > 0 ? 'quarantined' : 'healthy',
        quarantined: decisions.length > 0,
        events: timeline,
        // The same events grouped by action, outcome and cause, each group naming its events.
        timelineGroups: groupTimeline(timeline),
        alerts: await Promise.all(alerts.slice(0, ENTITY_ALERTS).map(alertView)),
        decisions,
        certificates: identity === null ? [] : certificates(identity, timeline, row?.['serial']),
        attestation: identity === null ? null : attestation(identity, timeline),
        peers: [...peers].slice(0, 200),
      };
    },
    preview(scope: { type: string; value: string }): View {
      const conns = [...live.values()].filter((c) => scopeCovers(scope, c));
      const agents = new Map<string, number>();
      for (const c of conns) agents.set(c.agent, (agents.get(c.agent) ?? 0) + 1);
      const subscribed = ledger.list(siem.now()).filter((a) => a.connected > 0);
      return {
        scope,
        liveConnections: conns.length,
        onAgents: [...agents.entries()].map(([identity, connections]) => ({ identity, connections })),
        identities: [...new Set(conns.map((c) => c.identity))].slice(0, 50),
        agentsToApply: subscribed.map((a) => a.identity).slice(0, MAX_LIST),
        agentsToApplyTotal: subscribed.length,
      };
    },
    async fleet(): Promise<View> {
      await ledger.refresh();
      const now = siem.now();
      const qs = quarantined();
      const invStore = await inventory();
      const rows = await Promise.all(
        ledger.list(now).map(async (a) => {
          const inv = await invStore?.get(a.identity, qs);
          const notAfter = typeof inv?.['notAfter'] === 'number' ? inv['notAfter'] : null;
          return { ...agentView(a), identity: a.identity, online: a.connected > 0, notAfter };
        }),
      );
      // Soonest expiry first; agents without a known certificate last.
      rows.sort(
        (x, y) =>
          (x.notAfter ?? Number.MAX_SAFE_INTEGER) - (y.notAfter ?? Number.MAX_SAFE_INTEGER) ||
          x.identity.localeCompare(y.identity),
      );
      return {
        now,
        revision: siem.hub.revision,
        online: rows.filter((r) => r.online).length,
        total: rows.length,
        agents: rows.slice(0, MAX_LIST),
      };
    },
    async decisions(): Promise<View> {
      await ledger.refresh();
      const now = siem.now();
      // Newest decisions first; the agents furthest behind first (the ones an analyst looks for).
      const active = engine.active().sort((a, b) => b.revision - a.revision || b.createdAt - a.createdAt);
      const pending = engine.pending().sort((a, b) => b.createdAt - a.createdAt);
      const agents = ledger.list(now).sort((a, b) => b.behind - a.behind || b.lagMs - a.lagMs);
      const applied = (revision: number): number =>
        agents.filter((a) => a.acked !== null && a.acked >= revision).length;
      return {
        revision: siem.hub.revision,
        published: ledger.revision,
        active: active.slice(0, MAX_LIST).map((d) => ({
          ...decisionView(d),
          appliedBy: applied(d.revision),
          agentsTotal: agents.length,
        })),
        activeTotal: active.length,
        pending: pending.slice(0, MAX_LIST),
        pendingTotal: pending.length,
        agents: agents.slice(0, MAX_LIST).map(agentView),
        agentsTotal: agents.length,
      };
    },
    quarantine(by: string, req: ManualDecisionRequest) {
      const scope = { type: req.scope.type, value: req.scope.value } as DecisionScope;
      return act(
        by,
        'siem.decision.create',
        `quarantine ${scope.type} ${String(scope.value).slice(0, 200)} for ${Math.round(req.ttlMs / 1000)} s: ${req.reason.slice(0, 200)}`,
        () =>
          siem.hub.change((e, t) =>
            e.createManual({ scope, action: req.action, ttlMs: req.ttlMs, reason: req.reason }, t),
          ),
        (d) => ({ ...decisionView(d), status: 'created' }),
      );
    },
    approve(by: string, id: string) {
      return act(
        by,
        'siem.decision.approve',
        `approve pending ${id}`,
        () => siem.hub.change((e, t) => e.approve(id, t)),
        (d) => ({ ...decisionView(d), status: 'approved' }),
      );
    },
    lift(by: string, id: string, req: LiftRequest = {}) {
      return act(
        by,
        'siem.decision.lift',
        `lift ${id}${req.reason !== undefined ? `: ${req.reason.slice(0, 200)}` : ''}`,
        () => siem.hub.change((e) => e.lift(id)),
        (d) => ({ ...decisionView(d), status: 'lifted', revision: siem.hub.revision }),
      );
    },
    read(r: ReadRecord): void {
      void siem.audit({
        action: `siem.read.${r.page}`,
        principal: { id: r.user, via: 'session' },
        ip: r.ip,
        ok: true,
        message: r.what,
      });
    },
    async graph(): Promise<View> {
      const since = siem.now() - GRAPH_WINDOW_MS;
      const list = [...edges.values()]
        .filter((e) => e.last >= since)
        .sort((a, b) => b.count - a.count)
        .slice(0, GRAPH_EDGES)
        .map(({ from, to, count, denied }) => ({ from, to, count, denied }));
      const addresses = new Set<string>();
      const ids = new Set<string>();
      for (const e of [...edges.values()].filter((x) => x.last >= since))
        if (e.address) addresses.add(e.from);
      for (const e of list) {
        ids.add(e.from);
        ids.add(e.to);
      }
      const qs = quarantined();
      const inv = await inventory();
      return {
        nodes: await Promise.all(
          [...ids].map(async (id) => {
            if (addresses.has(id))
              return { id, kind: 'address', status: qs.has({ ip: id }) ? 'quarantined' : 'refused' };
            const row = await inv?.get(id, qs);
            const status =
              row !== undefined
                ? (row['status'] as string)
                : qs.has({ identity: id })
                  ? 'quarantined'
                  : 'unknown';
            return { id, kind: 'identity', status };
          }),
        ),
        edges: list,
      };
    },
    async charts(range?: ChartRange): Promise<View> {
      if (range !== undefined) {
        // Beyond the 10 minutes in memory: the store counts by event time, per bucket.
        const { spanMs, bucketMs } = STORED_CHART_RANGES[range];
        const until = Math.floor(siem.now() / bucketMs) * bucketMs + bucketMs;
        const since = until - spanMs;
        const q = { since, until, bucketMs };
        const [counts, alertCounts] = await Promise.all([
          siem.store.eventCounts(q),
          siem.store.alertCounts(q),
        ]);
        const filled = (m: Map<number, number>, per = 1): [number, number][] => {
          const out: [number, number][] = [];
          for (let t = since; t < until; t += bucketMs) out.push([t, (m.get(t) ?? 0) / per]);
          return out;
        };
        const byRule = new Map<string, Map<number, number>>();
        for (const c of alertCounts) {
          const m = byRule.get(c.rule) ?? new Map<number, number>();
          m.set(c.bucket, c.count);
          byRule.set(c.rule, m);
        }
        return {
          range,
          bucketMs,
          eventsPerSecond: filled(new Map(counts.map((c) => [c.bucket, c.count])), bucketMs / 1000),
          alertsByRule: [...byRule.entries()].map(([rule, m]) => ({
            rule,
            title: rules.get(rule)?.title ?? rule,
            buckets: filled(m),
          })),
        };
      }
      return {
        bucketMs: BUCKET_MS,
        eventsPerSecond: series(events, BUCKET_MS / 1000),
        alertsByRule: [...alertsByRule.entries()].map(([rule, m]) => ({
          rule,
          title: rules.get(rule)?.title ?? rule,
          buckets: series(m),
        })),
      };
    },
    close() {
      clearInterval(stateTimer);
      offRevoked?.();
      offEvents();
      offAlerts();
      alertFns.clear();
      stateFns.clear();
    },
  };
}
