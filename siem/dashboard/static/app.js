// The analysts' dashboard. Everything that comes from the SIEM is rendered with textContent or
// attributes set through the DOM API, never parsed as HTML: event fields are attacker-written.
const $main = document.getElementById('main');
const $nav = document.getElementById('nav');
const $who = document.getElementById('who');
const $status = document.getElementById('status');
let me = null;
let feed = null;
/** The latest live decision state from the stream: revision and each agent's acknowledgement. */
let liveState = null;
const liveAlerts = [];
/** Called when the live state changes, by the page showing it (decisions, an alert's detail). */
let onState = null;

const SEVERITIES = ['critical', 'high', 'medium', 'low', 'informational'];
const DURATIONS = [
  ['15 minutes', 900],
  ['1 hour', 3600],
  ['4 hours', 14_400],
  ['24 hours', 86_400],
  ['7 days', 604_800],
];

/** Builds an element: h('td', {class: 'x'}, 'text', child, ...). Strings become text nodes. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

/** Appends children, skipping the absent ones (null, undefined, false): never the text "null". */
function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, String(v));
  }
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** Replaces the page's content (absent children skipped). */
function show(...children) {
  $main.replaceChildren();
  append($main, children);
}

function say(text, isError = false) {
  $status.textContent = text;
  $status.className = isError ? 'error' : 'muted';
}

async function api(path, opts = {}) {
  const headers = { accept: 'application/json' };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (opts.method && opts.method !== 'GET' && me) headers['x-csrf-token'] = me.csrf;
  const res = await fetch(path, {
    method: opts.method ?? 'GET',
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    credentials: 'same-origin',
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(`${json.code ?? res.status}: ${json.message ?? 'request failed'}`);
    err.code = json.code;
    throw err;
  }
  return json;
}

// ---------- formatting ----------
const text = (v) =>
  v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
const exact = (ms) =>
  new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');

/** A duration for people: "45 s", "14 min", "23 h 55 min", "6 d 23 h". */
function human(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const hrs = Math.floor(m / 60);
  if (hrs < 24) return m % 60 ? `${hrs} h ${m % 60} min` : `${hrs} h`;
  const d = Math.floor(hrs / 24);
  return hrs % 24 ? `${d} d ${hrs % 24} h` : `${d} d`;
}

/** A relative time ("3 min ago", "in 23 h") with the exact time on hover. */
function when(ms) {
  if (typeof ms !== 'number') return h('span', { class: 'muted' }, '—');
  const d = ms - Date.now();
  const label = Math.abs(d) < 5000 ? 'just now' : d < 0 ? `${human(-d)} ago` : `in ${human(d)}`;
  return h('time', { datetime: new Date(ms).toISOString(), title: exact(ms) }, label);
}

const shortId = (id) => text(id).slice(0, 8);
const canAct = () => me && (me.role === 'analyst' || me.role === 'admin');
const entityHref = (id) => `#/entity?id=${encodeURIComponent(id)}`;
function entityLink(id, label) {
  const v = text(id);
  if (!v) return h('span', { class: 'muted' }, '—');
  return h('a', { href: entityHref(v), class: 'entity' }, label ?? v.replace(/^spiffe:\/\/[^/]+\//, ''));
}
/** An identity shown short (kind/name) with the full SPIFFE ID on hover. */
function identityLink(id) {
  const a = entityLink(id);
  a.title = text(id);
  return a;
}
const sevBadge = (sev) => h('span', { class: `sev sev-${text(sev) || 'unknown'}` }, text(sev) || 'unknown');
const statusBadge = (status) =>
  h('span', { class: `badge status-${text(status) || 'unknown'}` }, text(status) || 'unknown');

/** A table; with no rows, one row that says what would appear. */
function table(headers, rows, label, emptyText) {
  const body = h('tbody', {}, rows);
  if (rows.length === 0 && emptyText)
    body.append(h('tr', { class: 'empty' }, h('td', { colspan: headers.length }, emptyText)));
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { 'aria-label': label },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          headers.map((x) => h('th', { scope: 'col' }, x)),
        ),
      ),
      body,
    ),
  );
}

// ---------- dialogs ----------
/** A modal dialog; resolves with the form's values on confirm, or null on cancel. */
function dialog(title, fields, confirmLabel, summary) {
  return new Promise((resolve) => {
    const form = h('form', { method: 'dialog', class: 'dialog-form' });
    const dlg = h('dialog', { 'aria-label': title, id: 'dialog' }, form);
    append(form, [
      h('h2', {}, title),
      fields,
      summary ? h('div', { class: 'summary', id: 'dialog-summary' }, summary) : null,
    ]);
    const cancel = h('button', { type: 'button', id: 'dialog-cancel' }, 'Cancel');
    const ok = h('button', { type: 'submit', class: 'danger', id: 'dialog-confirm' }, confirmLabel);
    form.append(h('div', { class: 'buttons' }, cancel, ok));
    const done = (v) => {
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    cancel.addEventListener('click', () => done(null));
    dlg.addEventListener('cancel', () => done(null));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      done(Object.fromEntries([...form.elements].filter((el) => el.name).map((el) => [el.name, el.value])));
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}

const durationSelect = (id, dflt = 3600) =>
  h(
    'select',
    { id, name: 'ttlSeconds' },
    DURATIONS.map(([label, s]) => h('option', { value: s, selected: s === dflt }, label)),
  );

/** What a quarantine of `scope` cuts now, as a readable summary. */
function previewSummary(p) {
  const on = (p.onAgents ?? []).map(
    (a) => `${a.identity.replace(/^spiffe:\/\/[^/]+\//, '')} (${a.connections})`,
  );
  return [
    h(
      'p',
      {},
      h('strong', {}, `${p.liveConnections} live connection${p.liveConnections === 1 ? '' : 's'}`),
      on.length ? ` will be cut, on ${on.join(', ')}.` : ' known to be open now.',
    ),
    h(
      'p',
      {},
      `${p.agentsToApplyTotal} agent${p.agentsToApplyTotal === 1 ? '' : 's'} on the decision stream will apply it`,
      p.agentsToApply?.length
        ? `: ${p.agentsToApply.map((a) => a.replace(/^spiffe:\/\/[^/]+\//, '')).join(', ')}.`
        : '.',
    ),
  ];
}

/** Asks for reason and duration, shows what will be cut, and creates the decision. */
async function quarantineFlow(scopeChoices, presetReason = '') {
  let scope = scopeChoices[0];
  const scopeSelect =
    scopeChoices.length > 1
      ? h(
          'select',
          { id: 'd-scope', name: 'scope' },
          scopeChoices.map((s, i) => h('option', { value: i }, `${s.type}: ${s.value}`)),
        )
      : null;
  const reason = h('input', {
    id: 'd-reason',
    name: 'reason',
    required: true,
    minlength: 3,
    maxlength: 500,
    value: presetReason,
    placeholder: 'why (kept in the audit log)',
  });
  const summary = h('div', {}, h('p', { class: 'muted' }, 'Counting live connections…'));
  const refresh = async () => {
    try {
      const p = await api('/api/decisions/preview', { method: 'POST', body: { scope } });
      summary.replaceChildren(...previewSummary(p));
    } catch (err) {
      summary.replaceChildren(h('p', { class: 'error' }, err.message));
    }
  };
  if (scopeSelect)
    scopeSelect.addEventListener('change', () => {
      scope = scopeChoices[Number(scopeSelect.value)];
      void refresh();
    });
  void refresh();
  const values = await dialog(
    `Quarantine ${scope.type === 'identity' ? 'an identity' : `a ${scope.type}`}`,
    [
      scopeSelect
        ? h('label', { for: 'd-scope' }, 'Scope', scopeSelect)
        : h('p', {}, h('code', {}, `${scope.type}: ${scope.value}`)),
      h('label', { for: 'd-reason' }, 'Reason', reason),
      h('label', { for: 'd-ttl' }, 'For', durationSelect('d-ttl')),
    ],
    'Quarantine',
    summary,
  );
  if (!values) return null;
  try {
    const dec = await api('/api/decisions', {
      method: 'POST',
      body: { scope, action: 'quarantine', ttlSeconds: Number(values.ttlSeconds), reason: values.reason },
    });
    say(
      `quarantined ${scope.type} ${scope.value}: decision ${shortId(dec.id)} at revision ${text(dec.revision)}`,
    );
    return dec;
  } catch (err) {
    say(err.message, true);
    return null;
  }
}

async function liftFlow(d) {
  const reason = h('input', { id: 'l-reason', name: 'reason', required: true, minlength: 3, maxlength: 500 });
  const values = await dialog(
    'Lift a quarantine',
    [
      h('p', {}, h('code', {}, `${text(d.scope?.type)}: ${text(d.scope?.value)}`), ` — ${text(d.reason)}`),
      h('label', { for: 'l-reason' }, 'Reason', reason),
    ],
    'Lift',
    h('p', {}, 'Every agent lets this scope connect again once it applies the new revision.'),
  );
  if (!values) return false;
  try {
    const r = await api(`/api/decisions/${encodeURIComponent(d.id)}/lift`, {
      method: 'POST',
      body: { reason: values.reason },
    });
    say(`lifted ${shortId(d.id)} at revision ${text(r.revision)}`);
    return true;
  } catch (err) {
    say(err.message, true);
    return false;
  }
}

// ---------- login ----------
function renderLogin(message) {
  $nav.hidden = true;
  $who.textContent = '';
  const name = h('input', { id: 'login-name', name: 'name', autocomplete: 'username', required: true });
  const password = h('input', {
    id: 'login-password',
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const form = h(
    'form',
    { class: 'panel login', 'aria-label': 'Log in' },
    h('h2', {}, 'Log in'),
    h('label', { for: 'login-name' }, 'User name', name),
    h('label', { for: 'login-password' }, 'Password', password),
    h('button', { type: 'submit', id: 'login-submit' }, 'Log in'),
    message ? h('p', { class: 'error', role: 'alert' }, message) : null,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      me = await api('/api/login', { method: 'POST', body: { name: name.value, password: password.value } });
      location.hash = '#/alerts';
      start();
    } catch (err) {
      renderLogin(err.message);
    }
  });
  show(form);
  name.focus();
}

// ---------- alerts ----------
const alertHref = (a) => `#/alert?id=${encodeURIComponent(a.id)}&t=${encodeURIComponent(a.time)}`;

function alertEntityCell(a) {
  const v = text(a.entity);
  if (!v) return h('span', { class: 'muted' }, '—');
  const link = entityLink(v, a.entityKind === 'identity' ? undefined : v);
  link.title = a.entityIdentity && a.entityIdentity !== v ? `${v} (${a.entityIdentity})` : v;
  return [
    a.entityKind && a.entityKind !== 'identity' ? h('span', { class: 'kind' }, `${a.entityKind} `) : null,
    link,
    a.entityIdentity && a.entityIdentity !== v ? [' · ', identityLink(a.entityIdentity)] : null,
  ];
}

/** One row per alert, or per group of repeats (same rule and entity) with their count. */
function alertRow(a, isNew, repeats) {
  const n = repeats ? repeats.length : 1;
  return h(
    'tr',
    {
      class: isNew ? 'new alert-row' : 'alert-row',
      'data-rule': text(a.ruleId),
      'data-alert': text(a.id),
      'data-severity': text(a.severity),
    },
    h('td', { class: 'nowrap' }, when(a.time)),
    h('td', {}, sevBadge(a.severity)),
    h(
      'td',
      {},
      h('a', { href: alertHref(a) }, text(a.title)),
      h('div', { class: 'rule-id' }, text(a.ruleId)),
    ),
    h('td', { class: 'entity-cell' }, alertEntityCell(a)),
    h('td', { class: 'triage' }, triageCell(a)),
    h('td', { class: 'num' }, text(a.count ?? (a.events ?? []).length)),
    h(
      'td',
      { class: 'num' },
      n > 1 ? h('span', { class: 'repeats', title: `first ${exact(repeats[n - 1].time)}` }, `×${n}`) : '1',
    ),
  );
}

const ALERT_HEADERS = ['When', 'Severity', 'Rule', 'Entity', 'Status', 'Events', 'Repeats'];
const TRIAGE = ['new', 'acknowledged', 'closed'];
const triageOf = (a) => text(a.status) || 'new';

/** An alert's triage: its state, and who set it when. */
function triageCell(a) {
  const st = triageOf(a);
  return [
    statusBadge(st),
    a.statusBy ? h('span', { class: 'muted triage-by' }, ` by ${text(a.statusBy)} `, when(a.statusAt)) : null,
  ];
}

function groupAlerts(list) {
  const groups = new Map();
  for (const a of list) {
    const k = `${a.ruleId}\u001f${a.entity}`;
    const g = groups.get(k);
    if (g) g.push(a);
    else groups.set(k, [a]);
  }
  return [...groups.values()];
}

function alertRows(list, grouped, isNew) {
  return grouped
    ? groupAlerts(list).map((g) => alertRow(g[0], isNew(g[0]), g))
    : list.map((a) => alertRow(a, isNew(a)));
}

const RANGES = [
  ['15m', 'last 15 minutes', 900_000],
  ['1h', 'last hour', 3_600_000],
  ['24h', 'last 24 hours', 86_400_000],
  ['7d', 'last 7 days', 604_800_000],
  ['', 'any time', 0],
];

async function renderAlerts(params) {
  const sev = params.get('severity') ?? '';
  const rule = params.get('rule') ?? '';
  const entity = params.get('entity') ?? '';
  const triage = params.get('status') ?? '';
  const range = params.get('range') ?? '';
  const grouped = params.get('group') !== 'no';
  const q = new URLSearchParams({ limit: '200' });
  if (sev) q.set('severity', sev);
  if (rule) q.set('rule', rule);
  if (entity) q.set('entity', entity);
  if (triage) q.set('status', triage);
  const span = RANGES.find((r) => r[0] === range)?.[2] ?? 0;
  if (span) q.set('since', String(Date.now() - span));
  const { items } = await api(`/api/alerts?${q}`);
  const ids = new Set(items.map((a) => a.id));
  const matches = (a) =>
    (!sev || sev.split(',').includes(a.severity)) &&
    (!rule || a.ruleId === rule) &&
    (!entity || a.entity === entity || a.entityIdentity === entity) &&
    (!triage || triage.split(',').includes(triageOf(a))) &&
    (!span || a.time >= Date.now() - span);
  const fresh = liveAlerts.filter((a) => !ids.has(a.id) && matches(a));
  const freshIds = new Set(fresh.map((a) => a.id));
  const all = [...fresh, ...items];
  const rules = [...new Map(all.map((a) => [a.ruleId, a.title])).entries()];

  const sevSel = h(
    'select',
    { id: 'f-severity' },
    h('option', { value: '' }, 'any'),
    SEVERITIES.map((s) => h('option', { value: s, selected: s === sev }, s)),
    h('option', { value: 'critical,high', selected: sev === 'critical,high' }, 'high and above'),
  );
  const ruleSel = h(
    'select',
    { id: 'f-rule' },
    h('option', { value: '' }, 'any'),
    rules.map(([id, title]) => h('option', { value: id, selected: id === rule }, `${title} (${id})`)),
    rule && !rules.some(([id]) => id === rule) ? h('option', { value: rule, selected: true }, rule) : null,
  );
  const entityIn = h('input', {
    id: 'f-entity',
    type: 'search',
    value: entity,
    placeholder: 'identity, address, serial',
  });
  const triageSel = h(
    'select',
    { id: 'f-status' },
    h('option', { value: '' }, 'any'),
    TRIAGE.map((v) => h('option', { value: v, selected: v === triage }, v)),
    h('option', { value: 'new,acknowledged', selected: triage === 'new,acknowledged' }, 'open'),
  );
  const rangeSel = h(
    'select',
    { id: 'f-range' },
    RANGES.map(([v, label]) => h('option', { value: v, selected: v === range }, label)),
  );
  const groupBox = h('input', { id: 'f-group', type: 'checkbox', checked: grouped });
  const form = h(
    'form',
    { class: 'panel filters', 'aria-label': 'Filter alerts' },
    h('label', { for: 'f-severity' }, 'Severity', sevSel),
    h('label', { for: 'f-rule' }, 'Rule', ruleSel),
    h('label', { for: 'f-entity' }, 'Entity', entityIn),
    h('label', { for: 'f-status' }, 'Status', triageSel),
    h('label', { for: 'f-range' }, 'Time', rangeSel),
    h('label', { for: 'f-group', class: 'check' }, groupBox, 'Group repeats'),
    h('button', { type: 'submit' }, 'Filter'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    if (sevSel.value) p.set('severity', sevSel.value);
    if (ruleSel.value) p.set('rule', ruleSel.value);
    if (entityIn.value) p.set('entity', entityIn.value.trim());
    if (triageSel.value) p.set('status', triageSel.value);
    if (rangeSel.value) p.set('range', rangeSel.value);
    if (!groupBox.checked) p.set('group', 'no');
    location.hash = `#/alerts?${p}`;
  });
  const rows = alertRows(all, grouped, (a) => freshIds.has(a.id));
  const t = table(
    ALERT_HEADERS,
    rows,
    'Alerts',
    'No alerts match. Alerts appear here as the rules raise them from the events agents and the CA report.',
  );
  t.querySelector('tbody').id = 'alert-body';
  t.querySelector('table').setAttribute('aria-live', 'polite');
  show(
    h('h2', {}, 'Alerts'),
    h(
      'p',
      { class: 'muted' },
      `${all.length} alert${all.length === 1 ? '' : 's'}; new ones appear at the top as they are raised.`,
    ),
    form,
    t,
  );
  // Live alerts that match the filters go on top (ungrouped until the next render).
  onAlert = (a) => {
    if (!matches(a)) return;
    const body = document.getElementById('alert-body');
    if (!body) return;
    body.querySelector('tr.empty')?.remove();
    body.prepend(alertRow(a, true));
    while (body.children.length > 300) body.lastChild.remove();
  };
}
let onAlert = null;

// ---------- alert detail ----------
function eventRows(events) {
  return events.map((e) =>
    h(
      'tr',
      {},
      h('td', { class: 'nowrap' }, when(e['@timestamp'])),
      h('td', {}, h('code', {}, text(e['event.action']))),
      h('td', {}, h('span', { class: `outcome-${text(e['event.outcome'])}` }, text(e['event.outcome']))),
      h(
        'td',
        {},
        e['source.identity']
          ? identityLink(e['source.identity'])
          : e['source.ip']
            ? entityLink(e['source.ip'], e['source.ip'])
            : '—',
        e['source.identity'] && e['source.ip']
          ? h('span', { class: 'muted' }, ` from ${e['source.ip']}`)
          : null,
      ),
      h(
        'td',
        {},
        e['destination.identity'] ? identityLink(e['destination.identity']) : text(e['destination.ip']),
      ),
      h('td', {}, e['observer.identity'] ? identityLink(e['observer.identity']) : ''),
      h('td', { class: 'reason' }, text(e['event.reason'] ?? e['error.code'] ?? e['attestation.reason'])),
    ),
  );
}
const EVENT_HEADERS = ['When', 'Action', 'Outcome', 'Source', 'Destination', 'Reported by', 'Reason'];

function decisionState(d) {
  if (d.active) return 'active';
  if (d.removedAt && d.removedAt < d.expiresAt) return 'lifted';
  return 'expired';
}

/** Acknowledges or closes an alert, then shows it again with its new status. */
function triageButton(a, status, label) {
  const b = h('button', { type: 'button', class: 'triage-action', 'data-status': status }, label);
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      await api('/api/alert/status', { method: 'POST', body: { id: a.id, time: a.time, status } });
      say(`Alert ${status}.`);
      await route();
    } catch (err) {
      b.disabled = false;
      say(err.message, true);
    }
  });
  return b;
}

async function renderAlert(params) {
  const a = await api(
    `/api/alert?id=${encodeURIComponent(params.get('id') ?? '')}&time=${encodeURIComponent(params.get('t') ?? '')}`,
  );
  const decisions = (a.decisions ?? []).map((d) => {
    const applied = (d.propagation ?? []).filter((p) => p.applied);
    return h(
      'section',
      { class: 'panel decision', 'data-decision': text(d.id) },
      h(
        'h4',
        {},
        `${text(d.action)} ${text(d.scope?.type)} `,
        h('code', {}, text(d.scope?.value)),
        ' ',
        statusBadge(decisionState(d)),
      ),
      h(
        'p',
        {},
        `Decision ${shortId(d.id)}, revision ${text(d.revision)}, created `,
        when(d.createdAt),
        d.active ? [', expires ', when(d.expiresAt)] : d.removedAt ? [', removed ', when(d.removedAt)] : null,
        `. ${text(d.reason)}`,
      ),
      h('p', {}, `Applied by ${applied.length} of ${(d.propagation ?? []).length} agents.`),
      table(
        ['Agent', 'Applied', 'When'],
        (d.propagation ?? []).map((p) =>
          h(
            'tr',
            {},
            h('td', {}, identityLink(p.identity)),
            h('td', {}, p.applied ? 'yes' : 'not yet'),
            h('td', {}, p.at ? when(p.at) : p.applied ? 'earlier' : '—'),
          ),
        ),
        'Propagation',
        'No agent follows the decision stream.',
      ),
    );
  });
  const triageButtons = canAct()
    ? [
        triageOf(a) === 'new' ? triageButton(a, 'acknowledged', 'Acknowledge') : null,
        triageOf(a) !== 'closed' ? triageButton(a, 'closed', 'Close') : null,
      ]
    : null;
  show(
    h('p', {}, h('a', { href: '#/alerts' }, '← Alerts')),
    h('h2', {}, sevBadge(a.severity), ' ', text(a.title)),
    h('p', { id: 'alert-status', class: 'triage' }, 'Status: ', triageCell(a), ' ', triageButtons),
    h(
      'p',
      {},
      'Rule ',
      h('code', { id: 'alert-rule' }, text(a.ruleId)),
      ` (${text(a.type)}), raised `,
      when(a.time),
      a.time > a.windowStart ? ` over ${human(a.time - a.windowStart)}` : '',
      '; about ',
      alertEntityCell(a),
      '.',
    ),
    a.rule?.description
      ? h('p', { class: 'description', id: 'rule-description' }, text(a.rule.description))
      : null,
    h('h3', {}, 'Decision'),
    decisions.length
      ? h('div', { id: 'alert-decisions' }, decisions)
      : h(
          'p',
          { id: 'alert-decisions', class: 'muted' },
          (a.pending ?? []).length
            ? `Waiting for approval (blast-radius cap): ${a.pending.map((p) => `${p.scope.type} ${p.scope.value}`).join(', ')}.`
            : 'This alert caused no decision (no playbook for its rule, an allowlist, or a cap).',
        ),
    h(
      'h3',
      {},
      `Evidence (${(a.evidence ?? []).length}${a.evidenceTotal > (a.evidence ?? []).length ? ` of ${a.evidenceTotal}` : ''})`,
    ),
    table(
      EVENT_HEADERS,
      eventRows(a.evidence ?? []),
      'Evidence',
      'The events behind this alert are no longer stored (retention).',
    ),
  );
}

// ---------- inventory ----------
async function renderInventory(params) {
  const q = params.get('q') ?? '';
  const status = params.get('status') ?? '';
  const kind = params.get('kind') ?? '';
  const offset = Number(params.get('offset') ?? 0);
  const limit = 50;
  const qs = new URLSearchParams({ q, status, kind, limit: String(limit), offset: String(offset) });
  const data = await api(`/api/inventory?${qs}`);
  const search = h('input', { id: 'inv-q', type: 'search', value: q, placeholder: 'identity, serial…' });
  const st = h(
    'select',
    { id: 'inv-status' },
    ['', 'healthy', 'quarantined', 'revoked'].map((s) =>
      h('option', { value: s, selected: s === status }, s || 'any'),
    ),
  );
  const kd = h(
    'select',
    { id: 'inv-kind' },
    ['', 'node', 'device', 'svc'].map((s) => h('option', { value: s, selected: s === kind }, s || 'any')),
  );
  const go = (off) => {
    location.hash = `#/inventory?${new URLSearchParams({ q: search.value, status: st.value, kind: kd.value, offset: String(off) })}`;
  };
  const form = h(
    'form',
    { class: 'panel filters', 'aria-label': 'Filter inventory' },
    h('label', { for: 'inv-q' }, 'Search', search),
    h('label', { for: 'inv-status' }, 'Status', st),
    h('label', { for: 'inv-kind' }, 'Kind', kd),
    h('button', { type: 'submit' }, 'Filter'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    go(0);
  });
  const rows = data.items.map((d) =>
    h(
      'tr',
      { 'data-identity': text(d.identity) },
      h('td', {}, identityLink(d.identity)),
      h('td', {}, text(d.kind)),
      h('td', {}, text(d.method) || h('span', { class: 'muted' }, '—')),
      h('td', {}, text(d.verdict) || h('span', { class: 'muted' }, '—')),
      h(
        'td',
        {},
        d.serial
          ? h('code', { class: 'serial', title: d.serial }, d.serial)
          : h('span', { class: 'muted' }, '—'),
      ),
      h('td', { class: 'nowrap' }, when(d.notAfter)),
      h('td', { class: 'nowrap' }, when(d.lastSeen)),
      h('td', { class: 'status' }, statusBadge(d.status)),
    ),
  );
  const filtered = q || status || kind;
  show(
    h('h2', {}, `Inventory (${data.total})`),
    form,
    table(
      ['Identity', 'Kind', 'Attestation', 'Last verdict', 'Serial', 'Expires', 'Last seen', 'Status'],
      rows,
      'Inventory',
      filtered
        ? 'Nothing matches these filters.'
        : 'No identities yet: nodes and devices appear here when the CA enrolls them or they report.',
    ),
    h(
      'div',
      { class: 'pager' },
      h(
        'button',
        { type: 'button', disabled: offset === 0, onclick: () => go(Math.max(0, offset - limit)) },
        'Previous',
      ),
      h(
        'span',
        { class: 'muted' },
        data.total ? `${offset + 1}–${Math.min(offset + limit, data.total)} of ${data.total}` : '',
      ),
      h(
        'button',
        { type: 'button', disabled: offset + limit >= data.total, onclick: () => go(offset + limit) },
        'Next',
      ),
    ),
  );
}

// ---------- entity ----------
function decisionRows(list, onLift) {
  return list.map((x) =>
    h(
      'tr',
      { 'data-decision': text(x.id) },
      h('td', {}, h('code', { title: text(x.id) }, shortId(x.id))),
      h(
        'td',
        {},
        h('span', { class: 'kind' }, `${text(x.scope?.type)} `),
        h('code', {}, text(x.scope?.value)),
      ),
      h('td', {}, text(x.action)),
      h('td', { class: 'nowrap' }, when(x.expiresAt)),
      h('td', { class: 'reason' }, text(x.reason)),
      typeof x.appliedBy === 'number'
        ? h('td', { class: 'num applied' }, `${x.appliedBy} of ${x.agentsTotal}`)
        : null,
      h(
        'td',
        {},
        canAct() && onLift
          ? h('button', { type: 'button', class: 'lift', onclick: () => onLift(x) }, 'Lift…')
          : null,
      ),
    ),
  );
}

async function renderEntity(params) {
  const id = params.get('id') ?? '';
  const d = await api(`/api/entity?id=${encodeURIComponent(id)}`);
  const reload = () => renderEntity(params);
  const lift = async (x) => {
    if (await liftFlow(x)) await reload();
  };
  const choices = [];
  if (d.type === 'identity') choices.push({ type: 'identity', value: d.identity });
  if (d.serial) choices.push({ type: 'serial', value: d.serial });
  if (d.spki) choices.push({ type: 'spki', value: d.spki });
  if (d.ip) choices.push({ type: 'ip', value: d.ip });
  if (d.type !== 'identity' && choices.length === 0) choices.push({ type: d.type, value: d.identity });
  const att = d.attestation;
  show(
    h(
      'h2',
      {},
      d.type === 'identity' ? `${text(d.kind) || 'Entity'} ` : `${d.type} `,
      h('span', { id: 'entity-id' }, text(d.identity)),
      ' ',
      h('span', { id: 'entity-status' }, statusBadge(d.status)),
    ),
    h(
      'dl',
      { class: 'facts' },
      [
        ['Kind', text(d.kind)],
        ['Serial', d.serial ? h('code', {}, d.serial) : null],
        ['Public key (SHA-256)', d.spki ? h('code', { class: 'serial' }, d.spki) : null],
        ['Last address', d.ip ? entityLink(d.ip, d.ip) : null],
        ['Last seen', typeof d.lastSeen === 'number' ? when(d.lastSeen) : null],
      ]
        .filter(([, v]) => v)
        .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
    ),
    canAct() && d.status !== 'revoked'
      ? h(
          'button',
          {
            type: 'button',
            class: 'danger',
            id: 'quarantine-entity',
            onclick: async () => {
              if (await quarantineFlow(choices)) await reload();
            },
          },
          'Quarantine…',
        )
      : null,
    h('h3', {}, 'Decisions covering it'),
    table(
      ['Id', 'Scope', 'Action', 'Expires', 'Reason', ''],
      decisionRows(d.decisions ?? [], lift),
      'Decisions',
      'No active decision covers this entity (by identity, node, serial, key, address or range).',
    ),
    d.type === 'identity'
      ? [
          h('h3', {}, 'Attestation'),
          att
            ? h(
                'div',
                { class: 'panel', id: 'attestation' },
                h(
                  'p',
                  {},
                  h('strong', {}, text(att.method)),
                  ` · ${text(att.action)} `,
                  when(att.at),
                  ` · evidence ${human(att.ageMs)} old · verdict `,
                  statusBadge(att.verdict === 'ok' ? 'passed' : 'failed'),
                  att.reason ? ` (${att.reason})` : null,
                ),
                (att.checks ?? []).length
                  ? h(
                      'ul',
                      { class: 'checks' },
                      att.checks.map((c) =>
                        h(
                          'li',
                          {
                            class: `check-${text(c.verdict).replace(/ /g, '-')}`,
                            'data-check': text(c.check),
                          },
                          h('span', { class: 'check-line' }, `${text(c.verdict)}: ${text(c.check)}`),
                          c.reason ? ` (${text(c.reason)})` : null,
                          c.source === 'inferred'
                            ? h('span', { class: 'muted' }, ' · inferred from the outcome')
                            : null,
                          (c.values ?? []).length
                            ? h(
                                'dl',
                                { class: 'check-values' },
                                c.values.map(([k, v]) => [
                                  h('dt', {}, text(k)),
                                  h('dd', {}, h('code', {}, text(v))),
                                ]),
                              )
                            : null,
                        ),
                      ),
                    )
                  : null,
              )
            : h('p', { class: 'muted' }, 'No attestation reported by the CA for this identity yet.'),
          h('h3', {}, 'Certificates'),
          table(
            ['Serial', 'Issued', 'Expires', 'State'],
            (d.certificates ?? []).map((c) =>
              h(
                'tr',
                {},
                h('td', {}, h('code', { class: 'serial' }, text(c.serial))),
                h('td', { class: 'nowrap' }, `${text(c.how)} `, when(c.issuedAt)),
                h('td', { class: 'nowrap' }, when(c.notAfter)),
                h('td', {}, statusBadge(c.state)),
              ),
            ),
            'Certificates',
            'No certificate issued to this identity is in the stored events.',
          ),
        ]
      : null,
    h('h3', {}, 'Alerts'),
    table(
      ALERT_HEADERS,
      (d.alerts ?? []).map((a) => alertRow(a, false)),
      'Alerts of this entity',
      'No alert about this entity.',
    ),
    h('h3', {}, 'Peers'),
    h(
      'p',
      { class: 'peers' },
      (d.peers ?? []).length
        ? (d.peers ?? []).flatMap((p, i) => [i ? ', ' : '', identityLink(p)])
        : 'No peer seen in its events.',
    ),
    h('h3', {}, 'Timeline'),
    timelineSection(d),
  );
}

const GROUP_HEADERS = ['', 'Events', 'Action', 'Outcome', 'Cause', 'First', 'Last', 'Sources', 'Reported by'];

/** Up to five names (entity links), and how many more. */
function someOf(names, total, link) {
  const list = names ?? [];
  if (list.length === 0) return '—';
  const more = (total ?? list.length) - list.length;
  return [list.flatMap((n, i) => [i ? ', ' : '', link(n)]), more > 0 ? ` and ${more} more` : null];
}

/** The entity's events grouped by action, outcome and cause; each group expands to its events. */
function groupedTimeline(d) {
  const events = d.events ?? [];
  const g = d.timelineGroups ?? { groups: [], otherEvents: 0 };
  const rows = [];
  (g.groups ?? []).forEach((grp, i) => {
    const list = (grp.events ?? []).map((k) => events[k]).filter(Boolean);
    const label = `${text(grp.action)} ${text(grp.outcome)}${grp.cause ? ` (${text(grp.cause)})` : ''}`;
    const inner = h(
      'tr',
      { class: 'group-events', id: `tl-group-${i}`, hidden: true },
      h(
        'td',
        { colspan: GROUP_HEADERS.length },
        table(EVENT_HEADERS, eventRows(list), `Events: ${label}`, 'No event.'),
      ),
    );
    const toggle = h(
      'button',
      {
        type: 'button',
        class: 'expand',
        'aria-expanded': 'false',
        'aria-controls': `tl-group-${i}`,
        'aria-label': `Show the ${grp.count} event${grp.count === 1 ? '' : 's'} of ${label}`,
      },
      '▸',
    );
    toggle.addEventListener('click', () => {
      const open = inner.hidden;
      inner.hidden = !open;
      toggle.setAttribute('aria-expanded', String(open));
      toggle.textContent = open ? '▾' : '▸';
    });
    rows.push(
      h(
        'tr',
        { class: 'timeline-group', 'data-action': text(grp.action) },
        h('td', {}, toggle),
        h('td', { class: 'num' }, text(grp.count)),
        h('td', {}, h('code', {}, text(grp.action))),
        h('td', {}, h('span', { class: `outcome-${text(grp.outcome)}` }, text(grp.outcome) || '—')),
        h('td', { class: 'reason' }, grp.cause ? text(grp.cause) : '—'),
        h('td', { class: 'nowrap' }, when(grp.first)),
        h('td', { class: 'nowrap' }, when(grp.last)),
        h(
          'td',
          {},
          someOf(grp.sources, grp.sourcesTotal, (n) =>
            entityLink(n, n.startsWith('spiffe://') ? undefined : n),
          ),
        ),
        h('td', {}, someOf(grp.reporters, grp.reportersTotal, identityLink)),
      ),
      inner,
    );
  });
  return [
    table(GROUP_HEADERS, rows, 'Timeline by action and cause', 'No events stored for this entity.'),
    g.otherEvents > 0
      ? h('p', { class: 'muted' }, `${g.otherEvents} more events in smaller groups are not listed.`)
      : null,
  ];
}

/** The timeline, grouped (the default) or as one list, newest first. */
function timelineSection(d) {
  const events = d.events ?? [];
  const groups = (d.timelineGroups?.groups ?? []).length;
  const box = h('input', { type: 'checkbox', id: 'tl-grouped', checked: true });
  const body = h('div', { id: 'timeline' });
  const draw = () => {
    body.replaceChildren();
    append(body, [
      box.checked
        ? groupedTimeline(d)
        : table(EVENT_HEADERS, eventRows(events), 'Timeline', 'No events stored for this entity.'),
    ]);
  };
  box.addEventListener('change', draw);
  draw();
  return [
    h(
      'p',
      { class: 'muted', id: 'timeline-summary' },
      `${events.length} event${events.length === 1 ? '' : 's'} (the newest stored) in ${groups} group${groups === 1 ? '' : 's'} by action, outcome and cause. `,
      h('label', { for: 'tl-grouped', class: 'check' }, box, 'Group by action and cause'),
    ),
    body,
  ];
}

// ---------- decisions ----------
// The server sends at most a few hundred of each list (newest first, agents furthest behind first).
function shown(list, total) {
  const n = (list ?? []).length;
  return typeof total === 'number' && total > n ? ` (${n} of ${total})` : '';
}

function agentState(a) {
  if (a.state === 'current') return h('span', { class: 'badge status-current' }, 'current');
  if (a.state === 'applying') return h('span', { class: 'badge status-applying' }, 'applying…');
  return h(
    'span',
    { class: 'badge status-behind' },
    `${a.behind} behind${a.lagMs ? ` for ${human(a.lagMs)}` : ''}`,
  );
}

function decisionTables(d) {
  const reload = () => void refreshDecisions();
  const lift = async (x) => {
    if (await liftFlow(x)) reload();
  };
  const approve = (x) => async () => {
    try {
      await api(`/api/decisions/${encodeURIComponent(x.id)}/approve`, { method: 'POST', body: {} });
      say(`approved ${shortId(x.id)}`);
      reload();
    } catch (err) {
      say(err.message, true);
    }
  };
  const pending = (d.pending ?? []).map((x) =>
    h(
      'tr',
      {},
      h('td', {}, h('code', { title: text(x.id) }, shortId(x.id))),
      h(
        'td',
        {},
        h('span', { class: 'kind' }, `${text(x.scope?.type)} `),
        h('code', {}, text(x.scope?.value)),
      ),
      h('td', { class: 'reason' }, text(x.reason)),
      h(
        'td',
        {},
        canAct() ? h('button', { type: 'button', class: 'approve', onclick: approve(x) }, 'Approve') : null,
      ),
    ),
  );
  const agents = (d.agents ?? []).map((a) =>
    h(
      'tr',
      { 'data-agent': text(a.identity) },
      h('td', {}, identityLink(a.identity)),
      h(
        'td',
        { class: 'num ack-revision' },
        a.revision === null || a.revision === undefined ? '—' : text(a.revision),
      ),
      h('td', { class: 'agent-state' }, agentState(a)),
      h('td', { class: 'nowrap' }, a.ackedAt ? when(a.ackedAt) : 'never'),
      h('td', {}, a.connected > 0 ? 'online' : h('span', { class: 'muted' }, 'offline')),
    ),
  );
  return [
    h('h3', {}, `Active${shown(d.active, d.activeTotal)}`),
    table(
      ['Id', 'Scope', 'Action', 'Expires', 'Reason', 'Applied by', ''],
      decisionRows(d.active ?? [], lift),
      'Active decisions',
      'No active decision: quarantines appear here when a playbook or an analyst makes one.',
    ),
    h('h3', {}, `Waiting for approval${shown(d.pending, d.pendingTotal)}`),
    table(
      ['Id', 'Scope', 'Reason', ''],
      pending,
      'Pending decisions',
      'Nothing waits for approval (decisions held by the blast-radius cap appear here).',
    ),
    h('h3', {}, `Agents${shown(d.agents, d.agentsTotal)}`),
    table(
      ['Agent', 'Acknowledged revision', 'State', 'Last acknowledgement', 'Stream'],
      agents,
      'Agent acknowledgements',
      'No agent has followed the decision stream yet.',
    ),
  ];
}

async function refreshDecisions() {
  const box = document.getElementById('decision-tables');
  if (!box) return;
  const d = await api('/api/decisions');
  document.getElementById('revision').textContent = text(d.revision);
  box.replaceChildren(...decisionTables(d).flat());
}

async function renderDecisions() {
  const d = await api('/api/decisions');
  const type = h(
    'select',
    { id: 'q-type' },
    ['identity', 'serial', 'spki', 'ip', 'cidr', 'node'].map((t) => h('option', { value: t }, t)),
  );
  const value = h('input', { id: 'q-value', required: true, placeholder: 'spiffe://…, serial, address…' });
  const form = h(
    'form',
    { class: 'panel filters', 'aria-label': 'Manual quarantine' },
    h('label', { for: 'q-type' }, 'Scope', type),
    h('label', { for: 'q-value' }, 'Value', value),
    h('button', { type: 'submit', class: 'danger', id: 'q-submit' }, 'Quarantine…'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (await quarantineFlow([{ type: type.value, value: value.value.trim() }])) {
      value.value = '';
      await refreshDecisions();
    }
  });
  show(
    h('h2', {}, 'Decisions — revision ', h('span', { id: 'revision' }, text(d.revision))),
    canAct() ? form : null,
    h('div', { id: 'decision-tables' }, decisionTables(d)),
  );
  // The stream says when the revision or an acknowledgement changes: redraw the tables.
  onState = () => void refreshDecisions().catch(() => undefined);
}

// ---------- graph ----------
const STATUS_LEGEND = [
  ['healthy', 'healthy'],
  ['quarantined', 'quarantined'],
  ['revoked', 'revoked'],
  ['refused', 'address refused (no identity)'],
  ['unknown', 'not in the inventory'],
];

/** A legend's sample edge, drawn like the graph's (same line class and arrowhead). */
const edgeSwatch = (denied) =>
  svg(
    'svg',
    { class: 'swatch-edge', viewBox: '0 0 30 10', 'aria-hidden': 'true' },
    svg('line', {
      class: denied ? 'edge denied' : 'edge',
      x1: 1,
      y1: 5,
      x2: 22,
      y2: 5,
      'marker-end': denied ? 'url(#arrow-denied)' : 'url(#arrow)',
    }),
  );

async function renderGraph() {
  const g = await api('/api/graph');
  const nodes = g.nodes ?? [];
  const W = 900;
  const H = 560;
  const pos = new Map(
    nodes.map((n, i) => [
      n.id,
      [
        W / 2 + (W / 2.6) * Math.cos((2 * Math.PI * i) / Math.max(1, nodes.length)),
        H / 2 + (H / 2.5) * Math.sin((2 * Math.PI * i) / Math.max(1, nodes.length)),
      ],
    ]),
  );
  const view = svg('svg', {
    viewBox: `0 0 ${W} ${H}`,
    width: '100%',
    role: 'img',
    class: 'graph',
    'aria-label': `Mesh graph of ${nodes.length} entities`,
  });
  // Arrowheads: an edge points from the connecting side to the side it connected to.
  const arrow = (id, cls) =>
    svg(
      'marker',
      {
        id,
        class: cls,
        viewBox: '0 0 10 10',
        refX: 10,
        refY: 5,
        markerWidth: 9,
        markerHeight: 9,
        markerUnits: 'userSpaceOnUse',
        orient: 'auto',
      },
      svg('path', { d: 'M0,0 L10,5 L0,10 z' }),
    );
  view.append(svg('defs', {}, arrow('arrow', 'arrow'), arrow('arrow-denied', 'arrow denied')));
  for (const e of g.edges ?? []) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    if (!a || !b) continue;
    // The line stops short of the target's outline, so the arrowhead is not hidden under it.
    const dx = b[0] - a[0];
    const dy = b[1] - a[1];
    const len = Math.hypot(dx, dy) || 1;
    const gap = 11;
    const line = svg('line', {
      class: e.denied > 0 ? 'edge denied' : 'edge',
      'data-from': e.from,
      'data-to': e.to,
      'marker-end': e.denied > 0 ? 'url(#arrow-denied)' : 'url(#arrow)',
      x1: a[0],
      y1: a[1],
      x2: b[0] - (dx / len) * gap,
      y2: b[1] - (dy / len) * gap,
    });
    line.append(
      svg(
        'title',
        {},
        `${e.from} → ${e.to}: ${e.count} connection${e.count === 1 ? '' : 's'}${e.denied ? `, ${e.denied} refused` : ''}`,
      ),
    );
    view.append(line);
  }
  for (const n of nodes) {
    const [x, y] = pos.get(n.id);
    const link = svg('a', {
      href: entityHref(n.id),
      class: `node-link status-${text(n.status)}`,
      'data-node': n.id,
    });
    const shape =
      n.kind === 'address'
        ? svg('rect', {
            class: 'node',
            x: x - 7,
            y: y - 7,
            width: 14,
            height: 14,
            transform: `rotate(45 ${x} ${y})`,
          })
        : svg('circle', { class: 'node', cx: x, cy: y, r: 8 });
    link.append(shape, svg('title', {}, `${n.id} (${n.status})`));
    const label = text(n.id).replace(/^spiffe:\/\/[^/]+\//, '');
    const left = x < W / 2;
    link.append(
      svg('text', { x: left ? x - 12 : x + 12, y: y + 4, 'text-anchor': left ? 'end' : 'start' }, label),
    );
    view.append(link);
  }
  const legend = h(
    'ul',
    { class: 'legend', 'aria-label': 'Legend' },
    STATUS_LEGEND.map(([s, label]) => h('li', {}, h('span', { class: `swatch status-${s}` }), label)),
    h('li', {}, edgeSwatch(false), 'connection, from the client to the peer it reached'),
    h('li', {}, edgeSwatch(true), 'refused or denied'),
  );
  const list = nodes.map((n) =>
    h('li', {}, entityLink(n.id, n.kind === 'address' ? n.id : undefined), ' ', statusBadge(n.status)),
  );
  show(
    h('h2', {}, 'Who talks to whom (last hour)'),
    nodes.length
      ? [legend, view]
      : h(
          'p',
          { class: 'muted empty-state' },
          'No connections reported in the last hour: the agents report each connection they accept, deny or refuse.',
        ),
    h('h3', {}, 'Entities'),
    h('ul', { class: 'entity-list' }, list),
  );
}

// ---------- charts ----------
/** A bar chart with a labelled value axis, time axis and each value on hover. */
function bars(series, label, unit) {
  const W = 900;
  const H = 140;
  const L = 56; // left margin for the value axis
  const B = 28; // bottom margin for the time axis
  const max = Math.max(1, ...series.map((s) => s[1]));
  const nice = niceMax(max);
  const w = (W - L) / Math.max(1, series.length);
  const view = svg('svg', {
    viewBox: `0 0 ${W} ${H + B}`,
    width: '100%',
    role: 'img',
    'aria-label': label,
  });
  // Counts get whole-number ticks.
  const integral = series.every(([, v]) => Number.isInteger(v));
  const ticks = integral ? Math.min(4, nice) : 4;
  for (let i = 0; i <= ticks; i++) {
    const v = (nice * i) / ticks;
    const y = H - (v / nice) * (H - 10);
    view.append(svg('line', { class: 'grid', x1: L, x2: W, y1: y, y2: y }));
    view.append(svg('text', { class: 'axis', x: L - 6, y: y + 4, 'text-anchor': 'end' }, fmtNum(v)));
  }
  series.forEach(([t, v], i) => {
    const bh = (v / nice) * (H - 10);
    const r = svg('rect', {
      class: 'bar',
      x: L + i * w + 1,
      y: H - bh,
      width: Math.max(1, w - 2),
      height: Math.max(bh, v > 0 ? 1 : 0),
    });
    r.append(svg('title', {}, `${exact(t)}: ${fmtNum(v)} ${unit}`));
    view.append(r);
    if (i % 10 === 0 || i === series.length - 1) {
      const d = new Date(t);
      view.append(
        svg(
          'text',
          {
            class: 'axis',
            x: L + i * w + w / 2,
            y: H + 18,
            'text-anchor': i === series.length - 1 ? 'end' : 'middle',
          },
          `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}:${String(d.getSeconds()).padStart(2, '0')}`,
        ),
      );
    }
  });
  return h(
    'figure',
    { class: 'chart' },
    h(
      'figcaption',
      { class: 'muted' },
      `${unit} (vertical) by local time (horizontal); hover a bar for its value`,
    ),
    view,
  );
}
const fmtNum = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1));
function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 4, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * The chart windows: up to 10 minutes the newest buckets of the SIEM's in-memory counts; the
 * hour and the day counted by the store (by event time), in 1-minute and 30-minute buckets.
 */
const CHART_RANGES = [
  ['1m', 'last minute', 60_000],
  ['5m', 'last 5 minutes', 300_000],
  ['10m', 'last 10 minutes', 600_000],
  ['1h', 'last hour', 3_600_000],
  ['24h', 'last 24 hours', 86_400_000],
];
const STORED_RANGES = new Set(['1h', '24h']);

/** A bucket's length as words: "10 s", "1 min", "30 min". */
const bucketWords = (ms) => (ms < 60_000 ? `${ms / 1000} s` : `${ms / 60_000} min`);

async function renderCharts(params) {
  const range = CHART_RANGES.find((r) => r[0] === params.get('range')) ?? CHART_RANGES[2];
  const c = await api(STORED_RANGES.has(range[0]) ? `/api/charts?range=${range[0]}` : '/api/charts');
  const [, span, spanMs] = range;
  const bucketMs = c.bucketMs || 10_000;
  const per = bucketWords(bucketMs);
  const keep = Math.max(1, Math.round(spanMs / bucketMs));
  const recent = (s) => (s ?? []).slice(-keep);
  const total = (s) => s.reduce((n, [, v]) => n + v, 0);
  const rangeSel = h(
    'select',
    { id: 'chart-range' },
    CHART_RANGES.map(([v, label]) => h('option', { value: v, selected: v === range[0] }, label)),
  );
  rangeSel.addEventListener('change', () => {
    location.hash = `#/charts?range=${rangeSel.value}`;
  });
  const byRule = (c.alertsByRule ?? [])
    .map((r) => ({ ...r, buckets: recent(r.buckets) }))
    .filter((r) => total(r.buckets) > 0)
    .map((r) => [
      h(
        'h4',
        {},
        `${text(r.title)} `,
        h('span', { class: 'rule-id' }, text(r.rule)),
        ` — ${total(r.buckets)} in the ${span}`,
      ),
      bars(r.buckets, `alerts of ${text(r.rule)} per ${per}`, `alerts per ${per}`),
    ]);
  show(
    h(
      'form',
      { class: 'panel filters', 'aria-label': 'Chart range' },
      h('label', { for: 'chart-range' }, 'Time', rangeSel),
    ),
    h(
      'p',
      { class: 'muted', id: 'chart-source' },
      STORED_RANGES.has(range[0])
        ? `Counted by the SIEM's event store by event time, in ${per} buckets.`
        : `Counted in the SIEM's memory as events arrive, in ${per} buckets (it keeps the last 10 minutes).`,
    ),
    h('h2', {}, `Events per second (${span})`),
    bars(recent(c.eventsPerSecond), 'events per second', 'events/s'),
    h('h2', {}, `Alerts by rule (${span})`),
    byRule.length
      ? byRule
      : h(
          'p',
          { class: 'muted empty-state' },
          `No alerts in the ${span}: each rule that raises one gets a chart here.`,
        ),
  );
}

// ---------- fleet ----------
async function renderFleet() {
  const f = await api('/api/fleet');
  const rows = (f.agents ?? []).map((a) =>
    h(
      'tr',
      { 'data-agent': text(a.identity) },
      h('td', {}, identityLink(a.identity)),
      h('td', {}, statusBadge(a.online ? 'online' : 'offline')),
      h('td', { class: 'num' }, a.revision === null ? '—' : text(a.revision)),
      h('td', {}, a.behind > 0 ? `${a.behind} behind for ${human(a.lagMs)}` : 'current'),
      h('td', { class: 'nowrap' }, when(a.lastSeen)),
      h(
        'td',
        { class: 'nowrap' },
        typeof a.notAfter === 'number'
          ? when(a.notAfter)
          : h(
              'span',
              { class: 'muted', title: 'no issuance of its certificate in the inventory' },
              'unknown',
            ),
      ),
    ),
  );
  show(
    h('h2', {}, 'Fleet'),
    h(
      'p',
      { id: 'fleet-summary', class: 'muted' },
      `${f.online} of ${f.total} agent${f.total === 1 ? '' : 's'} online; decision revision ${f.revision}. Soonest certificate expiry first.`,
    ),
    table(
      ['Agent', 'Online', 'Revision', 'Lag', 'Last seen', 'Certificate expires'],
      rows,
      'Fleet',
      'No agent has connected to the decision stream yet. Agents appear here once `edgeward agent` runs with this SIEM configured.',
    ),
  );
}

// ---------- routing ----------
const ROUTES = {
  alerts: renderAlerts,
  alert: renderAlert,
  inventory: renderInventory,
  entity: renderEntity,
  decisions: renderDecisions,
  graph: renderGraph,
  charts: renderCharts,
  fleet: renderFleet,
};
const NAV_OF = { alert: 'alerts', entity: 'inventory' };

async function route() {
  if (!me) return renderLogin();
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  const name = ROUTES[path] ? path : 'alerts';
  onState = null;
  onAlert = null;
  for (const a of $nav.querySelectorAll('a')) {
    const on = a.getAttribute('href') === `#/${NAV_OF[name] ?? name}`;
    a.classList.toggle('active', on);
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  try {
    await ROUTES[name](new URLSearchParams(query ?? ''));
    $main.focus();
  } catch (err) {
    if (err.code === 'ERR_DASH_UNAUTHENTICATED') {
      me = null;
      return renderLogin('Your session ended; log in again.');
    }
    show(h('p', { class: 'error', role: 'alert' }, err.message));
  }
}

function startFeed() {
  if (feed) feed.close();
  feed = new EventSource('/api/alerts/stream');
  feed.addEventListener('alert', (ev) => {
    let a;
    try {
      a = JSON.parse(ev.data);
    } catch {
      return;
    }
    liveAlerts.unshift(a);
    if (liveAlerts.length > 200) liveAlerts.pop();
    onAlert?.(a);
    say(`alert: ${text(a.title)} (${text(a.severity)}) on ${text(a.entity)}`);
  });
  feed.addEventListener('state', (ev) => {
    try {
      liveState = JSON.parse(ev.data);
    } catch {
      return;
    }
    onState?.(liveState);
  });
  feed.onerror = () => say('live feed reconnecting…');
}

function start() {
  $nav.hidden = false;
  const out = h('button', { type: 'button', id: 'logout' }, 'Log out');
  out.addEventListener('click', async () => {
    await api('/api/logout', { method: 'POST', body: {} }).catch(() => undefined);
    me = null;
    if (feed) feed.close();
    renderLogin();
  });
  $who.replaceChildren(`${me.user} (${me.role}) `, out);
  startFeed();
  void route();
}

window.addEventListener('hashchange', () => void route());
api('/api/me').then(
  (m) => {
    me = m;
    start();
  },
  () => renderLogin(),
);
